"""Executors that start nothing: the unit tests' fake and the dry run's script writer."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence

import attrs

from netns_kit.command import Command
from netns_kit.executors.base import FinishedProcess, Process, Watching
from netns_kit.executors.batch import Batch
from netns_kit.executors.detached import MARK, launch_argv, processes
from netns_kit.executors.probes import Probe, ProbeJob
from netns_kit.result import Result


@attrs.frozen
class _Answer:
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


#: The fake's answer to a continuous probe: (namespace, address, sent) -> the round
#: trip in seconds, or None for a lost probe.
WatchAnswer = Callable[[str, str, float], float | None]


class _FakeWatch:
    """The fake's continuous probe: at ``stop()``, one probe per ``interval`` from
    its start until then, answered as ``answer`` says."""

    def __init__(
        self, jobs: Sequence[ProbeJob], interval: float, answer: WatchAnswer | None
    ) -> None:
        self.jobs = list(jobs)
        self.interval = interval
        self.answer = answer
        self.started = time.monotonic()
        self.stopped: float | None = None

    def stop(self) -> list[list[list[Probe]]]:
        self.stopped = time.monotonic()
        rounds = int((self.stopped - self.started) / self.interval) + 1
        found = []
        for job in self.jobs:
            per_address = []
            for address in job.addresses:
                probes = []
                for k in range(rounds):
                    sent = self.started + k * self.interval
                    rtt = (
                        0.0001 if self.answer is None else self.answer(job.namespace, address, sent)
                    )
                    probes.append(Probe(sent, None if rtt is None else sent + rtt))
                per_address.append(probes)
            found.append(per_address)
        return found


class RecordingExecutor:
    """A fake for unit tests: records argv, answers from a script, fails on demand.

    ``commands`` lists the argv of every logical command it was given, in order, and
    ``runs`` the processes they would have cost (a batch is one run).  Anything it
    has no answer for succeeds with empty output, which is how iproute2 answers on a
    fresh machine (``ip -j netns list`` prints nothing when ``/run/netns`` is absent).
    A batch behaves like the kernel's: a failing line stops it (unless ``-force``),
    and the batch says ``Command failed -:LINE``.
    """

    parallel = 1

    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []
        self.calls: list[Command] = []
        self.runs: list[Command] = []
        self.started: list[Process] = []
        #: Every command :meth:`interact` was given, with whether a terminal was asked for.
        self.interacted: list[tuple[Command, bool]] = []
        self._answers: list[tuple[tuple[str, ...], _Answer]] = []
        self._failures: dict[int, _Answer] = {}
        #: The start time (clock ticks) of every program started detached.
        self.start_time = "1"
        #: Continuous probes: every watch started, and how its probes are answered.
        self.watches: list[_FakeWatch] = []
        self.watch_answer: WatchAnswer | None = None
        self.can_watch = True

    def answer(
        self,
        prefix: Sequence[str] | str,
        *,
        stdout: str = "",
        stderr: str = "",
        returncode: int = 0,
    ) -> None:
        """Answer every command whose argv starts with ``prefix`` (longest wins)."""
        key = tuple(shlex.split(prefix)) if isinstance(prefix, str) else tuple(prefix)
        self._answers.append((key, _Answer(stdout, stderr, returncode)))

    def fail_at(self, index: int, *, stderr: str = "injected failure", returncode: int = 1) -> None:
        """Make the command that lands at ``commands[index]`` fail."""
        self._failures[index] = _Answer("", stderr, returncode)

    def _lookup(self, argv: tuple[str, ...]) -> _Answer:
        best: tuple[int, _Answer] | None = None
        for prefix, answer in self._answers:
            if argv[: len(prefix)] == prefix and (best is None or len(prefix) >= best[0]):
                best = (len(prefix), answer)
        return best[1] if best else _Answer()

    def _record(self, command: Command) -> Result:
        index = len(self.commands)
        self.commands.append(command.argv)
        self.calls.append(command)
        answer = self._failures.get(index) or self._lookup(command.argv)
        return Result(command.argv, answer.returncode, answer.stdout, answer.stderr)

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        self.runs.append(command)
        return self._record(command)

    def execute_batch(self, batch: Batch) -> Result:
        process = batch.process()
        self.runs.append(process)
        out: list[str] = []
        said: list[str] = []
        code = 0
        for line, command in enumerate(batch.commands, start=1):
            result = self._record(command)
            out.append(result.stdout)
            if not result:
                code = result.returncode
                said += [result.stderr.rstrip("\n"), f"Command failed -:{line}"]
                if not batch.force:
                    break
        return Result(process.argv, code, "".join(out), "\n".join(said))

    def watch(self, jobs: Sequence[ProbeJob], *, interval: float, timeout: float) -> Watching:
        """A fake continuous probe (see :class:`_FakeWatch`), kept in ``watches``."""
        fake = _FakeWatch(jobs, interval, self.watch_answer)
        self.watches.append(fake)
        return fake

    def start(self, command: Command) -> Process:
        self.runs.append(command)
        result = self._record(command)
        process = Process(command, FinishedProcess(result, pid=100_000 + len(self.started)))
        self.started.append(process)
        return process

    def start_detached(self, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
        """Records the launcher (one command, its exact argv, on the first command's
        machine) and answers as a machine would: each program gets a PID (100000 on,
        as :meth:`start` gives them) and :attr:`start_time`, unless an answer for the
        launcher says otherwise.  The processes are over at once, as :meth:`start`'s."""
        launcher = Command(launch_argv(commands, logs), machine=commands[0].machine)
        self.runs.append(launcher)
        result = self._record(launcher)
        if not result.stdout and result:
            lines = []
            for index in range(len(commands)):
                pid = 100_000 + len(self.started) + index
                stat = f"{pid} (sh) R " + " ".join(["0"] * 18) + f" {self.start_time} 0 0"
                lines.append(f"{MARK} {index} {stat}\n")
            result = attrs.evolve(result, stdout="".join(lines))
        made = processes(commands, result, stat=lambda pid: None, kill=lambda pid, sig: None)
        self.started += made
        return made

    def interact(self, command: Command, *, tty: bool = False) -> int:
        self.runs.append(command)
        self.interacted.append((command, tty))
        return self._record(command).returncode


class ScriptExecutor:
    """A dry run: collects every change as a line of a standalone bash script.

    Reads are answered as a fresh machine would answer them (empty, success), and a
    guarded command becomes ``guard || command``, so the script does on a fresh
    machine what the objects would have done.  Batches are written line by line,
    each line as the command it stands for, which is easier to read.
    """

    HEADER = "#!/usr/bin/env bash\nset -euo pipefail\n"
    handles_guards = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._machine: str | None = None

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        if not command.read:
            if command.machine != self._machine:  # a lab spread over machines: say where
                self._machine = command.machine
                self.lines.append(f"# on machine {command.machine}")
            line = command.shell()
            if command.unless is not None:
                line = f"{command.unless.shell()} || {line}"
            self.lines.append(line)
        return Result(command.argv, 0)

    def execute_batch(self, batch: Batch) -> Result:
        for command in batch.commands:
            self.execute(command)
        return Result(batch.process().argv, 0)

    def start(self, command: Command) -> Process:
        self.lines.append(command.shell() + " &")
        return Process(command, FinishedProcess(Result(command.argv, 0), pid=0))

    def interact(self, command: Command, *, tty: bool = False) -> int:
        self.lines.append(command.shell())
        return 0

    def script(self) -> str:
        return self.HEADER + "".join(line + "\n" for line in self.lines)
