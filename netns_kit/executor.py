"""The one place where processes start.

Objects build :class:`~netns_kit.command.Command` values and hand them to an
:class:`Executor`.  Swapping the executor swaps the world: :class:`ShellExecutor`
runs on the real kernel, :class:`RecordingExecutor` records argv for unit tests and
answers from a script, and :class:`ScriptExecutor` writes the bash script a run
would amount to.  Nothing else in the package imports ``sh`` or ``subprocess``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

import attrs
import sh

from .batch import Run, failures, plan
from .command import Command
from .errors import CommandTimeoutError, NetnsKitError, ToolMissingError, command_error

log = logging.getLogger("netns_kit")

# Descriptors every short-lived child inherits: the locks of the labs this process
# has open (see netns_kit.registry).  A program that outlives a killed owner then
# keeps its lab locked until it ends, so recovery cannot race it.  Background
# programs (``start``) do not get them: they may run for as long as the lab does.
_inherited: set[int] = set()
_inherited_lock = threading.Lock()


def inherit_in_children(fd: int) -> None:
    """Hand ``fd`` to every program started through ``run``/``run_all`` from now on."""
    with _inherited_lock:
        _inherited.add(fd)


def stop_inheriting(fd: int) -> None:
    with _inherited_lock:
        _inherited.discard(fd)


def inherited_fds() -> tuple[int, ...]:
    with _inherited_lock:
        return tuple(sorted(_inherited))


def _make_inheritable(fds: tuple[int, ...]) -> None:
    """In the child, before exec: keep ``fds`` open (they are opened O_CLOEXEC)."""
    for fd in fds:
        os.set_inheritable(fd, True)


@attrs.frozen
class Result:
    """What a finished command gave back.  Falsy when it failed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    def __bool__(self) -> bool:
        return self.returncode == 0


@runtime_checkable
class Executor(Protocol):
    """Runs commands.  Objects depend on this protocol, never on a class."""

    def run(
        self, command: Command, *, check: bool = True, timeout: float | None = None
    ) -> Result: ...

    def run_all(self, commands: Iterable[Command], *, keep_going: bool = False) -> list[Result]: ...

    def start(self, command: Command) -> Process: ...


class BaseExecutor:
    """Guards, checking and logging, shared by every executor.

    Subclasses provide :meth:`_execute`, which runs one command and never raises for
    a non-zero exit code.
    """

    def _execute(self, command: Command, timeout: float | None) -> Result:
        raise NotImplementedError

    def run(self, command: Command, *, check: bool = True, timeout: float | None = None) -> Result:
        if command.unless is not None:
            guard = self.run(command.unless, check=False, timeout=timeout)
            if guard:
                log.debug("skipped (guard held): %s", command)
                return guard
        log.debug("run: %s", command)
        result = self._execute(command, timeout)
        if check and not result:
            raise command_error(result.argv, result.returncode, result.stdout, result.stderr)
        return result

    def run_all(self, commands: Iterable[Command], *, keep_going: bool = False) -> list[Result]:
        """Run commands in order, in as few processes as :func:`batch.plan` allows.

        Without ``keep_going`` it stops at the first failure and raises, and the error
        carries ``completed``: how many of the given commands succeeded before it, and
        ``succeeded``: the indexes of every command that did (batches in different
        namespaces may overlap, so one after the failure may have run too), so that a
        caller can undo exactly those.  With ``keep_going`` every command is tried and
        failures come back as falsy results (``ip -force -batch``).
        """
        results: list[Result] = []
        for wave in self._waves(plan(list(commands))):
            if not wave[0].batched:
                try:
                    results.append(self.run(wave[0].commands[0], check=not keep_going))
                except NetnsKitError as raised:
                    raised.completed = len(results)
                    raise
                continue
            base = len(results)
            outcomes = self._run_wave(wave, keep_going)
            for run, done in zip(wave, outcomes, strict=True):
                results.extend(done)
                results.extend(Result(c.argv, -1, "", "not run") for c in run.commands[len(done) :])
            failed = next((i for i in range(base, len(results)) if not results[i]), None)
            if failed is None or keep_going:
                continue
            bad = results[failed]
            stop = command_error(bad.argv, bad.returncode, bad.stdout, bad.stderr)
            stop.completed = failed
            stop.succeeded = tuple(i for i, r in enumerate(results) if r)
            raise stop
        return results

    def _waves(self, runs: list[Run]) -> list[list[Run]]:
        """Runs that may overlap, grouped; by default every run stands alone."""
        return [[run] for run in runs]

    def _run_wave(self, wave: list[Run], keep_going: bool) -> list[list[Result]]:
        """Run a wave of batches; per batch, the results of the lines that ran."""
        outcomes: list[list[Result]] = []
        for run in wave:
            stopped = bool(outcomes) and not keep_going and not all(outcomes[-1])
            outcomes.append([] if stopped else self._run_batch(run, keep_going) or [])
        return outcomes

    def _run_batch(self, run: Run, keep_going: bool) -> list[Result]:
        """Run a batch in one process; the results of the lines that ran, the last one
        failed if the batch stopped."""
        _log_batch(run)
        return split_batch(run, self._execute_batch(run.command(force=keep_going)), keep_going)

    def _execute_batch(self, command: Command) -> Result:
        return self._execute(command, None)

    def start(self, command: Command) -> Process:
        raise NotImplementedError(f"{type(self).__name__} cannot start background processes")


def _log_batch(run: Run) -> None:
    if log.isEnabledFor(logging.DEBUG):
        where = run.namespace or "root"
        for command in run.commands:
            log.debug("batch in %s: %s", where, command)


def split_batch(run: Run, batch: Result, keep_going: bool) -> list[Result]:
    """Per-line results of a batch from the batch's own result and its stderr."""
    if batch:
        return [Result(c.argv, 0) for c in run.commands]
    failed = dict(failures(batch.stderr))
    if not failed:  # the batch died without saying which line: blame the first
        failed = {0: batch.stderr.strip()}
    results = []
    for index, command in enumerate(run.commands):
        if index in failed:
            results.append(Result(command.argv, batch.returncode, "", failed[index]))
            if not keep_going:
                break
        else:
            results.append(Result(command.argv, 0))
    return results


class _NetnsSpawner:
    """Starts ``ip`` (a command or a batch) inside a named namespace, cheaply and linearly.

    ``ip -n NS`` (and ``ip netns exec``) also unshare a mount namespace, which copies
    the whole mount table: one more mount per namespace on the machine, so each call
    gets slower as a lab grows, and building N namespaces costs O(N^2) (measured here:
    1.87 ms a call at 200 namespaces, 2.36 ms at 400).  A worker thread that enters
    the namespace with setns(2) and starts ``ip`` there only switches the network
    namespace: 1.3 ms a call whatever N.  The thread returns to its own namespace
    after every start, so it never keeps a deleted namespace alive.  Going through
    ``subprocess`` rather than ``sh`` saves another 3 ms a call.
    """

    CLONE_NEWNET = 0x40000000
    WORKERS = 2  # one per CPU of a small machine: 0.8 ms a namespace instead of 1.3

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="netns-kit-setns")
        self._libc = ctypes.CDLL(None, use_errno=True)

    def close(self) -> None:
        """Stop the worker threads (a pool left for the interpreter to join at exit
        turns a Ctrl-C at that moment into an "Exception ignored" traceback)."""
        self._pool.shutdown(wait=True)

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and os.path.exists("/proc/thread-self/ns/net")

    def submit(
        self,
        namespace: str,
        argv: tuple[str, ...],
        stdin: str | None,
        timeout: float | None = None,
    ) -> Future[Result]:
        return self._pool.submit(self._run_inside, namespace, argv, stdin, timeout)

    def _enter(self, fd: int) -> None:
        if self._libc.setns(fd, self.CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def _run_inside(
        self, namespace: str, argv: tuple[str, ...], stdin: str | None, timeout: float | None
    ) -> Result:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                target = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                said = f'Cannot open network namespace "{namespace}": {error.strerror}'
                return Result(argv, 1, "", said)
            try:
                self._enter(target)
            finally:
                os.close(target)
            try:
                done = subprocess.run(
                    argv,
                    input=stdin,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=timeout,
                    pass_fds=inherited_fds(),
                )
            except subprocess.TimeoutExpired:
                return Result(argv, -9, "", f"timed out after {timeout} s")
            finally:
                self._enter(home)
        finally:
            os.close(home)
        return Result(argv, done.returncode, done.stdout, done.stderr)


class ShellExecutor(BaseExecutor):
    """Runs commands on the real kernel through the ``sh`` package.

    argv goes straight to ``execve`` (no shell), without a PTY (``_tty_out=False``)
    so that output does not change with the environment.  ``sudo=True`` prefixes
    ``sudo -n``, which fails fast instead of prompting.
    """

    def __init__(self, *, sudo: bool = False) -> None:
        self.sudo = sudo
        self._programs: dict[str, sh.Command] = {}
        self._spawner: _NetnsSpawner | None = None

    def __repr__(self) -> str:
        return f"ShellExecutor(sudo={self.sudo})"

    def close(self) -> None:
        """Release the setns worker threads; the executor stays usable (they come back
        when needed)."""
        spawner, self._spawner = self._spawner, None
        if spawner is not None:
            spawner.close()

    def _program(self, name: str) -> sh.Command:
        program = self._programs.get(name)
        if program is None:
            try:
                program = sh.Command(name)
            except sh.CommandNotFound:
                raise ToolMissingError(name) from None
            self._programs[name] = program
        return program

    def argv(self, command: Command) -> tuple[str, ...]:
        """The argv that really starts: with ``sudo -n`` in front when asked."""
        return ("sudo", "-n", *command.argv) if self.sudo else command.argv

    def _fast(self, command: Command) -> bool:
        """Whether an ``ip -n NS ...`` command may start through :class:`_NetnsSpawner`."""
        return (
            command.namespace is not None
            and command.argv[:3] == ("ip", "-n", command.namespace)
            and not self.sudo
            and _NetnsSpawner.available()
        )

    def _submit(self, command: Command, timeout: float | None = None) -> Future[Result]:
        if self._spawner is None:
            if shutil.which("ip") is None:
                raise ToolMissingError("ip")
            self._spawner = _NetnsSpawner()
        assert command.namespace is not None
        argv = ("ip", *command.argv[3:])  # the same command without "-n NS"
        return self._spawner.submit(command.namespace, argv, command.stdin, timeout)

    def _waves(self, runs: list[Run]) -> list[list[Run]]:
        """Consecutive batches, each in a namespace of its own, overlap two at a time.

        They are independent: a batch line acts in its own namespace only (lines that
        name another namespace, ``netns``, are kept apart).  A batch that attaches
        bridge ports (``master``) finishes before the next one starts: when the far
        end of a veth comes up before its bridge port, the first ARP exchange is lost
        and the first ping takes a second.
        """
        waves: list[list[Run]] = []
        open_wave = False  # whether the last wave may take one more batch
        for run in runs:
            joins = (
                run.batched
                and self._fast(run.command())
                and not any("netns" in c.argv[3:] or "master" in c.argv for c in run.commands)
            )
            if joins and open_wave and run.namespace not in {r.namespace for r in waves[-1]}:
                waves[-1].append(run)
            else:
                waves.append([run])
            open_wave = joins
        return waves

    def _run_wave(self, wave: list[Run], keep_going: bool) -> list[list[Result]]:
        if len(wave) == 1:
            return super()._run_wave(wave, keep_going)
        log.debug("overlapping %d batches", len(wave))
        for run in wave:
            _log_batch(run)
        futures = [self._submit(run.command(force=keep_going)) for run in wave]
        outcomes: list[list[Result]] = []
        failed = False
        for run, future in zip(wave, futures, strict=True):
            if failed and future.cancel():  # never started: it did not run
                outcomes.append([])
                continue
            done = split_batch(run, future.result(), keep_going)
            failed = failed or (not keep_going and not all(done))
            outcomes.append(done)
        return outcomes

    def _execute(self, command: Command, timeout: float | None) -> Result:
        if self._fast(command):  # ip -n NS: linear and 4 ms cheaper, see _NetnsSpawner
            inside = self._submit(command, timeout).result()
            if inside.returncode == -9:
                raise CommandTimeoutError(command.argv, -9, "", inside.stderr)
            return attrs.evolve(inside, argv=command.argv)
        argv = self.argv(command)
        program = self._program(argv[0])
        fds = inherited_fds()
        try:
            done = program(
                *argv[1:],
                _tty_out=False,
                _return_cmd=True,
                _in=command.stdin,
                _timeout=timeout,
                _pass_fds=set(fds),
                _preexec_fn=(lambda: _make_inheritable(fds)) if fds else None,
            )
        except sh.TimeoutException:
            raise CommandTimeoutError(
                command.argv, -9, "", f"timed out after {timeout} s"
            ) from None
        except sh.ErrorReturnCode as failed:
            return Result(
                command.argv,
                failed.exit_code,
                _text(failed.stdout),
                _text(failed.stderr),
            )
        return Result(command.argv, done.exit_code, _text(done.stdout), _text(done.stderr))

    def start(self, command: Command) -> Process:
        """Start ``command`` in the background and return at once."""
        argv = self.argv(command)
        program = self._program(argv[0])
        log.debug("start: %s", command)
        running = program(
            *argv[1:],
            _bg=True,
            _bg_exc=False,
            _tty_out=False,
            _return_cmd=True,
            _in=command.stdin,
        )
        return Process(command, _ShProcess(command.argv, running))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


@attrs.frozen
class _Answer:
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


class RecordingExecutor(BaseExecutor):
    """A fake for unit tests: records argv, answers from a script, fails on demand.

    ``commands`` lists the argv of every logical command it was given, in order, and
    ``runs`` the processes they would have cost (a batch is one run).  Anything it
    has no answer for succeeds with empty output, which is how iproute2 answers on a
    fresh machine (``ip -j netns list`` prints nothing when ``/run/netns`` is absent).
    """

    def __init__(self) -> None:
        self.commands: list[tuple[str, ...]] = []
        self.calls: list[Command] = []
        self.runs: list[Command] = []
        self.started: list[Process] = []
        self._answers: list[tuple[tuple[str, ...], _Answer]] = []
        self._failures: dict[int, _Answer] = {}

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

    def _execute(self, command: Command, timeout: float | None) -> Result:
        self.runs.append(command)
        return self._record(command)

    def _run_batch(self, run: Run, keep_going: bool) -> list[Result]:
        """Like the kernel: every line is a logical command, the batch is one run, and
        a failing line stops the batch unless ``keep_going`` (``-force``)."""
        self.runs.append(run.command(force=keep_going))
        results = []
        for command in run.commands:
            results.append(self._record(command))
            if not results[-1] and not keep_going:
                break
        return results

    def start(self, command: Command) -> Process:
        self.runs.append(command)
        result = self._record(command)
        process = Process(command, _FinishedProcess(result, pid=100_000 + len(self.started)))
        self.started.append(process)
        return process


class ScriptExecutor(BaseExecutor):
    """A dry run: collects every change as a line of a standalone bash script.

    Reads are answered as a fresh machine would answer them (empty, success), and a
    guarded command becomes ``guard || command``, so the script does on a fresh
    machine what the objects would have done.
    """

    HEADER = "#!/usr/bin/env bash\nset -euo pipefail\n"

    def __init__(self) -> None:
        self.lines: list[str] = []

    def run(self, command: Command, *, check: bool = True, timeout: float | None = None) -> Result:
        if not command.read:
            line = render(command)
            if command.unless is not None:
                line = f"{render(command.unless)} || {line}"
            self.lines.append(line)
        return Result(command.argv, 0)

    def _run_batch(self, run: Run, keep_going: bool) -> list[Result]:
        return [self.run(command) for command in run.commands]

    def start(self, command: Command) -> Process:
        self.lines.append(render(command) + " &")
        return Process(command, _FinishedProcess(Result(command.argv, 0), pid=0))

    def script(self) -> str:
        return self.HEADER + "".join(line + "\n" for line in self.lines)


def render(command: Command) -> str:
    """One command as a shell line; stdin becomes a quoted heredoc."""
    line = shlex.join(command.argv)
    if command.stdin is None:
        return line
    tag = "NETNS_KIT_EOF"
    while tag in command.stdin.splitlines():
        tag += "_"
    body = command.stdin if command.stdin.endswith("\n") else command.stdin + "\n"
    return f"{line} <<'{tag}'\n{body}{tag}"


_current: ContextVar[Executor | None] = ContextVar("netns_kit_executor", default=None)
_fallback: list[Executor] = []


def default_executor() -> Executor:
    """The executor objects use when given none: ``use_executor``'s, or a shell."""
    current = _current.get()
    if current is not None:
        return current
    if not _fallback:
        _fallback.append(ShellExecutor())
    return _fallback[0]


@contextlib.contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Swap the default executor for a block, e.g. to dry-run a notebook cell."""
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)


class _Handle(Protocol):
    """What a :class:`Process` needs from the thing that really runs."""

    pid: int

    def alive(self) -> bool: ...
    def signal(self, signum: int) -> None: ...
    def wait(self, timeout: float | None) -> Result: ...


class _FinishedProcess:
    """A process that is over before it starts: the fake's and the dry run's."""

    def __init__(self, result: Result, pid: int) -> None:
        self.result = result
        self.pid = pid

    def alive(self) -> bool:
        return False

    def signal(self, signum: int) -> None:
        pass

    def wait(self, timeout: float | None) -> Result:
        return self.result


class _ShProcess:
    """A background process started through ``sh`` (``_bg=True``)."""

    def __init__(self, argv: tuple[str, ...], running: sh.RunningCommand) -> None:
        self.argv = argv
        self.running = running
        self.pid: int = running.pid

    def alive(self) -> bool:
        return bool(self.running.process.is_alive()[0])

    def signal(self, signum: int) -> None:
        if self.alive():
            self.running.signal(signum)

    def wait(self, timeout: float | None) -> Result:
        try:
            self.running.wait(timeout=timeout)
        except sh.TimeoutException:
            raise CommandTimeoutError(
                self.argv, -9, "", f"still running after {timeout} s"
            ) from None
        except sh.ErrorReturnCode as failed:
            return Result(self.argv, failed.exit_code, _text(failed.stdout), _text(failed.stderr))
        return Result(
            self.argv,
            self.running.exit_code or 0,
            _text(self.running.stdout),
            _text(self.running.stderr),
        )


class Process:
    """A program running in the background (a server, a capture) that we started.

    Only ever signalled by the PID we got when we started it.
    """

    def __init__(self, command: Command, handle: _Handle) -> None:
        self.command = command
        self._handle = handle

    def __repr__(self) -> str:
        state = "running" if self.running else "finished"
        return f"<Process {self.pid} {state}: {self.command}>"

    @property
    def pid(self) -> int:
        return self._handle.pid

    @property
    def running(self) -> bool:
        return self._handle.alive()

    def wait(self, timeout: float | None = None) -> Result:
        """Wait for the end; the Result holds everything it printed."""
        return self._handle.wait(timeout)

    def stop(self, timeout: float = 3.0) -> Result:
        """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds."""
        self._handle.signal(signal.SIGTERM)
        try:
            return self._handle.wait(timeout)
        except CommandTimeoutError:
            self._handle.signal(signal.SIGKILL)
            return self._handle.wait(timeout)
