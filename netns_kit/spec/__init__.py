"""Plain descriptions of a lab: what a topology file holds and what a picture shows.

These are inert values.  :mod:`netns_kit.topology` reads and checks them from files,
:class:`netns_kit.lab.lab.Lab` builds them, and :mod:`netns_kit.render` draws them, so all
three agree on one model, including the names links get when a file gives none.

A link's ends (``LinkSpec.a``/``b``) name a namespace or a bridge.  A bridge is named
by its name; only when two bridges of a lab share a name, or a bridge has a
namespace's name (possible from Python, never in a file), is it named
``NAMESPACE/NAME`` (``/NAME`` on the host side).  ``/`` is in no namespace or
interface name, so either form is unambiguous.  :class:`Ends` is the one place that
reads these references.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence

import attrs

from netns_kit import validate
from netns_kit.errors import ValidationError
from netns_kit.objects.shaping import Shape
from netns_kit.validate import IFNAME_MAX


@attrs.frozen
class BridgeSpec:
    """A bridge (a switch).  ``namespace=None`` puts it on the lab's host side (of
    ``machine``, in a lab spread over machines); ``address`` is the address of
    that namespace on it (a CIDR); ``stp`` runs spanning tree; ``snooping`` turns
    IGMP/MLD snooping on (off by default: a quiet bridge)."""

    name: str
    address: str | None = None
    namespace: str | None = None
    stp: bool = False
    machine: str | None = None
    snooping: bool = False

    @property
    def key(self) -> str:
        """The qualified reference, ``NAMESPACE/NAME`` (``/NAME`` on the host side)."""
        return f"{self.namespace or ''}/{self.name}"


@attrs.frozen
class LinkSpec:
    """A veth pair between any two ends: namespaces or bridges, wherever they live.

    ``names`` are the interface names at ``a`` and at ``b``; ``None`` means the
    default names (see :class:`LinkNamer`).  ``addresses`` are CIDRs or ``None``; an
    end that is a bridge port has none.
    ``shape`` is the link's shaping (``None``: none) and ``direction`` which way it
    shapes (``both``, ``a->b`` or ``b->a``; see :mod:`netns_kit.objects.shaping`).
    """

    a: str
    b: str
    names: tuple[str, str] | None = None
    addresses: tuple[str | None, str | None] = (None, None)
    mtu: int | None = None
    shape: Shape | None = None
    direction: str = "both"


@attrs.frozen
class RouteSpec:
    """A route; ``namespace=None`` means the lab's host side."""

    destination: str
    via: str | None = None
    dev: str | None = None
    namespace: str | None = None


@attrs.frozen
class SysctlSpec:
    """A kernel setting; ``namespace=None`` means the lab's host side."""

    key: str
    value: str
    namespace: str | None = None


@attrs.frozen
class MasqueradeSpec:
    """NAT by masquerade; ``namespace=None`` means the lab's host side."""

    source: str
    out_interface: str | None = None
    namespace: str | None = None


@attrs.frozen
class PortForwardSpec:
    """A port forward (DNAT): ``port`` (``"8000-8010"`` for a range) to ``to``
    (``ADDR`` or ``ADDR:PORT``); ``namespace=None`` means the lab's host side."""

    port: str
    to: str
    protocol: str = "tcp"
    in_interface: str | None = None
    namespace: str | None = None


@attrs.frozen
class MachineSpec:
    """A machine of a lab spread over several, as a file's ``[machines]`` table names
    it: how ssh reaches it (``address``, ssh's destination: a host name, an alias or an
    IP address; ``user``, ``port``, ``identity_file``, ``sudo``) and its ``underlay``
    address (``None``: ``address``, when it is an IP address)."""

    name: str
    address: str
    user: str | None = None
    port: int = 22
    identity_file: str | None = None
    sudo: bool = False
    underlay: str | None = None

    @property
    def target(self) -> str:
        """``[user@]address``, as ssh and the file write it."""
        return self.address if self.user is None else f"{self.user}@{self.address}"


#: OSPF's hello and dead intervals a lab uses unless told otherwise (seconds): fast
#: convergence (DESIGN.md, "Routing daemons").
OSPF_HELLO = 1
OSPF_DEAD = 3


@attrs.frozen
class RouterSpec:
    """A router of a topology: a namespace that forwards, with its loopback (a CIDR,
    or an IPv4 and an IPv6 CIDR for a dual-stack router)."""

    name: str
    loopback: str | tuple[str, str] | None = None


@attrs.frozen
class OspfSpec:
    """An OSPF domain of a topology (``[ospf]``); ``routers=None``: every router."""

    routers: tuple[str, ...] | None = None
    area: str = "0.0.0.0"
    hello: int = OSPF_HELLO
    dead: int = OSPF_DEAD
    suite: str = "frr"
    bfd: bool = False


@attrs.frozen
class BgpSpec:
    """A router's BGP in a topology (``[[bgp]]``)."""

    router: str
    asn: int
    neighbors: tuple[str, ...]
    networks: tuple[str, ...] | None = None
    suite: str = "frr"


@attrs.frozen
class RoutingSpec:
    """A topology's routing: routers, OSPF domains, BGP (:mod:`netns_kit.daemons`)."""

    routers: tuple[RouterSpec, ...] = ()
    ospf: tuple[OspfSpec, ...] = ()
    bgp: tuple[BgpSpec, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.routers or self.ospf or self.bgp)


@attrs.frozen
class Topology:
    """A whole lab, in the order it is built.  ``hosts`` writes name files for it
    (:meth:`netns_kit.Lab.hosts`).  ``machines`` spread it over machines, the first
    the default; ``placement`` says which machine each namespace placed is on."""

    name: str
    isolated: bool = False
    namespaces: tuple[str, ...] = ()
    bridges: tuple[BridgeSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    sysctls: tuple[SysctlSpec, ...] = ()
    masquerades: tuple[MasqueradeSpec, ...] = ()
    ipv6_link_local: bool = False
    port_forwards: tuple[PortForwardSpec, ...] = ()
    hosts: bool = False
    machines: tuple[MachineSpec, ...] = ()
    placement: tuple[tuple[str, str], ...] = ()
    #: Built in a rootless sandbox: its "root" side is the sandbox's namespace.  Only
    #: pictures use it; a file does not say how it is built.
    sandboxed: bool = attrs.field(default=False, eq=False)
    #: Routers, OSPF and BGP (:mod:`netns_kit.daemons.files`); ``None``: no routing.
    routing: RoutingSpec | None = None

    def machine_of(self, namespace: str) -> str | None:
        """The machine ``namespace`` is placed on (``None``: the default)."""
        return dict(self.placement).get(namespace)

    def ends(self) -> Ends:
        return Ends(self.namespaces, self.bridges)

    def with_link_names(self) -> Topology:
        """The same topology with every link's default names filled in."""
        namer = LinkNamer()
        ends = self.ends()
        for bridge in self.bridges:
            namer.take(bridge.namespace, bridge.name)
        links = []
        for link in self.links:
            a, b = ends.end(link.a), ends.end(link.b)
            if a is None or b is None:  # not this topology's: drawn as it is
                links.append(link)
                continue
            names = link.names or namer.default_names(a, b)
            namer.take(a.namespace, names[0])
            namer.take(b.namespace, names[1])
            links.append(attrs.evolve(link, names=names))
        return attrs.evolve(self, links=tuple(links))


@attrs.frozen
class Endpoint:
    """One end of a link as a topology means it.

    ``name`` is the namespace's or the bridge's name; ``namespace`` is where the end's
    interface lives (``None``: the lab's host side); ``bridge`` is the bridge when the
    end is one of its ports.
    """

    name: str
    namespace: str | None
    bridge: BridgeSpec | None = None

    @property
    def label(self) -> str:
        """What a default name calls this end: a namespace by its name, a bridge by
        the namespace it lives in (its own name on the host side)."""
        if self.bridge is None:
            return self.name
        return self.namespace if self.namespace is not None else self.name


class Ends:
    """Reads a link end's reference (see the module docstring): ``NAMESPACE/NAME`` is a
    bridge; a plain name is a namespace, else the one bridge of that name."""

    def __init__(self, namespaces: Sequence[str], bridges: Sequence[BridgeSpec]) -> None:
        self.namespaces = set(namespaces)
        self.by_key = {b.key: b for b in bridges}
        self.by_name: dict[str, list[BridgeSpec]] = {}
        for bridge in bridges:
            self.by_name.setdefault(bridge.name, []).append(bridge)

    def end(self, ref: str) -> Endpoint | None:
        """The end ``ref`` names, or ``None`` if it names nothing of this topology."""
        if "/" in ref:
            bridge = self.by_key.get(ref)
        elif ref in self.namespaces:
            return Endpoint(ref, ref)
        else:
            found = self.by_name.get(ref, ())
            bridge = found[0] if len(found) == 1 else None
        return None if bridge is None else Endpoint(bridge.name, bridge.namespace, bridge)

    def ref(self, bridge: BridgeSpec) -> str:
        """How a link names ``bridge``: its name, or its key when the name is shared
        with another bridge or a namespace."""
        shared = len(self.by_name.get(bridge.name, ())) > 1 or bridge.name in self.namespaces
        return bridge.key if shared else bridge.name


def short_name(wanted: str) -> str:
    """``wanted`` if it fits in an interface name, else a unique deterministic cut."""
    if len(wanted.encode()) <= IFNAME_MAX:
        return wanted
    digest = hashlib.blake2b(wanted.encode(), digest_size=2).hexdigest()
    return f"{wanted[: IFNAME_MAX - 5]}-{digest}"


class LinkNamer:
    """Chooses the names of a link's two ends when the user gives none.

    The seed's names come first: ``veth-red``/``veth-blue`` between namespaces and
    ``veth-red``/``veth-red-br`` to a bridge.  When one of them is already taken in
    its namespace (a second link from ``red``), both ends are named after the pair
    instead (``red-blue``/``blue-red``).  Between two bridges the ends are named
    after the pair from the start, each bridge called by the namespace it lives in
    (``s1-s2`` in ``s1``, ``s2-s1`` in ``s2``) or, when both are in one namespace or
    on the host side, by its own name.  A pair linked more than once gets ``-2``,
    ``-3``...  Names longer than 15 bytes are cut by :func:`short_name`.  ``None`` as a
    namespace means the lab's host side.
    """

    def __init__(self) -> None:
        self._taken: set[tuple[str | None, str]] = set()

    def take(self, namespace: str | None, name: str) -> None:
        self._taken.add((namespace, name))

    def is_taken(self, namespace: str | None, name: str) -> bool:
        return (namespace, name) in self._taken

    def pick(self, a: Endpoint, b: Endpoint, names: Sequence[str] | None) -> tuple[str, str]:
        """The names a link's ends get: ``names`` checked, or the defaults; either way
        refused when one is taken already in its namespace."""
        if names is None:
            pair = self.default_names(a, b)
        else:
            if isinstance(names, str) or len(names) != 2:
                raise ValidationError("names", names, "must give two interface names")
            pair = (
                validate.interface_name(names[0], "names[0]"),
                validate.interface_name(names[1], "names[1]"),
            )
            if pair[0] == pair[1] and a.namespace == b.namespace:
                raise ValidationError("names", names, "are one name for two ends in one place")
        for where, name in ((a.namespace, pair[0]), (b.namespace, pair[1])):
            if self.is_taken(where, name):
                raise ValidationError(
                    "names", name, f"is already an interface in {where or 'the host side'}"
                )
        return pair

    def default_names(self, a: Endpoint, b: Endpoint) -> tuple[str, str]:
        if a.bridge is not None and b.bridge is None:  # the seed names the namespace first
            second, first = self.default_names(b, a)
            return first, second
        for wanted in self._candidates(a, b):
            pair = (short_name(wanted[0]), short_name(wanted[1]))
            if pair[0] == pair[1] and a.namespace == b.namespace:
                continue
            if not self.is_taken(a.namespace, pair[0]) and not self.is_taken(b.namespace, pair[1]):
                return pair
        raise AssertionError("unreachable: the counter runs past every name taken")

    def _candidates(self, a: Endpoint, b: Endpoint) -> Iterator[tuple[str, str]]:
        """The seed's names, then the pair's, then the pair's with a counter."""
        if a.bridge is not None and b.bridge is not None:
            same = a.namespace == b.namespace
            first, second = (a.name, b.name) if same else (a.label, b.label)
            stem = (f"{first}-{second}", f"{second}-{first}")
        else:
            seed = f"veth-{a.name}-br" if b.bridge is not None else f"veth-{b.name}"
            yield f"veth-{a.name}", seed
            stem = (f"{a.name}-{b.name}", f"{b.name}-{a.name}")
        yield stem
        for count in itertools.count(2):
            yield f"{stem[0]}-{count}", f"{stem[1]}-{count}"
