"""Another machine as an executor, through the system's OpenSSH client.

:class:`SSHExecutor` runs every command on one remote machine.  It is an executor
like the others (:mod:`netns_kit.executors`): it starts processes, here ``ssh``
clients, and nothing else; the runner above it batches, guards and maps errors the
same way for every machine.  We use OpenSSH as it is, because it is what people
already trust with their machines: no agent, no daemon of ours on the far side.

Three things make it fast enough to build labs with (measured on one machine, a
fake machine in a namespace: a call costs about 285 ms without connection reuse, 90 ms
with it, and a 500-line ``ip -batch`` over ssh 0.17 s):

* one ControlMaster connection per executor, opened once, its socket in a private
  0700 directory, closed by :meth:`SSHExecutor.close` (``ssh -O exit``);
* a batch is one ``ssh host ip -batch -`` with its lines on stdin: one round trip;
* runs in different namespaces overlap (``parallel``), each a session of the same
  connection (sshd allows ``MaxSessions``, 10 by default, per connection).

Quoting: ssh hands the remote login shell one string, so the argv of a command is
joined with :func:`shlex.join` into that string, word by word; nothing a user passes
reaches the remote shell unquoted.  The login shell must therefore be a POSIX shell
(``sh``, ``bash``, ``dash``, ``zsh``).

Failures: a remote program's exit code comes back as a result, like a local one,
and the runner maps it (a remote "File exists" is an ``AlreadyExistsError`` whose
message names the machine).  ssh itself exits 255 when it failed; then the connection
is checked, and a dead one or an unreachable machine is a
:class:`~netns_kit.MachineUnreachableError` with ssh's own words.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from netns_kit import validate
from netns_kit.command import Command
from netns_kit.errors import (
    CommandTimeoutError,
    MachineUnreachableError,
    ToolMissingError,
    ValidationError,
)
from netns_kit.executors import Process, detached, inherited_fds, run_attached
from netns_kit.executors.batch import Batch
from netns_kit.result import Result

log = logging.getLogger("netns_kit")

#: ssh's own exit code when it, not the remote program, failed.
SSH_FAILED = 255
#: How ssh words its own failures (the remote program's stderr rarely starts so).
_SSH_SAID = re.compile(
    r"^(ssh: |ssh_\w+: |mux_client_\w+: |Control socket |kex_exchange_identification: "
    r"|Connection (closed|reset|timed out|refused)|Host key verification failed"
    r"|Permission denied \(|Received disconnect |Timeout, server |client_loop: |nsenter: )",
    re.MULTILINE,
)
#: The first line a background program prints on stderr: its PID on the far side.
_PID_MARK = "netns-kit-remote-pid"


def _percent(path: str) -> str:
    """ssh expands ``%`` tokens in paths (``IdentityFile``, ``ControlPath``): a path
    that holds ``%`` must say ``%%`` to stay itself."""
    return path.replace("%", "%%")


class SSHExecutor:
    """Runs commands over ssh on the machine ``host`` names, ssh's destination: a host
    name, an ``ssh_config`` alias or an address (see the module docstring).

    ``user``, ``port`` and ``identity_file`` are ssh's ``-l``, ``-p`` and ``-i``.
    ``sudo=True`` runs every command through ``sudo -n`` on the far side, which fails
    at once instead of asking for a password.  ``ssh_options`` go to ssh first, so
    they win over the defaults here (``BatchMode=yes``, ``ConnectTimeout=10``,
    keep-alives every 15 s); they are ssh's own arguments and never reach a shell.

    ``local_namespace`` names a network namespace of *this* machine that the ssh
    client runs in (``nsenter --net``): a management network, or the underlay of the
    fake machines tests build (:mod:`netns_kit.testing.fakemachines`), reachable from there only.

    The connection opens at the first command (or :meth:`connect`) and stays until
    :meth:`close` (or ``IDLE`` seconds without a session, so that a master left by a
    killed process does not stay forever).  Use it as a context manager, or close it.
    """

    #: Runs in different namespaces that may overlap: sessions of one connection.
    OVERLAP = 4
    #: Seconds a connection may take to open.
    CONNECT_TIMEOUT = 10
    #: Seconds an unused master connection stays before it ends by itself.
    IDLE = 600

    def __init__(
        self,
        host: str,
        *,
        user: str | None = None,
        port: int = 22,
        identity_file: str | os.PathLike[str] | None = None,
        sudo: bool = False,
        ssh_options: Sequence[str] = (),
        local_namespace: str | None = None,
        parallel: int = OVERLAP,
    ) -> None:
        self.host = validate.ssh_host(host)
        self.user = None if user is None else validate.ssh_user(user)
        self.port = validate.positive_int(port, "port", maximum=65535)
        self.identity_file = None if identity_file is None else _path(identity_file)
        self.sudo = bool(sudo)
        self.ssh_options = validate.options(ssh_options)
        self.local_namespace = (
            None if local_namespace is None else validate.namespace_name(local_namespace)
        )
        self._parallel = validate.positive_int(parallel, "parallel", maximum=64)
        self._dir: Path | None = None
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def __repr__(self) -> str:
        who = f"{self.user}@" if self.user else ""
        return f"SSHExecutor({who}{self.host}:{self.port}, sudo={self.sudo})"

    @property
    def parallel(self) -> int:
        return self._parallel

    def describe(self) -> dict[str, Any]:
        """How to reach this machine again, for a lab's record (no secrets: the key is
        named by its path)."""
        return {
            "host": self.host,
            "user": self.user,
            "port": self.port,
            "identity_file": self.identity_file,
            "sudo": self.sudo,
            "ssh_options": list(self.ssh_options),
            "local_namespace": self.local_namespace,
        }

    @classmethod
    def from_description(cls, data: dict[str, Any]) -> SSHExecutor:
        """An executor made from :meth:`describe` (recovery after a crash)."""
        return cls(
            data["host"],
            user=data.get("user"),
            port=data.get("port", 22),
            identity_file=data.get("identity_file"),
            sudo=bool(data.get("sudo", False)),
            ssh_options=tuple(data.get("ssh_options", ())),
            local_namespace=data.get("local_namespace"),
        )

    @property
    def control_path(self) -> Path | None:
        """The master connection's socket, while the executor is connected."""
        return None if self._dir is None else self._dir / "cm"

    # -- argv (pure) --------------------------------------------------------------
    def _local(self) -> tuple[str, ...]:
        if self.local_namespace is None:
            return ("ssh",)
        return ("nsenter", f"--net=/run/netns/{self.local_namespace}", "--", "ssh")

    def _options(self, control: Path) -> list[str]:
        argv = [
            *self.ssh_options,
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.CONNECT_TIMEOUT}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
            "-p",
            str(self.port),
        ]
        if self.user is not None:
            argv += ["-l", self.user]
        if self.identity_file is not None:
            argv += ["-i", _percent(self.identity_file), "-o", "IdentitiesOnly=yes"]
        return [*argv, "-S", _percent(str(control))]

    def remote_line(self, command: Command) -> str:
        """The one string the remote login shell gets: the argv, each word quoted."""
        argv = ("sudo", "-n", *command.argv) if self.sudo else command.argv
        return shlex.join(argv)

    def argv(self, command: Command, control: Path | None = None) -> tuple[str, ...]:
        """The local argv that runs ``command`` on the machine, through the master."""
        where = control or self.control_path or Path("<control path>")
        return (
            *self._local(),
            *self._options(where),
            "-o",
            "ControlMaster=no",
            "-T",
            "--",
            self.host,
            self.remote_line(command),
        )

    def attached_argv(
        self, command: Command, *, tty: bool, control: Path | None = None
    ) -> tuple[str, ...]:
        """The local argv that runs ``command`` on the host attached to our terminal:
        ``-t`` asks the far side for a terminal (Ctrl-C then travels as a byte and the
        host's terminal turns it into SIGINT), ``-T`` for plain pipes."""
        where = control or self.control_path or Path("<control path>")
        return (
            *self._local(),
            *self._options(where),
            "-o",
            "ControlMaster=no",
            "-t" if tty else "-T",
            "--",
            self.host,
            self.remote_line(command),
        )

    def interact(self, command: Command, *, tty: bool = False) -> int:
        """Run ``command`` on the host on the caller's terminal (``ssh -t``); its exit
        code (ssh's own failure, exit 255, comes back as it is)."""
        self.connect()
        return run_attached(self.attached_argv(command, tty=tty))

    def master_argv(self, control: Path) -> tuple[str, ...]:
        """Open the master connection: it goes to the background once logged in."""
        return (
            *self._local(),
            *self._options(control),
            "-o",
            "ControlMaster=yes",
            "-o",
            f"ControlPersist={self.IDLE}",
            "-N",
            "--",
            self.host,
        )

    def control_argv(self, operation: str, control: Path) -> tuple[str, ...]:
        """Ask the master something (``check``, ``exit``): local, no network."""
        return ("ssh", "-S", _percent(str(control)), "-O", operation, "--", self.host)

    # -- the connection -----------------------------------------------------------
    def connect(self) -> Self:
        """Open the master connection now (the first command does it otherwise).

        Raises :class:`~netns_kit.MachineUnreachableError` when the machine cannot be
        reached or refuses us, with ssh's words: a lab checks every machine this way
        before it builds anything anywhere.
        """
        with self._lock:
            control = self.control_path
            if control is not None and control.exists():
                return self
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="netns-kit-ssh-"))  # 0700
                self._finalizer = weakref.finalize(
                    self, _shutdown, self.control_argv("exit", self._dir / "cm"), self._dir
                )
            self._open_master(self._dir / "cm")
        return self

    def _open_master(self, control: Path) -> None:
        said = control.parent / "master.log"
        argv = self.master_argv(control)
        log.debug("ssh: connecting to %s", self.host)
        # The master outlives this call: it gets no lab locks (only short-lived
        # programs inherit those) and its own process group (a Ctrl-C at the terminal
        # must not cut the connection of a lab that is rolling back).  Its stderr goes
        # to a file, so that nothing the background master keeps open can hang us.
        with open(said, "w") as err:
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=self.CONNECT_TIMEOUT + 20,
                    process_group=0,
                    check=False,
                )
            except FileNotFoundError:
                raise ToolMissingError(argv[0]) from None
            except subprocess.TimeoutExpired:
                raise MachineUnreachableError(
                    self.host, f"no connection after {self.CONNECT_TIMEOUT + 20} s"
                ) from None
        if done.returncode != 0 or not control.exists():
            raise MachineUnreachableError(self.host, said.read_text(errors="replace"))

    def alive(self) -> bool:
        """Whether the master connection is up (asks it: a few milliseconds)."""
        control = self.control_path
        if control is None or not control.exists():
            return False
        done = subprocess.run(
            self.control_argv("check", control),
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=10,
            process_group=0,
            check=False,
        )
        return done.returncode == 0

    def close(self) -> None:
        """End the master connection (``ssh -O exit``) and remove its directory.

        Every session on it ends too.  Safe to call twice; the executor connects
        again if it is used afterwards.
        """
        with self._lock:
            if self._dir is None:
                return
            if self._finalizer is not None:
                self._finalizer()  # runs _shutdown once, and never again at exit
            self._dir = None
            self._finalizer = None

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- running ------------------------------------------------------------------
    def _failed(self, stderr: str) -> MachineUnreachableError | None:
        """After ssh exited 255: ssh's failure (a dead connection or machine), or the
        remote program's own exit code?"""
        up = self.alive()
        if up and not _SSH_SAID.search(stderr):
            return None
        control = self.control_path
        if not up and control is not None:
            with contextlib.suppress(OSError):
                control.unlink()  # a killed master leaves its socket: connect anew next time
        return MachineUnreachableError(self.host, stderr)

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        self.connect()
        control = self.control_path
        assert control is not None
        argv = self.argv(command, control)
        feed: dict[str, Any] = (
            {"input": command.stdin} if command.stdin is not None else {"stdin": subprocess.DEVNULL}
        )
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                pass_fds=inherited_fds(),
                process_group=0,
                check=False,
                **feed,
            )
        except FileNotFoundError:
            raise ToolMissingError(argv[0]) from None
        except subprocess.TimeoutExpired:
            raise CommandTimeoutError(
                command.argv, -9, "", f"timed out after {timeout} s", machine=self.host
            ) from None
        if done.returncode == SSH_FAILED:
            failure = self._failed(done.stderr)
            if failure is not None:
                raise failure
        return Result(command.argv, done.returncode, done.stdout, done.stderr, machine=self.host)

    def execute_batch(self, batch: Batch) -> Result:
        """The whole batch in one round trip: ``ip [-n NS] -batch -``, lines on stdin."""
        return self.execute(batch.process())

    def script(self, commands: Sequence[Command], mark: str, *, keep_going: bool) -> str:
        """The remote shell's text for :meth:`execute_many` (pure): each command as a
        line of its own (quoted word by word, its stdin a quoted here-document),
        framed by markers that say where its output starts and how it ended."""
        lines = []
        for index, command in enumerate(commands):
            argv = command.argv
            if command.namespace is not None and command.inside is not None:
                # into the namespace as the local executor goes (setns), without the
                # mount namespace `ip -n` copies: 1.8 ms a namespace instead of 2.4
                enter = ("nsenter", f"--net=/run/netns/{command.namespace}", "--")
                argv = (*enter, *command.inside)
            argv = ("sudo", "-n", *argv) if self.sudo else argv
            lines.append(f"printf '\\n{mark} {index}\\n'; printf '\\n{mark} {index}\\n' >&2")
            line = Command(argv, stdin=command.stdin).shell()
            # the script itself is the shell's stdin: no command may read from it
            lines.append(line if command.stdin is not None else f"{line} </dev/null")
            lines.append(f"rc=$?; printf '\\n{mark} rc {index} %d\\n' \"$rc\" >&2")
            if not keep_going:
                lines.append('[ "$rc" -eq 0 ] || exit 0')
        return "\n".join([*lines, "exit 0"]) + "\n"

    def execute_many(
        self, commands: Sequence[Command], *, keep_going: bool = False
    ) -> list[Result | None]:
        """Many commands in one round trip, one after another: what a wave of many
        namespaces' batches costs on a machine where each process is a round trip.

        A POSIX shell on the far side reads them as a script on its stdin
        (``sh -s``, :meth:`script`), so a call has no size limit; without
        ``keep_going`` it stops at the first failure, and the commands after it get
        ``None`` (they never ran).  One result per command otherwise, as if each had
        run alone."""
        if len(commands) == 1:
            return [self.execute(commands[0])]
        mark = f"netns-kit-{secrets.token_hex(8)}"
        text = self.script(commands, mark, keep_going=keep_going)
        said = self.execute(Command(("sh", "-s"), stdin=text))
        return _unframed(commands, said, mark, self.host)

    def start(self, command: Command) -> Process:
        """Start ``command`` on the machine in the background.

        The far side first says its PID (``sh -c 'echo ...; exec "$@"'``, every word
        of the command a quoted argument), so that stopping it signals that process
        on the machine, by PID, and not only the local ssh client.
        """
        self.connect()
        control = self.control_path
        assert control is not None
        script = f'echo {_PID_MARK} "$$" >&2; exec "$@"'
        wrapped = Command(("sh", "-c", script, "netns-kit", *command.argv), stdin=command.stdin)
        argv = self.argv(wrapped, control)
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if command.stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                process_group=0,
            )
        except FileNotFoundError:
            raise ToolMissingError(argv[0]) from None
        return Process(command, _RemoteProcess(self, command, popen))

    def start_detached(self, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
        """Start every command on the machine in the background, each one's output
        appended to its log there, in one round trip (the launcher of
        :mod:`netns_kit.executors.detached`, through ``sudo -n`` when asked).  The PIDs
        are the machine's; a program is read (``cat /proc/PID/stat``) and signalled
        (``kill``) there."""
        launcher = Command(detached.launch_argv(commands, logs))
        done = self.execute(launcher, timeout=120)
        return detached.processes(commands, done, self._remote_stat, self._remote_kill)

    def _remote_stat(self, pid: int) -> str | None:
        found = self.execute(Command(("cat", f"/proc/{pid}/stat"), read=True), timeout=30)
        return found.stdout if found else None

    def _remote_kill(self, pid: int, signum: int) -> None:
        self.execute(Command(("kill", f"-{int(signum)}", str(pid))), timeout=30)


class _RemoteProcess:
    """A program started on a machine through ssh: the local client, and the remote PID."""

    def __init__(self, ex: SSHExecutor, command: Command, popen: subprocess.Popen[str]) -> None:
        self.ex = ex
        self.argv = command.argv
        self.popen = popen
        self.pid: int = popen.pid
        self.remote_pid: int | None = None
        self._known = threading.Event()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if popen.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                popen.stdin.write(command.stdin or "")
                popen.stdin.close()

    def _read_out(self) -> None:
        assert self.popen.stdout is not None
        self._out.append(self.popen.stdout.read())

    def _read_err(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            if self.remote_pid is None and line.startswith(_PID_MARK + " "):
                with contextlib.suppress(ValueError):
                    self.remote_pid = int(line.split()[1])
                self._known.set()
                continue
            self._err.append(line)
        self._known.set()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def said(self) -> tuple[str, str]:
        """What it printed so far (stdout only once it ends)."""
        return "".join(self._out), "".join(self._err)

    def signal(self, signum: int) -> None:
        """Signal the program on the machine by the PID it said; if it never said one,
        end the local client, which closes the session."""
        if not self.alive():
            return
        self._known.wait(5.0)
        if self.remote_pid is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signum)  # our own child, by its PID
            return
        kill = Command(("kill", f"-{int(signum)}", str(self.remote_pid)))
        self.ex.execute(kill, timeout=30)

    def wait(self, timeout: float | None) -> Result:
        """The client's end, and all the program printed.  Through a master the far
        side writes to our pipes itself (the client hands them over), so the output
        ends when the remote program does, not when the local client does."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise CommandTimeoutError(
                self.argv, -9, "", f"still running after {timeout} s", machine=self.ex.host
            ) from None
        for reader in self._readers:
            reader.join(timeout)
            if reader.is_alive():
                raise CommandTimeoutError(
                    self.argv, -9, "", f"still printing after {timeout} s", machine=self.ex.host
                )
        return Result(self.argv, code, "".join(self._out), "".join(self._err), machine=self.ex.host)


def _path(value: str | os.PathLike[str]) -> str:
    """An absolute path, ``~`` expanded as a shell or ssh would (``~/.ssh/lab``)."""
    if not isinstance(value, str | os.PathLike):
        raise ValidationError("identity_file", value, "is not a path")
    text = os.fspath(value)
    if not text or "\0" in text:
        raise ValidationError("identity_file", value, "is not a path")
    return os.path.abspath(os.path.expanduser(text))


def _shutdown(exit_argv: tuple[str, ...], directory: Path) -> None:
    """End a master connection and remove its directory (at close, or at exit)."""
    if (directory / "cm").exists():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                exit_argv,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=10,
                process_group=0,
                check=False,
            )
    shutil.rmtree(directory, ignore_errors=True)


def _sections(text: str, mark: str) -> tuple[dict[int, str], dict[int, int]]:
    """What each command printed, by index, and each one's exit code, from a
    stream framed by :meth:`SSHExecutor.script`'s markers."""
    frame = re.compile(rf"\n{re.escape(mark)} (?:(\d+)|rc (\d+) (-?\d+))\n")
    printed: dict[int, str] = {}
    codes: dict[int, int] = {}
    current: int | None = None
    position = 0
    for found in frame.finditer(text):
        if current is not None:
            printed[current] = printed.get(current, "") + text[position : found.start()]
        if found.group(1) is not None:
            current = int(found.group(1))
        else:
            codes[int(found.group(2))] = int(found.group(3))
            current = None
        position = found.end()
    if current is not None:
        printed[current] = printed.get(current, "") + text[position:]
    return printed, codes


def _unframed(
    commands: Sequence[Command], said: Result, mark: str, machine: str
) -> list[Result | None]:
    """One result per command of an :meth:`SSHExecutor.execute_many` call."""
    out, _ = _sections(said.stdout, mark)
    err, codes = _sections(said.stderr, mark)
    results: list[Result | None] = []
    for index, command in enumerate(commands):
        if index in codes:
            code = codes[index]
            results.append(
                Result(command.argv, code, out.get(index, ""), err.get(index, ""), machine=machine)
            )
        elif index in err:  # it started, and the session ended before it did
            stopped = err[index] + f"\n(the session ended first: {said.stderr.strip()[-200:]})"
            results.append(
                Result(
                    command.argv, said.returncode or 1, out.get(index, ""), stopped, machine=machine
                )
            )
        else:
            results.append(None)
    return results
