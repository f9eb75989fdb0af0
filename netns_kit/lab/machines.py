"""The machines of a lab spread over several: who they are, how to reach them, and
where each of the lab's namespaces and bridges lives.

``Lab(name, machines={"a": executor, "b": executor}, underlay={"a": "10.0.0.1", ...})``
gives each machine a name (the lab's own, not its host name) and an executor (an
:class:`~netns_kit.SSHExecutor`, or :class:`~netns_kit.ShellExecutor` for this
machine), and its underlay address: the address the other machines reach it at,
where VXLAN tunnels start and end.  The first machine is the default one.

Before a lab spread over machines builds anything, :meth:`Machines.check` reaches
every machine side by side (an unreachable one raises
:class:`~netns_kit.HostUnreachableError`, and nothing is built anywhere) and finds
on each the device that holds its underlay address (``ip -j addr show to ADDR``).
A link across machines is then made on that device (``dev``), so the kernel gives it
the underlay's MTU less the encapsulation (1450 on a 1500 underlay).  An address
that is not on the machine is a :class:`~netns_kit.ValidationError`.  A dry run
(an executor that answers nothing) finds no device: the tunnel then goes without
``dev``, with its MTU set to 1500 less the encapsulation.

VNIs are given per lab: from a start that the lab's name picks (so that two labs
between the same machines rarely meet), one more for each link, never one twice
while the lab lives.  The record keeps each link's VNI with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from netns_kit import validate
from netns_kit.command import Command
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Step, on_machine
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor, quiet_thread
from netns_kit.executors.dispatch import RoutingExecutor, describe
from netns_kit.executors.ssh import SSHExecutor
from netns_kit.objects.vxlan import OVERHEAD, VNI_MAX
from netns_kit.spec import MachineSpec

#: VNIs a lab's start is picked among: multiples of this, so each lab has a block.
VNI_BLOCK = 4096
#: The MTU a tunnel's underlay is taken to have when no device could be read.
UNDERLAY_MTU = 1500


@attrs.define
class Machine:
    """One machine of a lab: its name in the lab, its executor, its underlay."""

    name: str
    executor: Executor
    underlay: str | None
    #: The device holding ``underlay`` (found by :meth:`Machines.check`).
    device: str | None = None


def underlay_command(address: str) -> Command:
    """The read that finds the device holding ``address`` (``[]``: none does)."""
    return Command(("ip", "-j", "addr", "show", "to", address), read=True)


def vni_start(lab: str) -> int:
    """Where a lab's VNIs start: a block picked by the lab's name."""
    digest = int.from_bytes(hashlib.blake2b(lab.encode(), digest_size=4).digest(), "big")
    return 1 + (digest % (VNI_MAX // VNI_BLOCK - 1)) * VNI_BLOCK


class Machines:
    """The machines of one lab (see the module docstring)."""

    def __init__(
        self,
        lab: str,
        machines: Mapping[str, Executor],
        underlay: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(machines, Mapping) or not machines:
            raise ValidationError("machines", machines, "must map machine names to executors")
        if not isinstance(underlay, Mapping | None):
            raise ValidationError("underlay", underlay, "must map machine names to addresses")
        addresses = dict(underlay or {})
        for name in addresses:
            if name not in machines:
                raise ValidationError("underlay", name, "is not one of the lab's machines")
        self.machines: dict[str, Machine] = {}
        for name, executor in machines.items():
            validate.namespace_name(name, "machines")
            if not isinstance(executor, Executor):
                raise ValidationError(f"machines[{name!r}]", executor, "is not an executor")
            address = addresses.get(name, _address_of(executor))
            if address is None and len(machines) > 1:
                raise ValidationError(
                    "underlay", name, "has no underlay address (the address the others reach it at)"
                )
            if address is not None:
                address = str(validate.address(address, f"underlay[{name!r}]"))
            self.machines[name] = Machine(name, executor, address)
        given = [m.underlay for m in self.machines.values() if m.underlay is not None]
        if len(set(given)) != len(given):
            raise ValidationError("underlay", addresses, "gives one address to two machines")
        if len({ipaddress.ip_address(a).version for a in given}) > 1:
            raise ValidationError("underlay", addresses, "mixes IPv4 and IPv6 addresses")
        self.first = next(iter(self.machines))
        self.executor = RoutingExecutor({n: m.executor for n, m in self.machines.items()})
        #: Where each of the lab's namespaces lives, and each bridge by its key.
        self.homes: dict[str, str] = {}
        self.bridge_homes: dict[tuple[str | None, str], str] = {}
        #: Whether the lab made the executors (from a file) and closes them.
        self.owned = False
        #: The /etc/netns directories the lab made on each machine (``Lab.hosts``).
        self.files_made: dict[str, set[str]] = {}
        self._next_vni = vni_start(lab)

    def __repr__(self) -> str:
        return f"<Machines {', '.join(self.machines)}>"

    @property
    def names(self) -> list[str]:
        return list(self.machines)

    def executor_of(self, machine: str) -> Executor:
        return self.machines[machine].executor

    def home(self, machine: object, field: str = "machine") -> str:
        """A builder's ``machine``: one of the lab's machines, the first by default."""
        if machine is None:
            return self.first
        if not isinstance(machine, str) or machine not in self.machines:
            raise ValidationError(
                field, machine, f"is not one of the lab's machines ({self.names})"
            )
        return machine

    # -- before anything is built -------------------------------------------------
    def check(self) -> None:
        """Reach every machine, side by side, and find its underlay device (see the
        module docstring); raise the first machine's failure, in the lab's order."""
        with ThreadPoolExecutor(len(self.machines), initializer=quiet_thread) as pool:
            futures = [pool.submit(self._check, m) for m in self.machines.values()]
        for future in futures:
            future.result()

    @staticmethod
    def _check(machine: Machine) -> None:
        connect = getattr(machine.executor, "connect", None)
        if connect is not None:
            connect()
        if machine.underlay is None:
            return
        command = underlay_command(machine.underlay)
        said = Runner(machine.executor).run(command).stdout
        if not said.strip():
            return  # a dry run: no answer
        found = json.loads(said)
        if not found:
            raise ValidationError(
                f"underlay[{machine.name!r}]",
                machine.underlay,
                f"is not an address of machine {machine.name!r}",
            )
        machine.device = str(found[0]["ifname"])

    # -- placing steps --------------------------------------------------------------
    def place(self, steps: Sequence[Step], machine: str) -> list[Step]:
        return on_machine(steps, machine)

    def everywhere(self, steps: Sequence[Step]) -> list[Step]:
        """The same steps on every machine (the host side of each)."""
        return [step for machine in self.machines for step in on_machine(steps, machine)]

    def next_vni(self) -> int:
        """The next VNI of the lab: never one twice while it lives."""
        vni = self._next_vni
        self._next_vni = vni % VNI_MAX + 1
        return vni

    def tunnel_mtu(self, machine: str) -> int | None:
        """The MTU a tunnel end must be given: ``None`` when the kernel sets it from
        the underlay device, else the usual underlay's less the encapsulation."""
        found = self.machines[machine]
        if found.device is not None or found.underlay is None:
            return None
        return UNDERLAY_MTU - OVERHEAD[ipaddress.ip_address(found.underlay).version]

    def describe(self) -> dict[str, dict[str, Any]]:
        """What the lab's record says of each machine (see :mod:`netns_kit.executors.dispatch`)."""
        return {
            name: {"executor": describe(m.executor), "underlay": m.underlay}
            for name, m in self.machines.items()
        }

    def specs(self) -> tuple[MachineSpec, ...]:
        """The machines as a topology names them (a file's ``[machines]`` table)."""
        found = []
        for name, machine in self.machines.items():
            ex = machine.executor
            if isinstance(ex, SSHExecutor):
                spec = MachineSpec(name, ex.host, ex.user, ex.port, ex.identity_file, ex.sudo)
            else:
                spec = MachineSpec(name, "localhost")
            found.append(attrs.evolve(spec, underlay=machine.underlay))
        return tuple(found)

    def close(self) -> None:
        """Close the executors (their connections); they open again if used."""
        for machine in self.machines.values():
            getattr(machine.executor, "close", lambda: None)()


def _address_of(executor: Executor) -> str | None:
    """An ssh executor's host, when it is an IP address: the usual underlay address."""
    if isinstance(executor, SSHExecutor):
        try:
            return str(ipaddress.ip_address(executor.host))
        except ValueError:
            return None
    return None


def spread(
    lab: str,
    machines: Mapping[str, Executor] | None,
    underlay: Mapping[str, str] | None,
    executor: Executor | None,
    rootless: bool | None,
) -> Machines | None:
    """A lab's machines, from its arguments: ``None`` for a lab on one machine."""
    if machines is None:
        if underlay is not None:
            raise ValidationError("underlay", underlay, "needs machines= (the lab's machines)")
        return None
    if executor is not None:
        raise ValidationError("executor", executor, "and machines= exclude each other")
    if rootless:
        raise ValidationError("rootless", rootless, "is for a lab on this machine only")
    return Machines(lab, machines, underlay)


def reach(machine: MachineSpec) -> SSHExecutor:
    """The executor a file's ``[machines]`` entry stands for."""
    return SSHExecutor(
        machine.address,
        user=machine.user,
        port=machine.port,
        identity_file=machine.identity_file,
        sudo=machine.sudo,
    )
