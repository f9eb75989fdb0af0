"""The real kernel's executor: programs through ``sh``, namespaces entered by threads.

:class:`ShellExecutor` runs each command as a process (through the ``sh`` package, or
``subprocess`` from a worker thread that has entered the command's namespace with
setns(2), which avoids ``ip -n``'s copy of the mount table) and probes with raw ICMP
sockets opened in those threads.  It holds no policy: no guards, no checks, no batching
decisions (those are :mod:`netns_kit.engine.runner`'s).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs
import sh

from netns_kit.command import Command
from netns_kit.errors import CommandTimeoutError, NetnsKitError, ToolMissingError
from netns_kit.executors import detached, nsfiles, rtnl
from netns_kit.executors.attached import run_attached
from netns_kit.executors.base import (
    HELD_SIGNALS,
    Process,
    SpawnedProcess,
    Watching,
    inherited_fds,
    quiet_thread,
)
from netns_kit.executors.batch import Batch
from netns_kit.executors.pinger import Pinger, file_budget
from netns_kit.executors.probes import ProbeAnswer, ProbeJob
from netns_kit.executors.stream import Stream
from netns_kit.result import Result

log = logging.getLogger("netns_kit")


@contextlib.contextmanager
def _forking() -> Iterator[set[int | signal.Signals]]:
    """Hold Ctrl-C and SIGTERM while ``sh`` forks; yields the mask from before.

    ``sh`` forks in Python: a signal between the fork and the exec raises
    KeyboardInterrupt in Python code, in the parent inside an at-fork hook (where it
    is lost) and in the child inside a copy of the caller's stack (which could close a
    lab from the copy).  Held, the signal waits in the parent until the fork is done,
    and the child resets its handlers first (see :func:`_child_setup`).
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _child_setup(fds: tuple[int, ...], mask: set[int | signal.Signals]) -> None:
    """In ``sh``'s child, before exec: Python's own handlers off (a pending signal now
    ends the child as it would the program), the caller's mask back, and ``fds``
    (opened O_CLOEXEC) kept open."""
    for signum in HELD_SIGNALS:
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in fds:
        os.set_inheritable(fd, True)


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
            except OSError as error:  # a file that is not (or no longer) a namespace
                said = f'Cannot open network namespace "{namespace}": {error.strerror}'
                raise OSError(error.errno, said) from None
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

    def write_sysctls(
        self,
        namespace: str,
        settings: Sequence[tuple[str, str]],
        missing_ok: bool,
        argv: tuple[str, ...],
    ) -> Result:
        """Write kernel settings as files of ``/proc/sys`` from inside ``namespace``:
        what ``sysctl -w`` does, without a process.  ``/proc/sys/net`` shows the
        network namespace of the thread that opens it.  A result like ``sysctl``'s:
        exit code 255 with its words for a key the kernel lacks (unless
        ``missing_ok``), 1 for a value it refuses."""
        try:
            with self.entered(namespace):
                for key, value in settings:
                    said = _write_setting(key, value, missing_ok)
                    if said is not None:
                        return Result(argv, said[0], "", said[1])
        except OSError as error:
            if error.strerror is None or not error.strerror.startswith("Cannot open"):
                raise
            return Result(argv, 1, "", error.strerror)
        return Result(argv, 0)

    def send(
        self,
        namespace: str,
        requests: Sequence[rtnl.Request],
        force: bool,
        argv: tuple[str, ...],
    ) -> Result:
        """A batch's rtnetlink requests, from a thread inside ``namespace``: the
        result ``ip -batch`` would give, without its process."""
        try:
            with self.entered(namespace):
                code, said = rtnl.run_batch(requests, force)
        except OSError as error:
            if error.strerror is None or not error.strerror.startswith("Cannot open"):
                raise
            return Result(argv, 1, "", error.strerror)
        return Result(argv, code, "", said)

    def set_gro(self, namespace: str, device: str, argv: tuple[str, ...]) -> Result:
        """GRO on for ``device``, from a thread inside ``namespace`` (no process)."""
        try:
            with self.entered(namespace):
                said = gro_on(device)
        except OSError as error:
            if error.strerror is None or not error.strerror.startswith("Cannot open"):
                raise
            return Result(argv, 1, "", error.strerror)
        return Result(argv, 1 if said else 0, "", said or "")


#: The batches (``Command.inside``) the rtnetlink path may take over.
_IP_BATCHES = (("ip", "-batch", "-"), ("ip", "-force", "-batch", "-"))

#: ethtool's ioctl and its "set GRO" command (linux/sockios.h, linux/ethtool.h).
_SIOCETHTOOL = 0x8946
_ETHTOOL_STSO = 0x1F
_ETHTOOL_SGRO = 0x2C


def gro_on(device: str) -> str | None:
    """Turn GRO on and TSO off for ``device`` in the calling thread's network
    namespace, as ``ethtool -K DEVICE gro on tso off`` does; ``None``, or the
    kernel's words.  (A veth hands a frame to its peer's NAPI queue only when the
    peer has GRO on and the sender no TSO.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # in the namespace
        for command, value, what in ((_ETHTOOL_SGRO, 1, "GRO"), (_ETHTOOL_STSO, 0, "TSO")):
            data = ctypes.create_string_buffer(struct.pack("II", command, value))
            request = struct.pack("16sP", device.encode(), ctypes.addressof(data))
            try:
                fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, request.ljust(40, b"\0"))
            except OSError as error:
                return f"Cannot set device {what} settings for {device}: {error.strerror}"
    return None


def _write_setting(key: str, value: str, missing_ok: bool) -> tuple[int, str] | None:
    """One setting written (None), or sysctl's exit code and words for its failure."""
    path = "/proc/sys/" + (key if "/" in key else key.replace(".", "/"))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        if missing_ok:
            return None
        return 255, f"sysctl: cannot stat {path}: No such file or directory"
    except OSError as error:
        return 255, f'sysctl: permission denied on key "{key}": {error.strerror}'
    try:
        os.write(fd, value.encode())
    except OSError as error:
        return 1, f'sysctl: setting key "{key}": {error.strerror}'
    finally:
        os.close(fd)
    return None


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

    #: Whether a namespace's ``ip -batch`` of the commonest line shapes is sent as
    #: rtnetlink requests from the setns thread instead of starting ``ip`` (see
    #: :mod:`netns_kit.executors.rtnl`); False runs ``ip`` for every batch.
    NETLINK = True
    #: Whether a root batch of ``netns add``/``delete`` lines is done by a thread
    #: (:mod:`netns_kit.executors.nsfiles`).  Off by default: it matches ``ip`` on the
    #: kernel, but its speed is not proven (right after a 10,000-namespace teardown a
    #: build's namespaces took longer than with ``ip``; not yet explained).
    NAMESPACE_FILES = False

    def _netlink_requests(self, command: Command) -> list[rtnl.Request] | None:
        """The requests of an ``ip -batch`` inside a namespace, if every line is a
        shape :mod:`~netns_kit.executors.rtnl` knows."""
        if not self.NETLINK or command.inside not in _IP_BATCHES or not command.stdin:
            return None
        return rtnl.parse_all([line for line in command.stdin.splitlines() if line.strip()])

    def _namespace_files(self, command: Command) -> list[tuple[str, str]] | None:
        """The ``netns add``/``delete`` lines of a root ``ip -batch``, when the whole
        batch is made of them and a thread of ours may do them (see
        :mod:`netns_kit.executors.nsfiles`)."""
        if command.namespace is not None or command.argv not in _IP_BATCHES or not command.stdin:
            return None
        if not (self.NETLINK and self.NAMESPACE_FILES) or not self._can_setns():
            return None
        return nsfiles.parse([line for line in command.stdin.splitlines() if line.strip()])

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
        :mod:`netns_kit.executors.pinger`).  Which job goes in which lane is the caller's plan."""
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

    @property
    def can_watch(self) -> bool:
        """Whether :meth:`watch` works here (as :attr:`can_probe`)."""
        return self._can_setns()

    def watch(self, jobs: Sequence[ProbeJob], *, interval: float, timeout: float) -> Watching:
        """Probe each job's addresses from its namespace every ``interval`` seconds,
        from raw ICMP sockets and one thread, until the handle's ``stop()`` (see
        :mod:`netns_kit.executors.stream`).  Opening a socket fails here, at once."""
        if not self.can_watch:
            raise NetnsKitError("raw ICMP probes need root without sudo: use fping -l")
        if self._setns is None:
            self._setns = _Setns()
        stream = Stream(
            self._setns.entered, jobs, interval=interval, timeout=timeout, on_thread=quiet_thread
        )
        return stream.start()

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        if command.namespace is not None and command.sysctls is not None and self._can_setns():
            if self._setns is None:
                self._setns = _Setns()
            return self._setns.write_sysctls(
                command.namespace, command.sysctls, command.missing_ok, command.argv
            )
        if command.namespace is None and command.gro is not None and self._can_setns():
            said = gro_on(command.gro)  # this thread is in the root namespace already
            return Result(command.argv, 1 if said else 0, "", said or "")
        if command.namespace is not None and command.gro is not None and self._can_setns():
            if self._setns is None:
                self._setns = _Setns()
            return self._setns.set_gro(command.namespace, command.gro, command.argv)
        named = self._namespace_files(command)
        if named is not None:
            code, said = nsfiles.run_batch(named, command.argv[1] == "-force")
            return Result(command.argv, code, "", said)
        if command.namespace is not None and command.inside is not None and self._can_setns():
            requests = self._netlink_requests(command)
            if requests is not None:
                if self._setns is None:
                    self._setns = _Setns()
                force = command.inside[1] == "-force"
                return self._setns.send(command.namespace, requests, force, command.argv)
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

    def _sh_start(
        self, command: Command, fds: tuple[int, ...], *, unblock: bool = False
    ) -> sh.RunningCommand:
        """Start through ``sh``, in the background, with signals held while it forks;
        ``fds`` are handed to the program.  The program gets the calling thread's
        mask (a worker's holds Ctrl-C and SIGTERM: a batch is never cut in half), or,
        ``unblock``, that mask without them: a background program must end when
        signalled."""
        argv = self.argv(command)
        program = self._program(argv[0])
        with _forking() as held:
            mask = held - HELD_SIGNALS if unblock else held
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
        held = signal.pthread_sigmask(signal.SIG_BLOCK, set()) & HELD_SIGNALS
        if held or command.stdin is not None:
            running = self._sh_start(command, (), unblock=True)
            return Process(command, _ShProcess(command.argv, running))
        argv = self.argv(command)
        with contextlib.ExitStack() as files:
            out = files.enter_context(tempfile.TemporaryFile())
            err = files.enter_context(tempfile.TemporaryFile())
            try:
                popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            except FileNotFoundError:
                raise ToolMissingError(argv[0]) from None
            files.pop_all()
        return Process(command, SpawnedProcess(command.argv, popen, out, err))

    def start_detached(self, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
        """Start every command in the background, each one's output appended to its
        log, through one launcher process (see :mod:`netns_kit.executors.detached`):
        a daemon then costs a fork of a small shell, not of this process."""
        launcher = Command(detached.launch_argv(commands, logs))
        log.debug("start detached: %d programs", len(commands))
        done = detached.run_launcher(self.argv(launcher))
        if not self.sudo:
            return detached.processes(commands, done)
        return detached.processes(commands, done, kill=self._sudo_kill)

    def _sudo_kill(self, pid: int, signum: int) -> None:
        self.execute(Command(("kill", f"-{int(signum)}", str(pid))))

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
