"""The one place where processes start.

Objects build :class:`~netns_kit.command.Command` values; the runner
(:mod:`netns_kit.runner`) decides what to start and hands each process to an
:class:`Executor`.  Swapping the executor swaps the world: :class:`ShellExecutor`
runs on the real kernel, :class:`RecordingExecutor` records argv for unit tests and
answers from a script, and :class:`ScriptExecutor` writes the bash script a run
would amount to.  Executors hold no policy: no guards, no checks, no batching
decisions.  Nothing else in the package imports ``sh`` or ``subprocess``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import IO, Any, Protocol, runtime_checkable

import attrs
import sh

from .batch import Batch
from .command import Command
from .errors import CommandTimeoutError, NetnsKitError, ToolMissingError
from .pinger import Pinger, file_budget
from .probes import ProbeAnswer, ProbeJob
from .result import Result

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


_HELD = frozenset({signal.SIGINT, signal.SIGTERM})


def quiet_thread() -> None:
    """A thread of ours never takes Ctrl-C or SIGTERM.

    The kernel hands a process-wide signal to any thread that does not block it;
    Python then runs its handler in the main thread whenever it likes, past a lab's
    shield.  Blocked in our threads, such signals stay pending for the main thread,
    where the shield decides.  The programs these threads start inherit the mask, so
    a Ctrl-C at the terminal never cuts a lab's ``ip -batch`` in half either.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)


@contextlib.contextmanager
def _forking() -> Iterator[set[int | signal.Signals]]:
    """Hold Ctrl-C and SIGTERM while ``sh`` forks; yields the mask from before.

    ``sh`` forks in Python: a signal between the fork and the exec raises
    KeyboardInterrupt in Python code, in the parent inside an at-fork hook (where it
    is lost) and in the child inside a copy of the caller's stack (which could close a
    lab from the copy).  Held, the signal waits in the parent until the fork is done,
    and the child resets its handlers first (see :func:`_child_setup`).
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _child_setup(fds: tuple[int, ...], mask: set[int | signal.Signals]) -> None:
    """In ``sh``'s child, before exec: Python's own handlers off (a pending signal now
    ends the child as it would the program), the caller's mask back, and ``fds``
    (opened O_CLOEXEC) kept open."""
    for signum in _HELD:
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in fds:
        os.set_inheritable(fd, True)


@runtime_checkable
class Executor(Protocol):
    """Starts processes, and does nothing else (the policy is the runner's).

    ``execute`` runs one command to its end and returns its result: a non-zero exit
    code is a result, not an exception (a missing program or a timeout raise).
    ``execute_batch`` runs a whole batch as one process.  ``start`` starts a program
    in the background.  An executor may also have ``parallel`` (how many runs in
    different namespaces may overlap, default 1) and ``handles_guards`` (it takes a
    guarded command whole, as the dry run does, to write ``guard || command``).

    An executor may also ``interact(command, tty=...)``: run a program attached to the
    caller's own stdin, stdout and stderr (its terminal, when it has one), forward
    Ctrl-C to it and return its exit code (``netns-kit exec``, ``shell``).  It is
    left out of the protocol so that executors written before it still qualify; use
    :func:`interact`, which says clearly when an executor cannot.
    """

    def execute(self, command: Command, timeout: float | None = None) -> Result: ...

    def execute_batch(self, batch: Batch) -> Result: ...

    def start(self, command: Command) -> Process: ...


def interact(executor: Executor, command: Command, *, tty: bool = False) -> int:
    """Run ``command`` attached to the caller's terminal through ``executor``; its exit
    code.  ``tty``: the caller has a terminal and the program should get one too
    (an ssh session then asks for one with ``-t``)."""
    method = getattr(executor, "interact", None)
    if method is None:
        raise NetnsKitError(
            f"{executor!r} cannot run a program attached to this terminal (it has no interact)"
        )
    code: int = method(command, tty=tty)
    return code


def _terminal_delivers_sigint() -> bool:
    """Whether Ctrl-C at our terminal reaches a child of ours by itself: stdin is a
    terminal whose foreground process group is ours (the child inherits the group)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_attached(argv: Sequence[str], *, forward: Callable[[int, int], None] | None = None) -> int:
    """Start ``argv`` on the caller's stdin, stdout and stderr and wait for it.

    Signals meant for the program are passed on to it, by the PID we started
    (``forward(pid, signum)``, or ``os.kill``): SIGTERM, SIGHUP and SIGQUIT always,
    SIGINT only when the terminal did not already deliver it to the program's
    process group (a Ctrl-C typed at our terminal reaches both of us; a second copy
    would interrupt a shell or a REPL twice).  We ourselves survive them and return
    the program's exit code (128 + N when signal N ended it, as shells say).
    Handlers can only be set in the main thread; elsewhere signals act as usual.
    """
    send = forward or _kill
    by_terminal = _terminal_delivers_sigint()
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []

    def passed_on(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and by_terminal:
            return
        if not started:  # it arrived while the program starts: pass it on after
            early.append(signum)
        elif started[0].poll() is None:
            send(started[0].pid, signum)

    # The handlers go in before the program starts: a signal that came between its
    # start and them would end us and leave it running (seen: a program that printed
    # at once and was signalled at once outlived netns-kit).
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for forwarded in _FORWARDED:
            old[forwarded] = signal.signal(forwarded, passed_on)
    try:
        try:
            popen = subprocess.Popen(list(argv))
        except FileNotFoundError:
            raise ToolMissingError(argv[0]) from None
        started.append(popen)
        for signum in early:
            send(popen.pid, signum)
        code = popen.wait()
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)
        for running in started:
            if running.poll() is None:  # leaving on an exception: end what we started
                with contextlib.suppress(ProcessLookupError):
                    send(running.pid, signal.SIGKILL)
                running.wait()
    return code if code >= 0 else 128 - code


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


class _Setns:
    """Starts a program (``ip``, a batch, ``sysctl``...) inside a named namespace, cheaply.

    ``ip -n NS`` (and ``ip netns exec``) also unshare a mount namespace, which copies
    the whole mount table: one more mount per namespace on the machine, so each call
    gets slower as a lab grows, and building N namespaces costs O(N^2) (measured here:
    1.87 ms a call at 200 namespaces, 2.36 ms at 400).  The calling thread instead
    enters the namespace with setns(2), starts the program there (it inherits the
    namespace) and comes straight back: 1.3 ms a call whatever N, and it never keeps a
    deleted namespace alive.  Going through ``subprocess`` rather than ``sh`` saves
    another 3 ms a call.  The runner overlaps such calls from its own threads.
    """

    CLONE_NEWNET = 0x40000000

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and os.path.exists("/proc/thread-self/ns/net")

    def _enter(self, fd: int) -> None:
        if self._libc.setns(fd, self.CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    @contextlib.contextmanager
    def entered(self, namespace: str) -> Iterator[None]:
        """The calling thread is in ``namespace`` for the block, then back home.

        OSError (with the kernel's words) when the namespace cannot be opened.
        """
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                target = os.open(f"/run/netns/{namespace}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                said = f'Cannot open network namespace "{namespace}": {error.strerror}'
                raise OSError(error.errno, said) from None
            try:
                self._enter(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                self._enter(home)
        finally:
            os.close(home)

    def run(
        self, namespace: str, argv: tuple[str, ...], stdin: str | None, timeout: float | None
    ) -> Result:
        try:
            with self.entered(namespace):
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
        except OSError as error:
            if error.strerror is None or not error.strerror.startswith("Cannot open"):
                raise
            return Result(argv, 1, "", error.strerror)
        return Result(argv, done.returncode, done.stdout, done.stderr)


class ShellExecutor:
    """Runs commands on the real kernel through the ``sh`` package.

    argv goes straight to ``execve`` (no shell), without a PTY (``_tty_out=False``)
    so that output does not change with the environment.  ``sudo=True`` prefixes
    ``sudo -n``, which fails fast instead of prompting.  A command that says how it
    runs from inside its namespace (``Command.inside``) starts from a setns'd worker
    thread instead (see :class:`_NetnsSpawner`), and two such runs may overlap.
    """

    def __init__(self, *, sudo: bool = False) -> None:
        self.sudo = sudo
        self._programs: dict[str, sh.Command] = {}
        self._found: set[str] = set()
        self._setns: _Setns | None = None

    def __repr__(self) -> str:
        return f"ShellExecutor(sudo={self.sudo})"

    #: Runs that may overlap when they start from setns (one per CPU of a small
    #: machine: 0.8 ms a namespace instead of 1.3).
    OVERLAP = 2

    @property
    def parallel(self) -> int:
        return self.OVERLAP if self._can_setns() else 1

    def close(self) -> None:
        """Nothing to release: kept so that code written for executors that hold
        connections or threads (a remote one, say) can always call it."""

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

    def _can_setns(self) -> bool:
        return not self.sudo and _Setns.available()

    def _inside(self, command: Command, timeout: float | None) -> Result:
        assert command.namespace is not None and command.inside is not None
        program = command.inside[0]
        if program not in self._found:
            if shutil.which(program) is None:
                raise ToolMissingError(program)
            self._found.add(program)
        if self._setns is None:
            self._setns = _Setns()
        return self._setns.run(command.namespace, command.inside, command.stdin, timeout)

    def execute_batch(self, batch: Batch) -> Result:
        return self.execute(batch.process())

    @property
    def can_probe(self) -> bool:
        """Whether :meth:`probe` works here: raw sockets opened after setns need root."""
        return self._can_setns()

    def probe(
        self, lanes: Sequence[Sequence[ProbeJob]], *, timeout: float, count: int
    ) -> list[list[ProbeAnswer]]:
        """Send each lane's echo requests from raw ICMP sockets inside the jobs'
        namespaces, a thread per lane, and collect the replies (see
        :mod:`netns_kit.pinger`).  Which job goes in which lane is the caller's plan."""
        if not self.can_probe:
            raise NetnsKitError("raw ICMP probes need root without sudo: use fping commands")
        if self._setns is None:
            self._setns = _Setns()
        window = file_budget(len(lanes))
        pinger = Pinger(self._setns.entered, timeout=timeout, count=count, window=window)
        try:
            if len(lanes) <= 1:
                return [pinger.run(lane) for lane in lanes]
            barrier = threading.Barrier(len(lanes))
            with ThreadPoolExecutor(len(lanes), initializer=quiet_thread) as pool:
                futures = [pool.submit(pinger.run, lane, barrier) for lane in lanes]
                return [future.result() for future in futures]
        finally:
            pinger.close()

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        if command.namespace is not None and command.inside is not None and self._can_setns():
            inside = self._inside(command, timeout)
            if inside.returncode == -9:
                raise CommandTimeoutError(command.argv, -9, "", inside.stderr)
            return attrs.evolve(inside, argv=command.argv)
        running = self._sh_start(command, inherited_fds())
        try:
            running.wait(timeout=timeout)
        except sh.TimeoutException:
            with contextlib.suppress(OSError):
                running.kill()  # by the PID we started
            with contextlib.suppress(sh.ErrorReturnCode, sh.SignalException):
                running.wait()
            raise CommandTimeoutError(
                command.argv, -9, "", f"timed out after {timeout} s"
            ) from None
        except sh.ErrorReturnCode:
            pass  # a non-zero exit code is a result
        return _finished(command.argv, running)

    def _sh_start(self, command: Command, fds: tuple[int, ...]) -> sh.RunningCommand:
        """Start through ``sh``, in the background, with signals held while it forks;
        ``fds`` are handed to the program."""
        argv = self.argv(command)
        program = self._program(argv[0])
        with _forking() as mask:
            return program(
                *argv[1:],
                _bg=True,
                _bg_exc=False,
                _tty_out=False,
                _return_cmd=True,
                _in=command.stdin,
                _pass_fds=set(fds),
                _preexec_fn=functools.partial(_child_setup, fds, mask),
            )

    def start(self, command: Command) -> Process:
        """Start ``command`` in the background and return at once.

        Its output goes to two unnamed files, readable while it runs (``said``).  It
        starts through ``subprocess`` (vfork: about 2 ms) rather than ``sh``, whose
        fork in Python and three reader threads cost 40-80 ms a program in a process
        that already runs many (51 captures: 4 s).  The child inherits the calling
        thread's signal mask, so a thread that holds Ctrl-C/SIGTERM (our workers, a
        shield) starts through ``sh`` instead, which resets it in the child.
        """
        log.debug("start: %s", command)
        held = signal.pthread_sigmask(signal.SIG_BLOCK, set()) & _HELD
        if held or command.stdin is not None:
            return Process(command, _ShProcess(command.argv, self._sh_start(command, ())))
        argv = self.argv(command)
        with contextlib.ExitStack() as files:
            out = files.enter_context(tempfile.TemporaryFile())
            err = files.enter_context(tempfile.TemporaryFile())
            try:
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            except FileNotFoundError:
                raise ToolMissingError(argv[0]) from None
            files.pop_all()
        return Process(command, _Spawned(command.argv, popen, out, err))

    def interact(self, command: Command, *, tty: bool = False) -> int:
        """Run ``command`` on the caller's terminal (``ip netns exec`` keeps it: the
        program gets the terminal when the caller has one); its exit code."""
        log.debug("attach: %s", command)
        if shutil.which(self.argv(command)[0]) is None:
            raise ToolMissingError(self.argv(command)[0])
        return run_attached(self.argv(command))


def _finished(argv: tuple[str, ...], running: sh.RunningCommand) -> Result:
    """The result of a program that has ended, all of its output read.

    ``sh``'s ``wait(timeout=...)`` polls until the process ends and returns (or
    raises ErrorReturnCode) before its output threads are done: the last of stderr
    was missing in 11 of 60 runs of a failing ``tc``.  The process's own ``wait()``
    joins those threads first.
    """
    process = running.process
    code = process.wait()
    return Result(argv, code or 0, _text(process.stdout), _text(process.stderr))


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


@attrs.frozen
class _Answer:
    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


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

    def start(self, command: Command) -> Process:
        self.runs.append(command)
        result = self._record(command)
        process = Process(command, _FinishedProcess(result, pid=100_000 + len(self.started)))
        self.started.append(process)
        return process

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
        self._host: str | None = None

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        if not command.read:
            if command.host != self._host:  # a lab spread over machines: say where
                self._host = command.host
                self.lines.append(f"# on machine {command.host}")
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
        return Process(command, _FinishedProcess(Result(command.argv, 0), pid=0))

    def interact(self, command: Command, *, tty: bool = False) -> int:
        self.lines.append(command.shell())
        return 0

    def script(self) -> str:
        return self.HEADER + "".join(line + "\n" for line in self.lines)


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
    def said(self) -> tuple[str, str]: ...


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

    def said(self) -> tuple[str, str]:
        return self.result.stdout, self.result.stderr


class _ShProcess:
    """A background process started through ``sh`` (``_bg=True``)."""

    def __init__(self, argv: tuple[str, ...], running: sh.RunningCommand) -> None:
        self.argv = argv
        self.running = running
        self.pid: int = running.pid

    def alive(self) -> bool:
        return bool(self.running.process.is_alive()[0])

    def said(self) -> tuple[str, str]:
        """What it printed so far (``sh`` collects both streams as they come)."""
        process = self.running.process
        return _text(process.stdout), _text(process.stderr)

    def signal(self, signum: int) -> None:
        if self.alive():
            self.running.signal(signum)

    def wait(self, timeout: float | None) -> Result:
        """``sh``'s own ``wait(timeout)`` looks every 0.1 s, which made each stop of a
        background program cost 100 ms; this looks from 0.5 ms apart up to 20 ms."""
        if timeout is not None:
            deadline = time.monotonic() + timeout
            pause = 0.0005
            while self.alive():
                if time.monotonic() >= deadline:
                    raise CommandTimeoutError(self.argv, -9, "", f"still running after {timeout} s")
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
        with contextlib.suppress(sh.ErrorReturnCode):  # a non-zero exit code is a result
            self.running.wait()
        return _finished(self.argv, self.running)


class _Spawned:
    """A background program started through ``subprocess``, its output in files."""

    def __init__(
        self, argv: tuple[str, ...], popen: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes]
    ) -> None:
        self.argv = argv
        self.popen = popen
        self.pid = popen.pid
        self._files = (out, err)
        self._result: Result | None = None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)  # our own child, by its PID

    def said(self) -> tuple[str, str]:
        if self._result is not None:
            return self._result.stdout, self._result.stderr
        return _read_file(self._files[0]), _read_file(self._files[1])

    def wait(self, timeout: float | None) -> Result:
        if self._result is None:
            try:
                code = self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                raise CommandTimeoutError(
                    self.argv, -9, "", f"still running after {timeout} s"
                ) from None
            out, err = (_read_file(handle) for handle in self._files)
            for handle in self._files:
                handle.close()
            self._result = Result(self.argv, code, out, err)
        return self._result


def _read_file(handle: IO[bytes]) -> str:
    """All of an unnamed output file, without moving its offset."""
    size = os.fstat(handle.fileno()).st_size
    return _text(os.pread(handle.fileno(), size, 0) if size else b"")


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

    @property
    def host_pid(self) -> int:
        """Its PID on the machine it runs on: a remote program's own, not the local
        ssh client's (what a lab's record keeps, and what recovery signals)."""
        remote = getattr(self._handle, "remote_pid", None)
        return remote if isinstance(remote, int) else self.pid

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to it (by the PID we started), if it still runs."""
        self._handle.signal(signum)

    def wait(self, timeout: float | None = None) -> Result:
        """Wait for the end; the Result holds everything it printed."""
        return self._handle.wait(timeout)

    def said(self) -> tuple[str, str]:
        """What it printed so far: (stdout, stderr)."""
        return self._handle.said()

    def wait_for(self, text: str, timeout: float, *, stream: str = "stderr") -> bool:
        """Wait until the program prints ``text`` (on ``stream``): True, or False when it
        ended without saying it; CommandTimeoutError after ``timeout`` seconds.

        How a server or a capture says it is ready (tcpdump: "listening on").  Polls
        what the executor collected, from 0.2 ms apart up to 5 ms apart.
        """
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")
        which = 0 if stream == "stdout" else 1
        deadline = time.monotonic() + timeout
        pause = 0.0002
        while True:
            running = self._handle.alive()
            if text in self._handle.said()[which]:
                return True
            if not running:  # its last words may still be on the way: read them all
                ended = self._handle.wait(max(deadline - time.monotonic(), 1.0))
                return text in (ended.stdout if which == 0 else ended.stderr)
            if time.monotonic() >= deadline:
                raise CommandTimeoutError(
                    self.command.argv, -9, "", f"did not say {text!r} within {timeout:g} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def stop(self, timeout: float = 3.0, *, signum: int = signal.SIGTERM) -> Result:
        """``signum`` (SIGTERM), then SIGKILL if it is still there after ``timeout`` s."""
        self._handle.signal(signum)
        try:
            return self._handle.wait(timeout)
        except CommandTimeoutError:
            self._handle.signal(signal.SIGKILL)
            return self._handle.wait(timeout)
