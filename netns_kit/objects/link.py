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

from netns_kit import validate
from netns_kit.command import Command, gro_command, ip
from netns_kit.engine.runner import act, apply_steps
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor, default_executor
from netns_kit.objects.qdisc_support import require
from netns_kit.objects.shaping import Shape, egress, given, shape_command
from netns_kit.readback.reader import LinkInfo, Reader


def _ifname(value: object) -> str:
    return validate.interface_name(value, "name")


def _peer(value: object) -> str:
    return validate.interface_name(value, "peer")


def _ns(value: object) -> str | None:
    return validate.optional_namespace(value, "namespace")


def _peer_ns(value: object) -> str | None:
    return validate.optional_namespace(value, "peer_namespace")


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
        (``addrgenmode none``): no DAD, MLD or router solicitation traffic.

        ``addrgenmode none`` goes on a line of its own, before ``up``: on one line the
        kernel applies ``up`` first, and a link that has carrier at once (a bridge
        without ports) gets its link-local address anyway."""
        up = self._ip("link", "set", "dev", self.name, "up")
        if link_local:
            return [up]
        return [self._ip("link", "set", "dev", self.name, "addrgenmode", "none"), up]

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
        steps += [Step(command) for command in self.up_commands(link_local=link_local)]
        return steps

    def gro_step(self) -> Step:
        """GRO on (NAPI for a veth end): see :data:`GRO_FROM`."""
        return Step(gro_command(self.name, self.namespace))

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


#: The most ports a Linux bridge takes: the 1,024th gets ``RTNETLINK answers:
#: Exchange full`` (the port numbers are 10 bits, and 0 is not a port).
MAX_BRIDGE_PORTS = 1023


#: The most veth links one broadcast domain (bridges joined by links) may hold.  A
#: broadcast is copied to every link of the domain through the CPU's backlog queue,
#: which holds ``net.core.netdev_max_backlog`` (1,000 by default, and settable only
#: in the root namespace, for the whole machine) packets: past about 2,200 links an
#: ARP request is dropped for good (``/proc/net/softnet_stat``, column 2), and hosts
#: far from each other never reach each other.
MAX_BROADCAST_LINKS = 2048
#: Past this many links in a broadcast domain, each new link's veth ends get GRO on
#: (:func:`~netns_kit.command.gro_command`): a NAPI queue of their own instead of the
#: CPU's shared backlog.  The first links keep the kernel's default (small labs
#: unchanged), and at most this many of a domain's links then share the backlog.
GRO_FROM = 256


def too_wide(count: int) -> str:
    """Why a broadcast domain of ``count`` links is refused, and what to build."""
    return (
        f"would join {count:,} links in one broadcast domain; past about 2,200 a "
        "broadcast (an ARP request) overflows the kernel's per-CPU backlog "
        "(net.core.netdev_max_backlog, 1,000, root-only) and is lost for good, so far "
        f"hosts never reach each other: keep each switched segment within "
        f"{MAX_BROADCAST_LINKS:,} links and join segments through a router namespace "
        "(see scripts/scale_tree.py and docs/scale.md)"
    )


def too_many_ports(count: int) -> str:
    """Why a bridge cannot take ``count`` ports, and what to build instead (the
    reason of a ValidationError that names the bridge)."""
    return (
        f"would get {count:,} ports; a Linux bridge takes at most {MAX_BRIDGE_PORTS:,} "
        "(the next gets 'RTNETLINK answers: Exchange full'): join the hosts through a "
        "tree of switches instead, a namespace with a bridge for each group of hosts "
        "(see scripts/labs/mininet-tree.toml and scripts/scale_tree.py)"
    )


@attrs.define
class Bridge(Interface):
    """A Linux bridge (``ip link add name X type bridge``); ``stp`` runs spanning tree
    (the kernel's own, with :data:`STP_TIMERS`), which a ring of bridges needs.

    ``snooping`` turns IGMP/MLD snooping on (``mcast_snooping 1``, the kernel's
    default).  It is off by default: a snooping bridge joins 224.0.0.106 and
    ff02::6a and sends IGMPv3/MLDv2 reports that every other bridge of a tree of
    switches floods to all its ports while the lab is built (16.6 million packets at
    5,000 namespaces).  Without snooping a bridge floods multicast like broadcast,
    which is what a lab without multicast routing wants anyway.
    """

    stp: bool = attrs.field(default=False, kw_only=True)
    snooping: bool = attrs.field(default=False, kw_only=True)

    def create_commands(self) -> list[Command]:
        options: list[str] = []
        if self.stp:
            options += [word for key, value in STP_TIMERS for word in (key, str(value))]
            options += ["stp_state", "1"]
        if not self.snooping:
            options += ["mcast_snooping", "0"]
        return [self._ip("link", "add", "name", self.name, "type", "bridge", *options)]

    def attach_commands(self, interface: Interface | str) -> list[Command]:
        port = _port_name(interface)
        return [self._ip("link", "set", "dev", port, "master", self.name)]

    def detach_commands(self, interface: Interface | str) -> list[Command]:
        port = _port_name(interface)
        return [self._ip("link", "set", "dev", port, "nomaster")]

    def steps(
        self, *, tag: str | None, address: str | None = None, link_local: bool = True
    ) -> list[Step]:
        """Create, tag, bring up, and give the bridge its (host side's) address;
        ``link_local=False``: without an IPv6 link-local address (quiet)."""
        steps = [self.created(self.create_commands()[0])]
        steps += self.settings(tag=tag, link_local=link_local)
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


def lost_on_down(reader: Reader, end: Interface) -> list[Command]:
    """The commands that put back what the kernel removes when ``end`` goes down: its
    IPv6 addresses (``keep_addr_on_down`` is off by default) and the routes through
    it that it did not make itself, IPv4 and IPv6."""
    six = [
        a.address
        for a in reader.addresses(end.namespace)
        if a.interface == end.name and a.family == "inet6" and a.scope == "global"
    ]
    commands = [end.add_address_commands(cidr)[0] for cidr in six]
    for route in reader.routes(end.namespace):
        if route.dev != end.name or route.protocol in ("kernel", "ra"):
            continue
        if route.destination.startswith("fe80:"):
            continue
        args = ["-6"] if route.family == "inet6" else []
        args += ["route", "replace", route.destination]
        args += ["via", route.via] if route.via else []
        commands.append(ip(*args, "dev", end.name, namespace=end.namespace))
    return commands


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
    :meth:`netns_kit.lab.holdings.Holdings.ends`.

    The first end (``name``) is end ``a`` and the peer end ``b``, for shaping
    (``direction="a->b"`` shapes what the first end sends) and for :meth:`down`.
    ``shaping`` and ``direction`` say how the pair is shaped now, as far as this
    object knows: the shaping it made.  ``mtu`` (the MTU it was made with) sizes a
    tbf's burst.
    """

    name: str = attrs.field(converter=_ifname)
    peer: str = attrs.field(converter=_peer)
    namespace: str | None = attrs.field(default=None, converter=_ns)
    peer_namespace: str | None = attrs.field(default=None, converter=_peer_ns)
    executor: Executor | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    index: int | None = attrs.field(default=None, kw_only=True, converter=_index)
    peer_index: int | None = attrs.field(default=None, kw_only=True, converter=_index)
    mtu: int | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    shaping: Shape | None = attrs.field(default=None, kw_only=True, eq=False, repr=False)
    direction: str = attrs.field(default="both", kw_only=True, eq=False, repr=False)
    #: What :meth:`up` puts back on an end that :meth:`down` took down, by end name.
    _lost: dict[str, list[Command]] = attrs.field(factory=dict, init=False, eq=False, repr=False)

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

    def shaping_steps(
        self, shape: Shape | None, direction: str = "both", *, restore: bool = False
    ) -> list[Step]:
        """The steps that take the pair from its shaping now to ``shape`` (``None``:
        unshaped) in ``direction``: a ``tc qdisc replace`` on each end that carries it,
        a ``tc qdisc del`` on each end that no longer does, nothing where nothing
        changes.

        At build time the steps need no undo: deleting the link deletes its qdiscs.
        ``restore`` gives each step an undo that puts its end back as it was, for a
        change while the lab runs, so that a failure leaves no half-shaped link.
        """
        steps = []
        ends = (self.end, self.peer_end)
        now = egress(self.shaping, self.direction)
        for end, before, after in zip(ends, now, egress(shape, direction), strict=True):
            if before == after:
                continue
            undo = (shape_command(end.name, end.namespace, before, self.mtu),) if restore else ()
            steps.append(Step(shape_command(end.name, end.namespace, after, self.mtu), undo))
        return steps

    def shape(
        self,
        rate: str | float | None = None,
        delay: str | float | None = None,
        jitter: str | float | None = None,
        loss: str | float | None = None,
        direction: str = "both",
    ) -> Self:
        """Shape the link, or change how it is shaped, while it carries traffic.

        ``rate`` as tc writes it (``"10mbit"``) or in bits per second, ``delay`` and
        ``jitter`` as ``"20ms"`` or in seconds, ``loss`` in percent.  ``direction`` is
        ``"both"``, ``"a->b"`` (what the first end sends) or ``"b->a"``.  This is the
        link's whole shaping: an end it leaves out is unshaped.  An end keeps its
        old qdisc until ``tc qdisc replace`` puts the new one in its place; if any
        step fails, the ends that changed are put back.
        """
        shape, way = given(rate, delay, jitter, loss, direction)
        if shape is None:
            raise ValidationError(
                "shape", None, "needs a rate, delay, jitter or loss (unshape() removes shaping)"
            )
        require(self._ex, shape.kind)
        apply_steps(self._ex, self.shaping_steps(shape, way, restore=True))
        self.shaping, self.direction = shape, way
        return self

    def unshape(self) -> Self:
        """Remove the shaping: both ends back to the veth's own (no) qdisc."""
        apply_steps(self._ex, self.shaping_steps(None, restore=True))
        self.shaping, self.direction = None, "both"
        return self

    def _ends(self, end: str) -> list[Interface]:
        """``both``, ``a`` (the first end), ``b`` (the peer), or an end's name."""
        if end == "both":
            return [self.end, self.peer_end]
        if end in ("a", self.name):
            return [self.end]
        if end in ("b", self.peer):
            return [self.peer_end]
        raise ValidationError(
            "end", end, f"is not 'both', 'a', 'b', {self.name!r} or {self.peer!r}"
        )

    def create(self) -> Self:
        act(self._ex, self.create_commands())
        return self

    def delete(self) -> None:
        act(self._ex, self.delete_commands())

    def up(self, end: str = "both") -> Self:
        """Bring both ends up, or one (``"a"``, ``"b"`` or its name), with what the
        kernel took from them when :meth:`down` took them down."""
        ends = self._ends(end)
        commands = [c for i in ends for c in i.up_commands()]
        act(self._ex, commands + [c for i in ends for c in self._lost.get(i.name, [])])
        for i in ends:
            self._lost.pop(i.name, None)
        return self

    def down(self, end: str = "both") -> Self:
        """Take both ends down, or one: a link fault, until :meth:`up`.

        An end taken down loses its IPv6 addresses and the routes through it (the
        kernel removes them; an end whose peer is down keeps its own and just loses
        its carrier).  They are read first, and :meth:`up` puts them back.
        """
        ends = self._ends(end)
        reader = Reader(self._ex)
        for i in ends:
            if i.name not in self._lost:  # not taken down by us already
                self._lost[i.name] = lost_on_down(reader, i)
        act(self._ex, [c for i in ends for c in i.down_commands()])
        return self
