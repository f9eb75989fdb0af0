"""Rootless labs: a sandbox the kernel frees whole, and the executor that runs inside it.

A user who is not root may still make every namespace, veth, bridge, address, route,
sysctl and iptables rule a lab needs, inside a user namespace of their own: mapped to
root there, they own whatever they create in it.  A :class:`Sandbox` is a small holder
process in new user, mount, network and PID namespaces:

* the user namespace maps the caller to root;
* the mount namespace has an empty, private tmpfs on ``/run/netns`` for the lab's
  named namespaces, and a private ``/etc/netns`` for their files (a tmpfs over the
  machine's; where the machine has none, a writable layer over ``/etc`` kept in
  memory, so that one can be made);
* its network namespace is the lab's host side: bridges, host addresses, forwarding,
  NAT and host routes go there, as in an isolated lab;
* its PID namespace makes it leak-proof.  The holder is that namespace's first
  process; when it exits, the kernel kills every other process in the sandbox (a
  server a lab started, a batch half done), and with the last of them frees every
  namespace and everything in them.  Nothing needs undoing, even after ``kill -9``.

The holder dies with its lab (:meth:`Sandbox.stop`) and with the Python process: it
reads a pipe that only that process holds open and exits at end of file, which a
``kill -9`` causes too.  PR_SET_PDEATHSIG would not do: it fires when the *thread*
that started the holder ends.  ``unshare --fork --kill-child`` starts it; the holder
is the forked child (the PID namespace's first process), and a SIGKILL to ``unshare``
reaches it too (without ``--kill-child`` it would live on, holding the namespaces).
A kept lab (``netns-kit up``) tells its holder to stop watching the pipe; it then
lives until ``netns-kit down`` kills it by PID, checked against the start time the
record holds, so that a reused PID is never signalled.

:class:`SandboxExecutor` runs every command inside with ``nsenter``.  A thread cannot
join a user namespace (setns fails with EINVAL in a process with more than one
thread), so this path is process-based; batching keeps the processes few.  A command
that says how it runs from inside its namespace (``Command.inside``) enters that
namespace directly (``--net=/proc/HOLDER/root/run/netns/NS``): 2.0 ms a call here,
against 4.3 ms for ``ip -n NS`` in the sandbox, which copies the mount table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import attrs

from netns_kit.command import Command
from netns_kit.errors import (
    CommandTimeoutError,
    NetnsKitError,
    RootlessUnavailableError,
    SandboxGoneError,
    ToolMissingError,
    ValidationError,
)
from netns_kit.executors import (
    Executor,
    Process,
    ShellExecutor,
    default_executor,
    detached,
    inherited_fds,
    run_attached,
)
from netns_kit.executors.base import SpawnedProcess
from netns_kit.executors.batch import Batch
from netns_kit.result import Result

log = logging.getLogger("netns_kit")

#: The holder, a POSIX shell script run as root of the new user namespace.  ``set -e``:
#: a mount that fails ends it before it says "ready", and the caller reports why.  It
#: prints its PID as the machine sees it (``/proc`` is the machine's), then reads the
#: pipe until end of file, or until the caller says ``keep``.
HOLDER_SCRIPT = """\
set -e
[ -d /run/netns ] || { mount -t tmpfs -o mode=0755 netns-kit /run; mkdir /run/netns; }
if [ -d /etc/netns ]; then
  mount -t tmpfs -o mode=0755 netns-kit /etc/netns
else
  mount -t tmpfs netns-kit /run/netns
  mkdir /run/netns/upper /run/netns/work
  mount -t overlay -o lowerdir=/etc,upperdir=/run/netns/upper,workdir=/run/netns/work \\
    netns-kit /etc 2>/dev/null && mkdir /etc/netns || :
fi
mount -t tmpfs -o mode=0755 netns-kit /run/netns
ip link set dev lo up
read -r me _ < /proc/self/stat
echo "ready $me"
exec >/dev/null 2>&1
while read -r word; do [ "$word" = keep ] && exec sleep infinity; done
"""

#: How long a holder may take to say it is ready, and to go once killed (seconds).
START_WAIT = 10.0
STOP_WAIT = 5.0
#: How many commands may run in the sandbox at once (one per CPU of a small machine).
OVERLAP = 2


@attrs.frozen
class HolderRef:
    """A holder process as a record keeps it: its PID and its start time (clock ticks
    after boot, field 22 of ``/proc/PID/stat``), which tells it from a reused PID."""

    pid: int
    started: int

    def to_dict(self) -> dict[str, int]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HolderRef:
        return cls(int(data["pid"]), int(data["started"]))


# -- argv (pure) --------------------------------------------------------------------------
def holder_argv() -> tuple[str, ...]:
    """The holder: new user (caller mapped to root), mount, network and PID namespaces."""
    return (
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        HOLDER_SCRIPT,
        "netns-kit-sandbox",
    )


def netns_path(holder: int, namespace: str) -> str:
    """A named namespace of the sandbox, as a path the caller can open."""
    return f"/proc/{holder}/root/run/netns/{namespace}"


def enter_argv(
    holder: int, *, namespace: str | None = None, root: bool = False, wd: str | None = None
) -> tuple[str, ...]:
    """``nsenter`` into the sandbox (and into ``namespace``, one of its named ones).

    ``--pid`` puts what runs into the sandbox's PID namespace, so that it dies with
    the holder.  A caller who is not ``root`` keeps its credentials: without
    ``--preserve-credentials`` nsenter's setgroups fails; real root must not pass it.
    ``wd`` is the directory to run in (nsenter would start in ``/``).
    """
    net = f"--net={netns_path(holder, namespace)}" if namespace else "--net"
    words = ["nsenter", "--target", str(holder), "--user", "--mount", net, "--pid"]
    if not root:
        words.append("--preserve-credentials")
    if wd is not None:
        words.append(f"--wd={wd}")
    return (*words, "--")


# -- the kernel's refusal, named ------------------------------------------------------------
#: Settings with which a kernel refuses what a sandbox needs: the value that refuses,
#: what it means, and a value that allows it.
USERNS_SETTINGS: tuple[tuple[str, str, str, str], ...] = (
    ("kernel.unprivileged_userns_clone", "0", "unprivileged user namespaces are off", "1"),
    ("user.max_user_namespaces", "0", "no user namespace may be made", "15000"),
    (
        "kernel.apparmor_restrict_unprivileged_userns",
        "1",
        "AppArmor takes every capability away inside an unprivileged user namespace",
        "0",
    ),
)


def read_setting(key: str) -> str | None:
    """A kernel setting from ``/proc/sys``, or ``None`` where this kernel has none."""
    try:
        with open("/proc/sys/" + key.replace(".", "/")) as handle:
            return handle.read().strip()
    except OSError:
        return None


def userns_refusal(read: Callable[[str], str | None] | None = None) -> RootlessUnavailableError:
    """Why the kernel refused the sandbox: the first setting that refuses, if any."""
    read = read or read_setting
    for key, refusing, meaning, allow in USERNS_SETTINGS:
        if read(key) == refusing:
            return RootlessUnavailableError(key, refusing, meaning, allow)
    return RootlessUnavailableError()


# -- processes, as /proc shows them ----------------------------------------------------------
@attrs.frozen
class _Stat:
    state: str
    ppid: int
    started: int


def _stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and ")"
    return _Stat(fields[0], int(fields[1]), int(fields[19]))


def holder_alive(ref: HolderRef) -> bool:
    """Whether the holder a record names still runs: alive, this user's, and the same
    process (its start time), not another that got its PID."""
    found = _stat(ref.pid)
    if found is None or found.started != ref.started or found.state in ("Z", "X"):
        return False
    try:
        return os.stat(f"/proc/{ref.pid}").st_uid == os.geteuid()
    except OSError:
        return False


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (``/proc`` has no children file here)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None and stat.ppid == parent:
                found.append(int(entry))
    return found


def stop_holder(ref: HolderRef) -> bool:
    """End a sandbox: SIGKILL its holder if it is still ours, and wait until it is gone;
    the kernel frees everything in the sandbox with it.  Whether it was running."""
    if not holder_alive(ref):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + STOP_WAIT
    while holder_alive(ref) and time.monotonic() < deadline:
        time.sleep(0.005)
    return True


# -- the sandbox ---------------------------------------------------------------------------
class Sandbox:
    """The holder process of a rootless lab (see the module docstring).

    Made without a process; :meth:`start` starts the holder, :meth:`stop` ends it and
    everything in it, :meth:`keep` lets it outlive this process.
    """

    def __init__(self) -> None:
        self.ref: HolderRef | None = None
        self._popen: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = f"holder {self.ref.pid}" if self.ref else "not running"
        return f"<Sandbox {state}>"

    @classmethod
    def attach(cls, ref: HolderRef) -> Sandbox:
        """A sandbox known from a record (a kept lab); SandboxGoneError once it ended."""
        if not holder_alive(ref):
            raise SandboxGoneError(ref.pid)
        sandbox = cls()
        sandbox.ref = ref
        return sandbox

    @property
    def pid(self) -> int:
        """The holder's PID, which ``nsenter --target`` takes."""
        if self.ref is None:
            raise NetnsKitError("the lab's sandbox is not running: open the lab first")
        return self.ref.pid

    @property
    def running(self) -> bool:
        return self.ref is not None and holder_alive(self.ref)

    def start(self) -> HolderRef:
        """Start the holder and wait until it is ready; name the setting that refuses."""
        if self.ref is not None:
            return self.ref
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:
                raise ToolMissingError(tool)
        with contextlib.ExitStack() as undo:
            # not a pipe: unshare may write to it as it dies, long after we stop reading
            errors = self._errors = undo.enter_context(tempfile.TemporaryFile())
            popen = self._popen = _popen(
                holder_argv(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd="/",
                fds=(),
            )
            undo.callback(self._end_popen, kill=True)
            self.ref = self._ready(popen, errors)
            undo.pop_all()
        log.debug("sandbox: holder %d is ready", self.ref.pid)
        return self.ref

    def _ready(self, popen: subprocess.Popen[bytes], errors: IO[bytes]) -> HolderRef:
        """The holder, once it says it is ready (its PID, checked against /proc)."""
        assert popen.stdout is not None
        words = _read_line(popen.stdout.fileno(), START_WAIT).split()
        if len(words) != 2 or words[0] != "ready" or not words[1].isdigit():
            raise self._failed(popen, errors)
        pid = int(words[1])
        stat = _stat(pid)
        if stat is None or stat.ppid != popen.pid:
            raise NetnsKitError(f"the sandbox holder said it is process {pid}, which it is not")
        popen.stdout.close()
        return HolderRef(pid, stat.started)

    def _failed(self, popen: subprocess.Popen[bytes], errors: IO[bytes]) -> NetnsKitError:
        """Why a holder ended before it was ready: a setting that refuses, or its words."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(STOP_WAIT)
        errors.seek(0)
        said = errors.read().decode("utf-8", "replace").strip()
        refusal = userns_refusal()
        if refusal.setting is not None or "unshare failed" in said or "uid_map" in said:
            refusal.add_note(f"unshare said: {said or '(nothing)'}")
            return refusal
        return NetnsKitError(f"the rootless sandbox did not start: {said or '(no message)'}")

    def keep(self) -> None:
        """Let the holder outlive this process (a kept lab); its record holds its PID."""
        popen = self._popen
        if popen is None or popen.stdin is None:
            return
        try:
            popen.stdin.write(b"keep\n")
            popen.stdin.close()
        except BrokenPipeError:
            raise SandboxGoneError(self.pid) from None
        # unshare goes on waiting for the holder; whoever inherits it reaps it
        self._popen = None
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    def stop(self) -> None:
        """End the holder, and with it every process and namespace in the sandbox."""
        ref = self.ref
        self.ref = None
        if ref is not None:
            stop_holder(ref)
            log.debug("sandbox: holder %d ended, and everything in the sandbox with it", ref.pid)
        self._end_popen(kill=False)

    def _end_popen(self, *, kill: bool) -> None:
        popen, self._popen = self._popen, None
        if popen is not None:
            if kill and popen.poll() is None:
                popen.kill()  # our own child, unshare: --kill-child takes the holder
            for pipe in (popen.stdin, popen.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(STOP_WAIT)
        if self._errors is not None:
            self._errors.close()
            self._errors = None


def _read_line(fd: int, timeout: float) -> str:
    """One line from ``fd`` (empty at end of file), waiting at most ``timeout`` s."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise NetnsKitError(f"the rootless sandbox was not ready after {timeout:g} s")
        chunk = os.read(fd, 256)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()


# -- choosing a sandbox ----------------------------------------------------------------------
def find_sandbox(executor: object) -> Sandbox | None:
    """The sandbox an executor runs in, looking through wrappers (``.inner``)."""
    while executor is not None:
        if isinstance(executor, SandboxExecutor):
            return executor.sandbox
        executor = getattr(executor, "inner", None)
    return None


def lab_sandbox(rootless: bool | None, executor: Executor | None, lab: str) -> Sandbox | None:
    """The sandbox a lab runs in, or ``None`` for the machine's own namespaces.

    ``rootless=None`` gives a sandbox to a user who is not root and would otherwise
    run commands on the machine directly (no executor given, the default one a plain
    shell): that can only fail.  ``True`` takes no executor, or one that runs in a
    sandbox (a :class:`SandboxExecutor`, or a wrapper whose ``inner`` is one).
    """
    found = find_sandbox(executor)
    if rootless is None:
        if found is not None or executor is not None or os.geteuid() == 0:
            return found
        default = default_executor()
        if not isinstance(default, ShellExecutor) or default.sudo:
            return None
        log.info(
            "lab %r: not root, so it runs in a rootless sandbox "
            "(its own namespaces, no way out to the machine's network)",
            lab,
        )
        return Sandbox()
    if not rootless:
        if found is not None:
            raise ValidationError("rootless", rootless, "but the executor runs in a sandbox")
        return None
    if found is None and executor is not None:
        raise ValidationError(
            "executor", executor, "does not run in a sandbox: rootless=True takes none"
        )
    return found or Sandbox()


# -- the executor ------------------------------------------------------------------------------
class SandboxExecutor:
    """Runs every command inside a :class:`Sandbox`, through ``nsenter``.

    It starts processes and holds no policy, like every executor; the lab starts and
    stops its sandbox.  Results carry the command's own argv (``ip -n red ...``), so an
    error reads as it would on the machine.
    """

    parallel = OVERLAP
    #: Captures run a packet-socket writer (netns_kit.capture.writer), not tcpdump:
    #: in the sandbox's user namespace tcpdump cannot hand its file to user tcpdump.
    captures_with_packet_socket = True

    def __init__(self, sandbox: Sandbox | None = None) -> None:
        self.sandbox = sandbox if sandbox is not None else Sandbox()

    def __repr__(self) -> str:
        return f"SandboxExecutor({self.sandbox!r})"

    @classmethod
    def attach(cls, ref: HolderRef) -> SandboxExecutor:
        """An executor for a kept lab's running sandbox."""
        return cls(Sandbox.attach(ref))

    def close(self) -> None:
        """Nothing to release: the sandbox belongs to its lab, which stops it."""

    def argv(self, command: Command) -> tuple[str, ...]:
        """What really starts: ``nsenter`` into the sandbox, then the command."""
        holder = self.sandbox.pid
        root = os.geteuid() == 0
        if command.namespace is not None and command.inside is not None:
            prefix = enter_argv(holder, namespace=command.namespace, root=root, wd=_cwd())
            return (*prefix, *command.inside)
        return (*enter_argv(holder, root=root, wd=_cwd()), *command.argv)

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        result = _run(self.argv(command), command.stdin, timeout)
        if result is None:
            raise CommandTimeoutError(command.argv, -9, "", f"timed out after {timeout} s")
        return attrs.evolve(result, argv=command.argv)

    def execute_batch(self, batch: Batch) -> Result:
        return self.execute(batch.process())

    def start(self, command: Command) -> Process:
        """Start ``command`` in the background; its output goes to files, read at the end."""
        log.debug("start: %s", command)
        argv = self.argv(command)
        with contextlib.ExitStack() as files:
            out = files.enter_context(tempfile.TemporaryFile())
            err = files.enter_context(tempfile.TemporaryFile())
            popen = _popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, fds=())
            files.pop_all()
        return Process(command, _Inside(command.argv, popen, out, err))

    def start_detached(self, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
        """Start every command in the sandbox in the background, each one's output
        appended to its log, through one launcher (see
        :mod:`netns_kit.executors.detached`).  ``/proc`` in the sandbox is the
        machine's, so the PIDs the launcher prints are the machine's: read and
        signalled from here."""
        launcher = Command(detached.launch_argv(commands, logs))
        return detached.processes(commands, detached.run_launcher(self.argv(launcher)))

    def interact(self, command: Command, *, tty: bool = False) -> int:
        """Run ``command`` in the sandbox on the caller's terminal; its exit code.

        ``nsenter --pid`` forks and passes no signal on, so signals meant for the
        program go to nsenter's child; a Ctrl-C typed at the terminal reaches it
        directly (same process group)."""
        log.debug("attach: %s", command)
        return run_attached(self.argv(command), forward=_signal_inside)


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the directory was removed: nsenter starts in /
        return None


def _popen(
    argv: tuple[str, ...], *, fds: tuple[int, ...], **options: Any
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(argv, pass_fds=fds, **options)
    except FileNotFoundError:
        raise ToolMissingError(argv[0]) from None


def _signal_inside(nsenter: int, signum: int) -> None:
    """Signal what ``nsenter --pid`` started (its child), or nsenter before it forks.

    nsenter forks to enter the PID namespace and does not pass signals on.
    """
    for pid in _children(nsenter) or [nsenter]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _run(argv: tuple[str, ...], stdin: str | None, timeout: float | None) -> Result | None:
    """Run to the end; ``None`` when ``timeout`` ran out (what ran is killed)."""
    popen = _popen(
        argv,
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        fds=inherited_fds(),
    )
    with _killed_unless_done(popen):
        try:
            out, err = popen.communicate(None if stdin is None else stdin.encode(), timeout)
        except subprocess.TimeoutExpired:
            return None
    return Result(argv, popen.returncode, _text(out), _text(err))


@contextlib.contextmanager
def _killed_unless_done(popen: subprocess.Popen[bytes]) -> Iterator[None]:
    """On a timeout or an exception (Ctrl-C), kill what ran, by the PIDs we started."""
    try:
        yield
    finally:
        if popen.poll() is None:
            _signal_inside(popen.pid, signal.SIGKILL)
            popen.kill()
            popen.communicate()


def _text(data: bytes | None) -> str:
    return "" if data is None else data.decode("utf-8", "replace")


class _Inside(SpawnedProcess):
    """A background program in the sandbox: signals go to the program itself (nsenter
    would not pass them on)."""

    def signal(self, signum: int) -> None:
        if self.alive():
            _signal_inside(self.popen.pid, signum)
