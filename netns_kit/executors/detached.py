"""Many background programs started at once, detached: one small shell a machine.

``Executor.start`` makes each program a child of ours: through the shell executor a
process start costs a spawn from this (large) Python process, and its output is
collected in files we keep.  Routing daemons need none of that: each writes to its
own log file, and runs until the lab stops it by PID.  So an executor that has
``start_detached`` starts them all in one process a machine, the *launcher*: a POSIX
shell script (:func:`launch_script`) that starts each program in the background,
its output appended to its log, and prints, before the program runs, its PID and
start time (its own ``/proc/self/stat`` line: ``exec`` keeps both).  A program whose
line cannot be written (the caller died, its pipe closed) never starts, so every
program that runs was announced first.

The programs are not our children: a :class:`DetachedProcess` knows one by its PID
and start time, tells it is alive from ``/proc/PID/stat`` (a zombie has ended), and
signals it only while that PID still has that start time.  Their exit codes are not
ours to learn.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

from netns_kit.command import Command
from netns_kit.errors import CommandTimeoutError, NetnsKitError, ToolMissingError
from netns_kit.executors.base import HELD_SIGNALS, FinishedProcess, Process
from netns_kit.result import Result

#: What the launcher prints before each program: ``MARK INDEX STATLINE``.
MARK = "netns-kit-started"


def launch_script(commands: Sequence[Command], logs: Sequence[str]) -> str:
    """The launcher's text: for each command, a background subshell that reads its
    own stat line, prints it on descriptor 3 (the launcher's stdout), closes 3 and
    becomes the program (``exec``), stdin from /dev/null, stdout and stderr appended
    to its log.  Every word is quoted (:func:`shlex.join`); nothing else is user text."""
    if len(commands) != len(logs):
        raise ValueError("one log file per command")
    lines = ["exec 3>&1 </dev/null"]
    for index, (command, log) in enumerate(zip(commands, logs, strict=True)):
        lines.append(
            f'( read -r s </proc/self/stat || exit 1; echo "{MARK} {index} $s" >&3 || exit 1; '
            f"exec {shlex.join(command.argv)} 3>&- ) </dev/null >>{shlex.quote(log)} 2>&1 &"
        )
    return "\n".join(lines) + "\n"


def launch_argv(commands: Sequence[Command], logs: Sequence[str]) -> tuple[str, ...]:
    """``sh -c SCRIPT``: the launcher as one argv (see :func:`launch_script`)."""
    return ("sh", "-c", launch_script(commands, logs))


def parse_started(stdout: str, count: int) -> list[tuple[int, str] | None]:
    """Per command, the (PID, start time) the launcher printed, or ``None`` for one
    that never started.  The stat line's program name may hold spaces and
    parentheses: fields are counted after its last ``)``."""
    found: list[tuple[int, str] | None] = [None] * count
    for line in stdout.splitlines():
        words = line.split(" ", 2)
        if len(words) != 3 or words[0] != MARK or not words[1].isdigit():
            continue
        index, stat = int(words[1]), words[2]
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        if index < count and len(fields) > 19 and head.split("(", 1)[0].strip().isdigit():
            found[index] = (int(head.split("(", 1)[0]), fields[19])
    return found


def state_of(stat: str | None, started: str) -> bool:
    """Whether a ``/proc/PID/stat`` line is still that process's, and not a zombie."""
    if not stat or ")" not in stat:
        return False
    fields = stat.rpartition(")")[2].split()
    return len(fields) > 19 and fields[19] == started and fields[0] not in ("Z", "X")


def read_stat(pid: int) -> str | None:
    """This machine's ``/proc/PID/stat``, or ``None`` once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read()
    except OSError:
        return None


def kill_local(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


class DetachedProcess:
    """A program the launcher started, known by its PID and start time (a
    :class:`~netns_kit.executors.base.Handle`).  ``stat`` reads its
    ``/proc/PID/stat`` (here, or on its machine); ``kill`` signals a PID there."""

    def __init__(
        self,
        argv: tuple[str, ...],
        pid: int,
        started: str,
        stat: Callable[[int], str | None] = read_stat,
        kill: Callable[[int, int], None] = kill_local,
    ) -> None:
        self.argv = argv
        self.pid = pid
        self.started = started
        self._stat = stat
        self._kill = kill

    def alive(self) -> bool:
        return state_of(self._stat(self.pid), self.started)

    def signal(self, signum: int) -> None:
        if self.alive():  # still that process: its PID was not reused
            self._kill(self.pid, signum)

    def said(self) -> tuple[str, str]:
        return "", ""  # its output is in its log file

    def wait(self, timeout: float | None) -> Result:
        """Until it has ended, looking from 0.5 ms apart up to 20 ms; its exit code is
        its parent's to know, not ours (0 here)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.0005
        while self.alive():
            if deadline is not None and time.monotonic() >= deadline:
                raise CommandTimeoutError(self.argv, -9, "", f"still running after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
        return Result(self.argv, 0)


def processes(
    commands: Sequence[Command],
    done: Result,
    stat: Callable[[int], str | None] = read_stat,
    kill: Callable[[int, int], None] = kill_local,
) -> list[Process]:
    """One :class:`Process` per command from the launcher's result: detached, or, for
    a command that never started, a finished one (PID 0) carrying what the launcher
    said."""
    out: list[Process] = []
    for command, found in zip(commands, parse_started(done.stdout, len(commands)), strict=True):
        if found is None:
            said = done.stderr.strip() or f"the launcher exited {done.returncode}"
            failed = Result(command.argv, done.returncode or 1, "", said)
            out.append(Process(command, FinishedProcess(failed, pid=0)))
        else:
            handle = DetachedProcess(command.argv, found[0], found[1], stat, kill)
            out.append(Process(command, handle))
    return out


def _unblocked(mask: set[int]) -> None:
    """In the launcher's child, before exec: Ctrl-C and SIGTERM not held, so that the
    programs (which inherit the mask) end when signalled."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, mask)


def run_launcher(argv: tuple[str, ...], timeout: float = 60.0) -> Result:
    """Run a launcher (``argv`` ends in :func:`launch_argv`'s) locally, in a session
    of its own (a Ctrl-C at the terminal never reaches the programs), without the
    descriptors of our open labs.  A calling thread that holds Ctrl-C/SIGTERM (a
    worker, a shield) would hand that mask on: then the child unblocks them first."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, set()) & HELD_SIGNALS
    unblock = functools.partial(_unblocked, set(held)) if held else None
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
            preexec_fn=unblock,
        )
    except FileNotFoundError:
        raise ToolMissingError(argv[0]) from None
    except subprocess.TimeoutExpired:
        raise NetnsKitError(f"the launcher did not end within {timeout} s: {argv[:3]}") from None
    return Result(argv, done.returncode, done.stdout, done.stderr)


def start_detached(ex: object, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
    """Start ``commands`` in the background through ``ex``: all at once with its
    ``start_detached`` where it has one, else one ``start`` each (their output then
    goes to the executor's files as well as their own logs)."""
    if not commands:
        return []
    method = getattr(ex, "start_detached", None)
    if method is not None:
        started: list[Process] = method(commands, logs)
        return started
    start: Callable[[Command], Process] = ex.start  # type: ignore[attr-defined]
    return [start(c) for c in commands]
