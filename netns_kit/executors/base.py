"""What every executor shares: the protocol, background processes, inherited locks.

An executor starts processes and does nothing else (the policy is the runner's).
This module holds the :class:`Executor` protocol, the :class:`Process` handle a
background program is known by, and the descriptors every short-lived child inherits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Protocol, runtime_checkable

from netns_kit.command import Command
from netns_kit.errors import CommandTimeoutError, NetnsKitError
from netns_kit.executors.probes import Probe
from netns_kit.result import Result

if TYPE_CHECKING:
    from netns_kit.executors.batch import Batch

# Descriptors every short-lived child inherits: the locks of the labs this process
# has open (see netns_kit.record.registry).  A program that outlives a killed owner then
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


HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def quiet_thread() -> None:
    """A thread of ours never takes Ctrl-C or SIGTERM.

    The kernel hands a process-wide signal to any thread that does not block it;
    Python then runs its handler in the main thread whenever it likes, past a lab's
    shield.  Blocked in our threads, such signals stay pending for the main thread,
    where the shield decides.  The programs these threads start inherit the mask, so
    a Ctrl-C at the terminal never cuts a lab's ``ip -batch`` in half either.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)


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


class Watching(Protocol):
    """A continuous probe under way (``executor.watch``): ``stop()`` ends it and
    returns every job's probes, address by address."""

    def stop(self) -> list[list[list[Probe]]]: ...


class Handle(Protocol):
    """What a :class:`Process` needs from the thing that really runs."""

    pid: int

    def alive(self) -> bool: ...
    def signal(self, signum: int) -> None: ...
    def wait(self, timeout: float | None) -> Result: ...
    def said(self) -> tuple[str, str]: ...


class FinishedProcess:
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


class Process:
    """A program running in the background (a server, a capture) that we started.

    Only ever signalled by the PID we got when we started it.
    """

    def __init__(self, command: Command, handle: Handle) -> None:
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
    def started_at(self) -> str | None:
        """Its start time (clock ticks after boot, field 22 of ``/proc/PID/stat``) when
        the executor learnt it as it started the program (a detached start), else
        ``None``."""
        found = getattr(self._handle, "started", None)
        return found if isinstance(found, str) else None

    @property
    def machine_pid(self) -> int:
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


class SpawnedProcess:
    """A background program started through ``subprocess``, its output in two unnamed
    files that can be read while it runs.  Signalled by the PID we started; an
    executor whose programs need signals passed on another way overrides
    :meth:`signal` (the sandbox's nsenter)."""

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
        return read_file(self._files[0]), read_file(self._files[1])

    def wait(self, timeout: float | None) -> Result:
        if self._result is None:
            try:
                code = self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                raise CommandTimeoutError(
                    self.argv, -9, "", f"still running after {timeout} s"
                ) from None
            out, err = (read_file(handle) for handle in self._files)
            for handle in self._files:
                handle.close()
            self._result = Result(self.argv, code, out, err)
        return self._result


def read_file(handle: IO[bytes]) -> str:
    """All of an unnamed output file, without moving its offset."""
    size = os.fstat(handle.fileno()).st_size
    return _text(os.pread(handle.fileno(), size, 0) if size else b"")


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
