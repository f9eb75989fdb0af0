"""Fake machines on one machine, for testing code that builds labs across machines.

:class:`FakeMachines` makes ``n`` "machines" that an :class:`~netns_kit.SSHExecutor`
reaches as it would reach real machines, without touching the machine's own network:

* each machine is a network namespace with one underlay link, ``eth0``, to a switch;
  its address comes from a private range (``10.250.0.0/24`` by default) that exists
  only inside these namespaces;
* each runs Debian's ``sshd`` on that address, in a mount namespace of its own
  whose private ``/run`` gives it its own ``/run/netns``: namespace names made on
  one machine are that machine's only, as on a real machine;
* the switch and the ssh clients live in one more namespace (the underlay's lab
  host side), and the executors it hands out run ``ssh`` there
  (``SSHExecutor(local_namespace=...)``);
* host keys and the client's key are made for the run in a private temporary
  directory, and ``known_hosts`` is written up front (strict checking stays on).

The underlay itself is a :class:`~netns_kit.Lab`: an isolated one, whose host side
is the clients' namespace.  :meth:`FakeMachines.close` ends everything in order: the
executors it handed out (``ssh -O exit``: a machine's namespaces live as long as any
session process does), every sshd and what its sessions left running (by PID, the
processes descending from the sshd it started), the namespaces, then the keys.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, overload

from netns_kit import validate
from netns_kit.command import Command
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors import Process, ShellExecutor
from netns_kit.executors.ssh import SSHExecutor
from netns_kit.lab.lab import Lab

SSHD = "/usr/sbin/sshd"
#: The underlay device of every fake machine, named as a real machine's would be.
UNDERLAY = "eth0"
#: How long a fresh sshd may take to listen.
START_WAIT = 10.0
#: Programs the harness needs, and the Debian packages they come from.
NEEDS = {
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    SSHD: "openssh-server",
    "unshare": "util-linux",
    "nsenter": "util-linux",
}

# sh -c, in the machine's own mount namespace: a private /run (its /run/netns is the
# machine's own; sshd wants /run/sshd); root's ~/.bashrc emptied, as on a fresh machine
# (bash reads it for every command sshd runs: this machine's pyenv setup there cost
# 100-150 ms a call); then sshd.
_BOOT = (
    "mount -t tmpfs -o mode=0755 netns-kit-fake-machine /run"
    " && mkdir -p /run/netns /run/sshd"
    ' && rc=~root/.bashrc && { [ ! -f "$rc" ] || mount --bind /dev/null "$rc"; }'
    f' && exec {SSHD} -D -f "$1" -E "$2"'
)


def skip_reason() -> str | None:
    """Why fake machines cannot be made here, or ``None`` when they can."""
    if os.geteuid() != 0:
        return "fake machines need root (namespaces, mounts and sshd on the real kernel)"
    for program, package in NEEDS.items():
        if shutil.which(program) is None:
            return f"fake machines need {program!r}: apt-get install {package}"
    return None


class FakeMachine:
    """One fake machine: its namespace, underlay address, and how to reach it."""

    def __init__(self, owner: FakeMachines, index: int, address: str) -> None:
        self.owner = owner
        self.index = index
        self.name = f"h{index}"
        #: Its network namespace, on this machine.
        self.namespace = f"{owner.name}-{self.name}"
        #: Its underlay address: sshd listens there, VXLAN tunnels start there.
        self.address = address
        #: Its underlay device.
        self.underlay = UNDERLAY
        self.sshd: Process | None = None

    def __repr__(self) -> str:
        return f"<FakeMachine {self.name} {self.address} (namespace {self.namespace})>"

    @property
    def identity_file(self) -> Path:
        return self.owner.directory / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.owner.directory / "known_hosts"

    @property
    def ssh_options(self) -> tuple[str, ...]:
        """ssh options for this machine: no config files, only the run's known_hosts."""
        return (
            "-F",
            "none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        )

    def stop(self) -> None:
        """Power the machine off: its sshd and everything its sessions run end (by PID),
        and with them its namespaces.  Connections to it die: for testing how code
        copes with a machine that goes away."""
        if self.sshd is not None:
            _stop_tree(self.sshd.pid)
            with contextlib.suppress(Exception):
                self.sshd.wait(5.0)
            self.sshd = None

    def executor(self, **options: Any) -> SSHExecutor:
        """An SSHExecutor for this machine; :meth:`FakeMachines.close` closes it."""
        ex = SSHExecutor(
            self.address,
            identity_file=self.identity_file,
            ssh_options=self.ssh_options,
            local_namespace=self.owner.client_namespace,
            **options,
        )
        self.owner.executors.append(ex)
        return ex


class FakeMachines(Sequence[FakeMachine]):
    """``count`` fake machines (see the module docstring).  Use as a context manager,
    or call :meth:`start` and then :meth:`close`, which is safe to call twice."""

    def __init__(
        self,
        count: int = 2,
        *,
        name: str = "fakemachines",
        subnet: str = "10.250.0.0/24",
    ) -> None:
        number = validate.positive_int(count, "count", maximum=64)
        self.name = validate.lab_name(name)
        self.subnet = validate.network(subnet, "subnet")
        if self.subnet.version != 4 or self.subnet.num_addresses < number + 4:
            raise ValidationError("subnet", subnet, f"is not an IPv4 network with room for {count}")
        addresses = list(self.subnet.hosts())
        self.prefix = self.subnet.prefixlen
        #: The clients' address on the underlay (the last one of the subnet).
        self.client_address = str(addresses[-1])
        self.machines = [FakeMachine(self, i, str(addresses[i])) for i in range(number)]
        self.executors: list[SSHExecutor] = []
        self._dir: Path | None = None
        self._lab: Lab | None = None
        self._shell = ShellExecutor()

    def __repr__(self) -> str:
        return f"<FakeMachines {self.name}: {', '.join(h.address for h in self.machines)}>"

    @overload
    def __getitem__(self, index: int) -> FakeMachine: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[FakeMachine]: ...
    def __getitem__(self, index: int | slice) -> FakeMachine | Sequence[FakeMachine]:
        return self.machines[index]

    def __len__(self) -> int:
        return len(self.machines)

    def __iter__(self) -> Iterator[FakeMachine]:
        return iter(self.machines)

    @property
    def directory(self) -> Path:
        """The run's private directory: keys, sshd configs and logs, lab records."""
        if self._dir is None:
            raise NetnsKitError(f"fake machines {self.name!r} are not started")
        return self._dir

    @property
    def client_namespace(self) -> str:
        """Where the ssh clients run: the namespace that holds the underlay switch."""
        return f"{self.name}-host"

    def executors_by_name(self) -> dict[str, SSHExecutor]:
        """A fresh executor per machine, by machine name (``h0``, ``h1``...)."""
        return {machine.name: machine.executor() for machine in self.machines}

    # -- life cycle ---------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> Self:
        """Make the keys, the underlay and the machines, and wait until every sshd listens."""
        reason = skip_reason()
        if reason is not None:
            raise NetnsKitError(reason)
        self._dir = Path(tempfile.mkdtemp(prefix="netns-kit-fake-machines-"))  # 0700
        try:
            self._keys()
            self._underlay()
            for machine in self.machines:
                self._boot(machine)
            for machine in self.machines:
                self._wait(machine)
        except BaseException:
            self.close()
            raise
        return self

    def _run(self, *argv: str) -> None:
        Runner(self._shell).run(Command(argv))

    def _keys(self) -> None:
        directory = self.directory
        self._run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "netns-kit", "-f",
                  str(directory / "client_key"))  # fmt: skip
        shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
        known = []
        for machine in self.machines:
            key = directory / f"{machine.name}_host_key"
            self._run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", machine.name, "-f",
                      str(key))  # fmt: skip
            kind, blob = (directory / f"{machine.name}_host_key.pub").read_text().split()[:2]
            known.append(f"{machine.address} {kind} {blob}\n")
            (directory / f"{machine.name}_sshd_config").write_text(self._config(machine, key))
        (directory / "known_hosts").write_text("".join(known))

    def _config(self, machine: FakeMachine, key: Path) -> str:
        return "".join(
            f"{line}\n"
            for line in (
                "Port 22",
                f"ListenAddress {machine.address}",
                f"HostKey {key}",
                f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",  # the keys live under /tmp, which is world-writable
                "PidFile none",
                "UseDNS no",
                "PrintMotd no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "MaxSessions 64",
                "MaxStartups 64:30:128",
                "LogLevel INFO",
            )
        )

    def _underlay(self) -> None:
        """One switch in the clients' namespace; each machine's ``eth0`` a port of it."""
        lab = Lab(self.name, isolated=True, state_dir=self.directory / "state")
        self._lab = lab
        lab.open()
        with lab.batch():
            switch = lab.bridge("underlay", f"{self.client_address}/{self.prefix}")
            for machine in self.machines:
                ns = lab.namespace(machine.namespace)
                lab.link(
                    ns,
                    switch,
                    addresses=(f"{machine.address}/{self.prefix}", None),
                    names=(UNDERLAY, f"ul-{machine.name}"),
                )

    def _boot(self, machine: FakeMachine) -> None:
        directory = self.directory
        config = directory / f"{machine.name}_sshd_config"
        said = directory / f"{machine.name}_sshd.log"
        said.touch()
        argv = ["ip", "netns", "exec", machine.namespace, "unshare", "--mount"]
        argv += [
            "--propagation",
            "private",
            "sh",
            "-c",
            _BOOT,
            "fake-machine",
            str(config),
            str(said),
        ]
        machine.sshd = self._shell.start(Command(argv))

    def _wait(self, machine: FakeMachine) -> None:
        said = self.directory / f"{machine.name}_sshd.log"
        deadline = time.monotonic() + START_WAIT
        while "Server listening on" not in said.read_text(errors="replace"):
            if machine.sshd is None or not machine.sshd.running or time.monotonic() > deadline:
                log = said.read_text(errors="replace").strip() or "(no log)"
                raise NetnsKitError(f"sshd of fake machine {machine.name} did not start:\n{log}")
            time.sleep(0.01)

    def close(self) -> None:
        """End everything, in order (see the module docstring); safe to call twice."""
        problems: list[BaseException] = []
        for ex in reversed(self.executors):
            try:
                ex.close()
            except Exception as error:
                problems.append(error)
        self.executors.clear()
        for machine in self.machines:
            machine.stop()
        if self._lab is not None:
            try:
                self._lab.close()
            except Exception as error:
                problems.append(error)
            self._lab = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if problems:
            raise problems[0]


def _stat(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, parent, ..., start time."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


#: A process as signalled here: its PID and its start time, so that a PID the kernel
#: gave to somebody else meanwhile is never signalled.
_Proc = tuple[int, str]


def _descendants(pid: int) -> list[_Proc]:
    """Every process descending from ``pid``, from a snapshot of /proc."""
    tree: dict[int, list[_Proc]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            tree.setdefault(int(fields[1]), []).append((int(entry), fields[19]))
    found: list[_Proc] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _running(proc: _Proc) -> bool:
    """Still that very process, and not a zombie (only waiting to be reaped)."""
    fields = _stat(proc[0])
    return fields is not None and fields[19] == proc[1] and fields[0] != "Z"


def _stop_tree(pid: int, wait: float = 3.0) -> None:
    """SIGTERM ``pid`` (an sshd we started) and every process descending from it,
    then SIGKILL what is left after ``wait`` seconds.  Each is listed before any is
    signalled (a session's processes are re-parented once sshd is gone) and
    signalled by its PID, only while it is still the process that was listed."""
    fields = _stat(pid)
    if fields is None:
        return
    procs = [(pid, fields[19]), *_descendants(pid)]
    for proc in procs:
        if _running(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc[0], signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_running(p) for p in procs):
        time.sleep(0.02)
    for proc in procs:
        if _running(proc):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc[0], signal.SIGKILL)
