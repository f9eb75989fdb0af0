"""Links: any interface, veth pairs and bridges.

Every command names its interface with the explicit ``dev``/``name`` keyword, so that
an interface called ``up``, ``help`` or ``dev`` is just a name (``ip link add up type
bridge`` would create ``bridge0``).

Besides their commands, bridges and veth pairs emit the steps a lab builds them with
(:meth:`Bridge.steps`, :meth:`VethPair.steps`): what to run, what undoes it, in which
phase, and what the write-ahead record says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import attrs

from . import validate
from .command import Command, ip
from .errors import ValidationError
from .executor import Executor, default_executor
from .runner import act
from .state import LinkInfo, Reader
from .step import Entry, Phase, Step


def _ifname(value: object) -> str:
    return validate.interface_name(value, "name")


def _peer(value: object) -> str:
    return validate.interface_name(value, "peer")


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")  # type: ignore[arg-type]


def _peer_ns(value: object) -> str | None:
    return validate.optional_namespace(value, "peer_namespace")  # type: ignore[arg-type]


@attrs.define
class Interface:
    """Any link, in the root namespace or in ``namespace``."""

    name: str = attrs.field(converter=_ifname)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    def _ip(self, *args: str) -> Command:
        return ip(*args, namespace=self.namespace)

    # -- commands (pure) ---------------------------------------------------------
    def up_commands(self, *, link_local: bool = True) -> list[Command]:
        """``link_local=False`` brings the link up without an IPv6 link-local address
        (``addrgenmode none``): no DAD, MLD or router solicitation traffic."""
        quiet = () if link_local else ("addrgenmode", "none")
        return [self._ip("link", "set", "dev", self.name, *quiet, "up")]

    def down_commands(self) -> list[Command]:
        return [self._ip("link", "set", "dev", self.name, "down")]

    def add_address_commands(self, cidr: str) -> list[Command]:
        """IPv6 addresses get ``nodad``: a lab checks its addresses itself, and an
        address in duplicate address detection is unusable for a second or two."""
        address = validate.interface(cidr, "address")
        nodad = ("nodad",) if address.version == 6 else ()
        return [self._ip("addr", "add", str(address), "dev", self.name, *nodad)]

    def del_address_commands(self, cidr: str) -> list[Command]:
        address = validate.interface(cidr, "address")
        return [self._ip("addr", "del", str(address), "dev", self.name)]

    def set_mtu_commands(self, mtu: int) -> list[Command]:
        value = validate.positive_int(mtu, "mtu", minimum=68, maximum=65535)
        return [self._ip("link", "set", "dev", self.name, "mtu", str(value))]

    def set_alias_commands(self, alias: str) -> list[Command]:
        """A tag that reads back as ``ifalias`` (``alias`` on ``link add`` is ignored)."""
        text = validate.plain_text(alias, "alias")
        return [self._ip("link", "set", "dev", self.name, "alias", text)]

    def delete_commands(self) -> list[Command]:
        return [self._ip("link", "delete", "dev", self.name)]

    # -- steps (pure) ------------------------------------------------------------
    def address_step(self, cidr: str) -> Step:
        """IPv4 addresses go with the link's settings; IPv6 ones once every link is up."""
        (command,) = self.add_address_commands(cidr)
        six = validate.interface(cidr, "address").version == 6
        return Step(command, phase=Phase.ADDRESS6 if six else Phase.CONFIGURE)

    def settings(
        self,
        *,
        tag: str | None,
        mtu: int | None = None,
        addresses: Sequence[str] = (),
        link_local: bool = True,
    ) -> list[Step]:
        """Tag, MTU, addresses and up: what every link of a lab gets."""
        steps = [Step(self.set_alias_commands(tag)[0])] if tag else []
        if mtu is not None:
            steps.append(Step(self.set_mtu_commands(mtu)[0]))
        steps += [self.address_step(cidr) for cidr in addresses]
        steps.append(Step(self.up_commands(link_local=link_local)[0]))
        return steps

    def created(self, command: Command, *, lives_in: frozenset[str | None] | None = None) -> Step:
        """The step that makes this link; its undo deletes it, and the record says so."""
        (undo,) = self.delete_commands()
        entry = Entry("link", self.name, self.namespace, undo=undo.argv)
        where = frozenset({self.namespace}) if lives_in is None else lives_in
        return Step(command, (undo,), entry, Phase.CREATE, where)

    # -- actions -----------------------------------------------------------------
    def up(self, *, link_local: bool = True) -> Self:
        act(self._ex, self.up_commands(link_local=link_local))
        return self

    def down(self) -> Self:
        act(self._ex, self.down_commands())
        return self

    def add_address(self, cidr: str) -> Self:
        act(self._ex, self.add_address_commands(cidr))
        return self

    def del_address(self, cidr: str) -> Self:
        act(self._ex, self.del_address_commands(cidr))
        return self

    def set_mtu(self, mtu: int) -> Self:
        act(self._ex, self.set_mtu_commands(mtu))
        return self

    def set_alias(self, alias: str) -> Self:
        act(self._ex, self.set_alias_commands(alias))
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())


#: Spanning tree as short as the kernel allows (centiseconds): forward_delay >= 200,
#: hello_time >= 100 and max_age >= 600 with STP on.  A ring of three bridges then
#: converges in 4-5 s instead of the 30 s of the defaults.
STP_TIMERS = (("forward_delay", 200), ("hello_time", 100), ("max_age", 600))


@attrs.define
class Bridge(Interface):
    """A Linux bridge (``ip link add name X type bridge``); ``stp`` runs spanning tree
    (the kernel's own, with :data:`STP_TIMERS`), which a ring of bridges needs."""

    stp: bool = attrs.field(default=False, kw_only=True)

    def create_commands(self) -> list[Command]:
        options: list[str] = []
        if self.stp:
            options += [word for key, value in STP_TIMERS for word in (key, str(value))]
            options += ["stp_state", "1"]
        return [self._ip("link", "add", "name", self.name, "type", "bridge", *options)]

    def attach_commands(self, interface: Interface | str) -> list[Command]:
        port = _port_name(interface)
        return [self._ip("link", "set", "dev", port, "master", self.name)]

    def detach_commands(self, interface: Interface | str) -> list[Command]:
        port = _port_name(interface)
        return [self._ip("link", "set", "dev", port, "nomaster")]

    def steps(self, *, tag: str | None, address: str | None = None) -> list[Step]:
        """Create, tag, bring up, and give the bridge its (host side's) address."""
        steps = [self.created(self.create_commands()[0])]
        steps += self.settings(tag=tag)
        if address is not None:
            steps.append(self.address_step(address))
        return steps

    def port_step(self, interface: Interface | str) -> Step:
        """Attach a port: the planner finishes these before the far ends come up."""
        return Step(self.attach_commands(interface)[0], port=True)

    def create(self) -> Self:
        act(self._ex, self.create_commands())
        return self

    def attach(self, interface: Interface | str) -> Self:
        """Make ``interface`` (in the bridge's namespace) a port of this bridge."""
        act(self._ex, self.attach_commands(interface))
        return self

    def detach(self, interface: Interface | str) -> Self:
        act(self._ex, self.detach_commands(interface))
        return self

    def ports(self) -> list[LinkInfo]:
        """The interfaces attached to this bridge, read back with ``ip -j``."""
        return Reader(self._ex).bridge_ports(self.name, self.namespace)


def _port_name(interface: Interface | str) -> str:
    name = interface.name if isinstance(interface, Interface) else interface
    return validate.interface_name(name, "interface")


def _index(value: object) -> int | None:
    if value is None:
        return None
    return validate.positive_int(value, "index", minimum=2, maximum=2**31 - 1)


@attrs.define
class VethPair:
    """Two linked virtual Ethernet ends, each made directly in its namespace.

    One ``ip link add name A netns NSA type veth peer name B netns NSB`` creates both
    ends in place.  Creating in the root namespace and moving afterwards costs about
    17 ms a move, and leaves a dangling veth when interrupted in between.

    ``index``/``peer_index`` give an end its interface index.  A bridge port whose veth
    peer has the same index in another namespace stays ``disabled`` for about a
    second (the kernel then takes the veth for a device of its own kind and delays
    its carrier event), and fresh namespaces collide often: see
    :meth:`netns_kit.holdings.Holdings.ends`.
    """

    name: str = attrs.field(converter=_ifname)
    peer: str = attrs.field(converter=_peer)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    peer_namespace: str | None = attrs.field(default=None, converter=_peer_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    index: int | None = attrs.field(default=None, kw_only=True, converter=_index)
    peer_index: int | None = attrs.field(default=None, kw_only=True, converter=_index)

    def __attrs_post_init__(self) -> None:
        if self.name == self.peer and self.namespace == self.peer_namespace:
            raise ValidationError(
                "peer", self.peer, "is the same name in the same namespace as the first end"
            )

    @property
    def _ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def end(self) -> Interface:
        """The first end, as an Interface to address and bring up."""
        return Interface(self.name, self.namespace, executor=self.executor)

    @property
    def peer_end(self) -> Interface:
        return Interface(self.peer, self.peer_namespace, executor=self.executor)

    def create_commands(self) -> list[Command]:
        argv: list[str] = ["link", "add", "name", self.name]
        if self.namespace:
            argv += ["netns", self.namespace]
        if self.index is not None:
            argv += ["index", str(self.index)]
        argv += ["type", "veth", "peer", "name", self.peer]
        if self.peer_namespace:
            argv += ["netns", self.peer_namespace]
        if self.peer_index is not None:
            argv += ["index", str(self.peer_index)]
        return [ip(*argv)]

    def delete_commands(self) -> list[Command]:
        """Deleting one end deletes the pair."""
        return self.end.delete_commands()

    def steps(
        self,
        *,
        tag: str | None,
        addresses: Sequence[str | None] = (None, None),
        mtu: int | None = None,
        ports: Sequence[Bridge | None] = (None, None),
        link_local: bool = True,
    ) -> list[Step]:
        """Create the pair, set both ends up; ``ports`` are the bridges each end is a
        port of (or ``None``).

        The record names the end that outlives the lab's own namespaces (a root-side
        end): deleting it deletes the pair, synchronously.
        """
        ends = (self.end, self.peer_end)
        survivor = ends[1] if self.peer_namespace is None else ends[0]
        lives_in = frozenset({self.namespace, self.peer_namespace})
        steps = [survivor.created(self.create_commands()[0], lives_in=lives_in)]
        for end, bridge in zip(ends, ports, strict=True):
            if bridge is not None:
                steps.append(bridge.port_step(end))
        for end, cidr in zip(ends, addresses, strict=True):
            given = [cidr] if cidr is not None else []
            steps += end.settings(tag=tag, mtu=mtu, addresses=given, link_local=link_local)
        return steps

    def create(self) -> Self:
        act(self._ex, self.create_commands())
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())

    def up(self) -> Self:
        """Bring both ends up."""
        act(self._ex, self.end.up_commands() + self.peer_end.up_commands())
        return self
