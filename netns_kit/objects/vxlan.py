"""VXLAN: an Ethernet segment carried between machines in UDP.

A :class:`Vxlan` is one end of a point-to-point tunnel: a device on one machine
with a VNI, the underlay address of this machine (``local``) and of the other
(``remote``), and the standard port 4789.  Its twin on the other machine has the
same VNI and the addresses swapped; frames put into one come out of the other.

Where it is made matters (measured on this kernel, 6.18):

* The device is made where the underlay is (``dev <underlay>``, in
  ``underlay_namespace``): the kernel then sets its MTU to the underlay's minus the
  encapsulation, 1450 on a 1500 underlay (IPv4; 70 bytes less over IPv6).  Without
  ``dev`` the MTU stays 1500 and every full-size frame is sent as fragments.
* It is made *in place* in the namespace it serves (``ip link add name V netns NS
  type vxlan ... dev UL``): its UDP socket stays with the underlay, where the
  request came from, and no 17 ms move is needed.  One command, so a crash never
  leaves the device half-way, in the underlay's namespace.
* Deleting the namespace deletes the device; deleting the underlay's namespace
  deletes it too.

Steps follow the other links' (:mod:`netns_kit.objects.link`): made in ``Phase.CREATE``,
recorded as a link of its namespace (undone by deleting it), then tagged, given its
addresses, made a bridge port if asked, and brought up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import attrs

from netns_kit import validate
from netns_kit.command import Command, ip
from netns_kit.engine.runner import act, apply_steps
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor, default_executor
from netns_kit.objects.link import Bridge, Interface

#: The IANA port for VXLAN (the kernel's own default is Linux's old 8472).
VXLAN_PORT = 4789
#: VNIs are 24 bits wide.
VNI_MAX = 2**24 - 1
#: Bytes the encapsulation adds: outer Ethernet 14, IP 20 (IPv6: 40), UDP 8, VXLAN 8.
OVERHEAD = {4: 50, 6: 70}


def _ifname(value: object) -> str:
    return validate.interface_name(value, "name")


def _underlay(value: object) -> str | None:
    return None if value is None else validate.interface_name(value, "underlay")


def _vni(value: object) -> int:
    return validate.positive_int(value, "vni", maximum=VNI_MAX)


def _local(value: object) -> str:
    return str(validate.address(value, "local"))


def _remote(value: object) -> str:
    return str(validate.address(value, "remote"))


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")


def _underlay_ns(value: object) -> str | None:
    return validate.optional_namespace(value, "underlay_namespace")


def _port(value: object) -> int:
    return validate.positive_int(value, "port", maximum=65535)


@attrs.define
class Vxlan:
    """One end of a VXLAN tunnel (see the module docstring).

    ``underlay`` is the device the tunnel's packets leave by, in
    ``underlay_namespace`` (``None``: the root namespace, as on a real machine);
    ``namespace`` is where the device serves (``None``: where the underlay is).
    ``underlay=None`` leaves the device to the routes to ``remote``: its MTU then
    stays 1500 unless ``mtu`` is given.
    """

    name: str = attrs.field(converter=_ifname)
    vni: int = attrs.field(converter=_vni)
    local: str = attrs.field(converter=_local)
    remote: str = attrs.field(converter=_remote)
    underlay: str | None = attrs.field(converter=_underlay)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    underlay_namespace: str | None = attrs.field(default=None, converter=_underlay_ns)
    port: int = attrs.field(default=VXLAN_PORT, converter=_port)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if validate.address(self.local).version != validate.address(self.remote).version:
            raise ValidationError(
                "remote", self.remote, f"is not of the same IP version as local {self.local!r}"
            )
        if self.local == self.remote:
            raise ValidationError("remote", self.remote, "is the local address itself")

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def home(self) -> str | None:
        """The namespace the device lives in once made."""
        return self.underlay_namespace if self.namespace is None else self.namespace

    @property
    def end(self) -> Interface:
        """The device, as an Interface to address and bring up."""
        return Interface(self.name, self.home, executor=self.executor)

    @property
    def overhead(self) -> int:
        """What the encapsulation takes from the underlay's MTU (50, or 70 over IPv6)."""
        return OVERHEAD[validate.address(self.local).version]

    def twin(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        underlay: str | None = None,
        underlay_namespace: str | None = None,
        executor: Executor | None = None,
    ) -> Vxlan:
        """The other end: same VNI and port, ``local`` and ``remote`` swapped; the
        rest is the far machine's (its ``underlay`` defaults to this end's)."""
        return Vxlan(
            name or self.name,
            self.vni,
            self.remote,
            self.local,
            underlay or self.underlay,
            namespace,
            underlay_namespace,
            self.port,
            executor=executor,
        )

    # -- commands (pure) ----------------------------------------------------------
    def create_commands(self) -> list[Command]:
        """Made where the underlay is, in place in its namespace (one command)."""
        argv = ["link", "add", "name", self.name]
        if self.home != self.underlay_namespace and self.home is not None:
            argv += ["netns", self.home]
        argv += ["type", "vxlan", "id", str(self.vni), "local", self.local]
        argv += ["remote", self.remote]
        argv += ["dev", self.underlay] if self.underlay is not None else []
        argv += ["dstport", str(self.port)]
        return [ip(*argv, namespace=self.underlay_namespace)]

    def delete_commands(self) -> list[Command]:
        return self.end.delete_commands()

    # -- steps (pure) -------------------------------------------------------------
    def steps(
        self,
        *,
        tag: str | None,
        addresses: Sequence[str] = (),
        mtu: int | None = None,
        bridge: Bridge | None = None,
        link_local: bool = True,
    ) -> list[Step]:
        """Create (recorded, undone by deleting it), then tag, MTU, bridge port,
        addresses and up.  ``mtu=None`` keeps the kernel's: the underlay's minus
        :attr:`overhead`."""
        if bridge is not None and bridge.namespace != self.home:
            raise ValidationError(
                "bridge", bridge.name, f"is not in the device's namespace {self.home!r}"
            )
        if mtu is not None:
            validate.positive_int(mtu, "mtu", minimum=68, maximum=65535)
        (create,) = self.create_commands()
        (undo,) = self.delete_commands()
        entry = Entry("link", self.name, self.home, undo=undo.argv, value=str(self.vni))
        steps = [Step(create, (undo,), entry, Phase.CREATE, frozenset({self.home}))]
        if bridge is not None:
            steps.append(bridge.port_step(self.end))
        steps += self.end.settings(tag=tag, mtu=mtu, addresses=addresses, link_local=link_local)
        return steps

    # -- actions ------------------------------------------------------------------
    def create(
        self, *, addresses: Sequence[str] = (), mtu: int | None = None, tag: str | None = None
    ) -> Self:
        """Make the device with its addresses, up; undone again if a step fails."""
        apply_steps(self._ex, self.steps(tag=tag, addresses=addresses, mtu=mtu))
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())


@attrs.frozen
class VxlanPair:
    """A link between two machines of a lab: a :class:`Vxlan` on each, one VNI.

    ``near`` is at the link's ``a`` end, on ``machines[0]``; ``far`` at ``b``.
    """

    near: Vxlan
    far: Vxlan
    machines: tuple[str, str]

    @property
    def vni(self) -> int:
        return self.near.vni

    @property
    def name(self) -> str:
        return self.near.name

    @property
    def peer(self) -> str:
        return self.far.name
