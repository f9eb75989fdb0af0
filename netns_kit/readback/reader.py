"""Reading a lab back: ``ip -j`` output turned into typed, immutable records.

State comes from iproute2's JSON, never from its text.  Reads are ordinary read-only
:class:`~netns_kit.command.Command` values run by the executor, so a unit test feeds
them canned ``ip -j`` samples and a dry run answers them as a fresh machine would
(empty output, which means "nothing there").

Two things iproute2 leaves out and the readers fill in:

* A veth's other end.  ``ip -j link`` names it only when it is in the same namespace
  (``link``); otherwise it gives the peer's ``link_index`` and ``link_netnsid``, an id
  that only means something inside the namespace that printed it.  The readers turn
  the id into a namespace name with ``ip -n NS -j netns list-id`` and the index into
  an interface name by reading that namespace's links (once per namespace, cached).
* Defaults that ``ip -j route`` does not print: no ``protocol`` means ``boot`` (what
  ``ip route add`` sets) and no ``scope`` means ``global``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Self

import attrs

from netns_kit import validate
from netns_kit.command import Command, ip
from netns_kit.engine.runner import Runner
from netns_kit.errors import CommandError
from netns_kit.executors import Executor
from netns_kit.objects import shaping
from netns_kit.spec import BridgeSpec, Ends, LinkSpec, RouteSpec, Topology

JSON = dict[str, Any]


@attrs.frozen
class PeerInfo:
    """The other end of a veth.

    ``namespace`` follows the library's convention, ``None`` being the root
    namespace; it is also ``None`` when the peer lives in a namespace without a name
    under ``/run/netns`` (a container's, say), which the kernel cannot name for us.
    ``netnsid`` is the raw id the kernel gave, ``None`` when the peer is in the same
    namespace.  ``name`` is ``None`` when the peer's namespace could not be read.
    """

    name: str | None
    namespace: str | None
    index: int | None = None
    netnsid: int | None = None


@attrs.frozen
class LinkInfo:
    """One interface as ``ip -d -j link`` shows it.

    ``kind`` is iproute2's ``info_kind`` (``veth``, ``bridge``...), ``loopback`` for
    ``lo``, ``None`` for a plain device.  ``state`` is the operational state (``UP``,
    ``DOWN``, ``UNKNOWN``, ``LOWERLAYERDOWN``...).  ``alias`` is the ``ifalias`` tag.
    ``qdisc`` is its root qdisc from ``tc -j qdisc show`` (``None``: the device's own
    ``noqueue``), which is how a shaped link shows (:mod:`netns_kit.objects.shaping`).
    """

    name: str
    kind: str | None
    state: str
    mtu: int
    mac: str | None = None
    master: str | None = None
    alias: str | None = None
    peer: PeerInfo | None = None
    index: int | None = attrs.field(default=None, eq=False, repr=False)
    qdisc: shaping.QdiscInfo | None = None


@attrs.frozen
class AddressInfo:
    """One address on an interface; ``address`` is a CIDR (``192.168.15.1/24``).

    ``family`` is iproute2's word, ``inet`` or ``inet6``; ``scope`` is ``global``,
    ``link`` (IPv6 link-local) or ``host`` (loopback).
    """

    interface: str
    address: str
    family: str
    scope: str


@attrs.frozen
class RouteInfo:
    """One route of the main table.

    ``destination`` is ``default`` or a CIDR (host routes get their ``/32`` or
    ``/128``, which ``ip`` leaves off); ``via`` is the gateway or ``None`` for a
    directly connected route; ``protocol`` is ``kernel`` for the routes an address
    brings, ``boot`` for ``ip route add``.
    """

    destination: str
    via: str | None
    dev: str | None
    protocol: str
    scope: str
    family: str


@attrs.frozen
class NamespaceState:
    """Everything read from one namespace (``name=None``: the root namespace)."""

    name: str | None
    links: tuple[LinkInfo, ...] = ()
    addresses: tuple[AddressInfo, ...] = ()
    routes: tuple[RouteInfo, ...] = ()

    def link(self, name: str) -> LinkInfo:
        """The link called ``name``; KeyError when there is none."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def addresses_of(self, interface: str) -> list[str]:
        return [a.address for a in self.addresses if a.interface == interface]


@attrs.frozen
class Snapshot:
    """A lab's state at one moment: one :class:`NamespaceState` per namespace read.

    Snapshots compare with ``==`` (MAC addresses included, interface indexes not), so
    "did anything change?" is ``before == after``; ``to_dict``/``to_json`` give plain
    data to store or show, and ``from_dict`` reads it back.
    """

    namespaces: tuple[NamespaceState, ...] = ()

    def __getitem__(self, name: str | None) -> NamespaceState:
        for state in self.namespaces:
            if state.name == name:
                return state
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(state.name == name for state in self.namespaces)

    def __iter__(self) -> Iterator[NamespaceState]:
        return iter(self.namespaces)

    def __len__(self) -> int:
        return len(self.namespaces)

    def to_dict(self) -> JSON:
        return {"namespaces": [attrs.asdict(state) for state in self.namespaces]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(tuple(_state_from_dict(state) for state in data["namespaces"]))

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


def _state_from_dict(data: Mapping[str, Any]) -> NamespaceState:
    def link(item: Mapping[str, Any]) -> LinkInfo:
        peer, qdisc = item.get("peer"), item.get("qdisc")
        fields = {k: v for k, v in item.items() if k not in ("peer", "qdisc")}
        return LinkInfo(
            **fields,
            peer=PeerInfo(**peer) if peer else None,
            qdisc=shaping.QdiscInfo(**qdisc) if qdisc else None,
        )

    return NamespaceState(
        name=data["name"],
        links=tuple(link(item) for item in data.get("links", ())),
        addresses=tuple(AddressInfo(**item) for item in data.get("addresses", ())),
        routes=tuple(RouteInfo(**item) for item in data.get("routes", ())),
    )


# -- commands (pure) ---------------------------------------------------------------
def _ns(namespace: str | None) -> str | None:
    return validate.optional_namespace(namespace, "namespace")


def links_command(namespace: str | None = None) -> Command:
    """``-d`` adds ``linkinfo.info_kind``, the only place the link's kind is given."""
    return ip("-d", "-j", "link", "show", namespace=_ns(namespace), read=True)


def ports_command(bridge: str, namespace: str | None = None) -> Command:
    name = validate.interface_name(bridge, "bridge")
    return ip("-d", "-j", "link", "show", "master", name, namespace=_ns(namespace), read=True)


def addresses_command(namespace: str | None = None) -> Command:
    return ip("-j", "addr", "show", namespace=_ns(namespace), read=True)


def routes_commands(namespace: str | None = None) -> list[Command]:
    """IPv4 then IPv6: ``ip route`` shows one family at a time."""
    ns = _ns(namespace)
    return [
        ip("-j", "route", "show", namespace=ns, read=True),
        ip("-6", "-j", "route", "show", namespace=ns, read=True),
    ]


def namespaces_command() -> Command:
    return ip("-j", "netns", "list", read=True)


def link_command(name: str, namespace: str | None = None) -> Command:
    """One link; ``-d`` is not needed for its alias and flags."""
    dev = validate.interface_name(name, "name")
    return ip("-j", "link", "show", "dev", dev, namespace=_ns(namespace), read=True)


def nsids_command(namespace: str | None = None) -> Command:
    return ip("-j", "netns", "list-id", namespace=_ns(namespace), read=True)


# -- parsing (pure) ----------------------------------------------------------------
def parse_json(command: Command | tuple[str, ...], stdout: str) -> list[JSON]:
    """The list ``ip -j`` printed; empty output means an empty list."""
    if not stdout.strip():
        return []
    try:
        data = json.loads(stdout)
    except json.JSONDecodeError as error:
        argv = command.argv if isinstance(command, Command) else command
        raise CommandError(argv, 0, stdout, f"output is not JSON ({error})") from None
    if not isinstance(data, list):
        argv = command.argv if isinstance(command, Command) else command
        raise CommandError(argv, 0, stdout, "output is not a JSON list")
    return [item for item in data if isinstance(item, dict)]


def parse_nsids(entries: Iterable[JSON]) -> dict[int, str]:
    """``netns list-id`` entries as nsid -> name (ids without a name are left out)."""
    return {int(e["nsid"]): str(e["name"]) for e in entries if "nsid" in e and e.get("name")}


def parse_link(entry: JSON) -> LinkInfo:
    """One ``ip -d -j link`` entry, peer unresolved (see :func:`resolve_peers`)."""
    info = entry.get("linkinfo") or {}
    kind = info.get("info_kind")
    if kind is None and entry.get("link_type") == "loopback":
        kind = "loopback"
    peer = None
    if kind == "veth":
        netnsid = entry.get("link_netnsid")
        peer = PeerInfo(
            name=entry.get("link") if netnsid is None else None,
            namespace=None,
            index=entry.get("link_index"),
            netnsid=netnsid,
        )
    return LinkInfo(
        name=entry["ifname"],
        kind=kind,
        state=entry.get("operstate", "UNKNOWN"),
        mtu=int(entry.get("mtu", 0)),
        mac=entry.get("address"),
        master=entry.get("master"),
        alias=entry.get("ifalias"),
        peer=peer,
        index=entry.get("ifindex"),
    )


def parse_addresses(entries: Iterable[JSON]) -> list[AddressInfo]:
    return [
        AddressInfo(
            interface=entry["ifname"],
            address=f"{addr['local']}/{addr['prefixlen']}",
            family=addr.get("family", "inet"),
            scope=str(addr.get("scope", "global")),
        )
        for entry in entries
        for addr in entry.get("addr_info", ())
        if "local" in addr
    ]


def parse_routes(entries: Iterable[JSON], family: str) -> list[RouteInfo]:
    host = "/32" if family == "inet" else "/128"
    routes = []
    for entry in entries:
        destination = str(entry.get("dst", "default"))
        if destination != "default" and "/" not in destination:
            destination += host
        via = entry.get("gateway")
        if via is None and isinstance(entry.get("via"), dict):
            via = entry["via"].get("host")
        routes.append(
            RouteInfo(
                destination=destination,
                via=via,
                dev=entry.get("dev"),
                protocol=str(entry.get("protocol", "boot")),
                scope=str(entry.get("scope", "global")),
                family=family,
            )
        )
    return routes


# -- readers -----------------------------------------------------------------------
class Reader:
    """Reads namespaces through an executor, each command at most once.

    Keeping the raw link lists lets a veth's peer be named from the peer namespace's
    list without reading it twice, which is what makes a whole-lab snapshot cheap.
    """

    def __init__(self, executor: Executor) -> None:
        self._runner = Runner(executor)
        self._links: dict[str | None, list[JSON]] = {}
        self._nsids: dict[str | None, dict[int, str]] = {}

    def _read(self, command: Command) -> list[JSON]:
        return parse_json(command, self._runner.run(command).stdout)

    def raw_links(self, namespace: str | None) -> list[JSON]:
        if namespace not in self._links:
            self._links[namespace] = self._read(links_command(namespace))
        return self._links[namespace]

    def nsids(self, namespace: str | None) -> dict[int, str]:
        if namespace not in self._nsids:
            self._nsids[namespace] = parse_nsids(self._read(nsids_command(namespace)))
        return self._nsids[namespace]

    def links(self, namespace: str | None = None, *, resolve: bool = True) -> list[LinkInfo]:
        """``resolve``: the peers named and the qdiscs read (else names and flags only)."""
        namespace = _ns(namespace)
        parsed = [parse_link(entry) for entry in self.raw_links(namespace)]
        if not resolve:
            return parsed
        qdiscs = self.qdiscs(namespace)  # shaping: one `tc -j qdisc show` a namespace
        parsed = [attrs.evolve(link, qdisc=qdiscs.get(link.name)) for link in parsed]
        return self.resolve_peers(parsed, namespace)

    def qdiscs(self, namespace: str | None = None) -> dict[str, shaping.QdiscInfo]:
        """Each link's root qdisc (but ``noqueue``), by link name."""
        return shaping.parse_qdiscs(self._read(shaping.qdiscs_command(namespace)))

    def bridge_ports(self, bridge: str, namespace: str | None = None) -> list[LinkInfo]:
        parsed = [parse_link(entry) for entry in self._read(ports_command(bridge, namespace))]
        return self.resolve_peers(parsed, _ns(namespace))

    def addresses(self, namespace: str | None = None) -> list[AddressInfo]:
        return parse_addresses(self._read(addresses_command(namespace)))

    def routes(self, namespace: str | None = None) -> list[RouteInfo]:
        four, six = routes_commands(namespace)
        return parse_routes(self._read(four), "inet") + parse_routes(self._read(six), "inet6")

    def state(self, namespace: str | None = None) -> NamespaceState:
        return NamespaceState(
            name=_ns(namespace),
            links=tuple(self.links(namespace)),
            addresses=tuple(self.addresses(namespace)),
            routes=tuple(self.routes(namespace)),
        )

    def resolve_peers(self, links: list[LinkInfo], namespace: str | None) -> list[LinkInfo]:
        """Name each veth's peer and the namespace it lives in, where the kernel allows."""
        return [self._resolve(link, namespace) for link in links]

    def _resolve(self, link: LinkInfo, namespace: str | None) -> LinkInfo:
        peer = link.peer
        if peer is None:
            return link
        if peer.netnsid is None:  # same namespace: ip named it, or we find it by index
            name = peer.name or _name_at(self.raw_links(namespace), peer.index)
            return attrs.evolve(link, peer=attrs.evolve(peer, name=name, namespace=namespace))
        where = self.nsids(namespace).get(peer.netnsid)
        if where is None:  # the root namespace or an unnamed one: nothing to read
            return link
        try:
            name = _name_at(self.raw_links(where), peer.index)
        except CommandError:  # the peer's namespace went away meanwhile
            name = None
        return attrs.evolve(link, peer=attrs.evolve(peer, name=name, namespace=where))


def _name_at(entries: Iterable[JSON], index: int | None) -> str | None:
    if index is None:
        return None
    for entry in entries:
        if entry.get("ifindex") == index:
            return str(entry["ifname"])
    return None


def namespace_names(executor: Executor) -> list[str]:
    """Names of the namespaces ``ip netns`` knows.  Empty output means none (``ip -j
    netns list`` prints nothing at all before ``/run/netns`` exists)."""
    command = namespaces_command()
    return [str(e["name"]) for e in parse_json(command, Runner(executor).run(command).stdout)]


def link_names(executor: Executor, namespace: str | None = None) -> set[str]:
    """The names of the links in ``namespace`` (``None``: the root namespace)."""
    return {info.name for info in Reader(executor).links(namespace, resolve=False)}


def link(executor: Executor, name: str, namespace: str | None = None) -> LinkInfo | None:
    """One link, or ``None`` when it is not there (or its namespace is gone)."""
    command = link_command(name, namespace)
    result = Runner(executor).run(command, check=False)
    entries = parse_json(command, result.stdout) if result else []
    return parse_link(entries[0]) if entries else None


def loopback(executor: Executor, namespace: str) -> tuple[str | None, bool] | None:
    """``lo``'s alias and whether it is up, or ``None`` when the namespace is gone."""
    command = link_command("lo", namespace)
    result = Runner(executor).run(command, check=False)
    entries = parse_json(command, result.stdout) if result else []
    if not entries:
        return None
    return entries[0].get("ifalias"), "UP" in entries[0].get("flags", [])


def only_tagged(state: NamespaceState, tag: str) -> NamespaceState:
    """Of a namespace that is not the lab's own (the root namespace), only the links
    carrying the lab's tag, with their addresses and routes."""
    ours = {link.name for link in state.links if link.alias == tag}
    return attrs.evolve(
        state,
        links=tuple(x for x in state.links if x.name in ours),
        addresses=tuple(a for a in state.addresses if a.interface in ours),
        routes=tuple(r for r in state.routes if r.dev in ours),
    )


def links(executor: Executor, namespace: str | None = None) -> list[LinkInfo]:
    """The interfaces of ``namespace`` (``None``: the root namespace), peers resolved."""
    return Reader(executor).links(namespace)


def bridge_ports(executor: Executor, bridge: str, namespace: str | None = None) -> list[LinkInfo]:
    """The interfaces enslaved to ``bridge`` (``ip link show master BRIDGE``)."""
    return Reader(executor).bridge_ports(bridge, namespace)


def addresses(executor: Executor, namespace: str | None = None) -> list[AddressInfo]:
    """Every address of every interface, IPv6 link-local and loopback included."""
    return Reader(executor).addresses(namespace)


def routes(executor: Executor, namespace: str | None = None) -> list[RouteInfo]:
    """The main routing table, IPv4 routes first, then IPv6."""
    return Reader(executor).routes(namespace)


def snapshot(executor: Executor, namespaces: Iterable[str | None]) -> Snapshot:
    """Read each namespace (``None``: the root namespace) into one comparable value.

    Namespace names are checked before anything is read; a name given twice is read
    once.  Each namespace costs one process, and they overlap
    (:mod:`netns_kit.readback.snapshot`).
    """
    from netns_kit.readback.snapshot import read_snapshot  # it builds on this module's readers

    return read_snapshot(executor, namespaces)


def topology_of(
    snapshot: Snapshot, *, name: str, isolated: bool, host_side: str | None
) -> Topology:
    """A running lab's topology, rebuilt from what the kernel says (for pictures).

    ``host_side`` is the lab's host-side namespace (``None``: the root namespace).  Bridges are
    found in every namespace; a veth end that is a bridge port stands for its bridge,
    so a link may join two namespaces, a namespace and a bridge, or two bridges.
    Routes the kernel made itself (connected, link-local) are left out, and so are
    firewall rules, which ``ip`` does not show.
    """
    namespaces = [s.name for s in snapshot if s.name is not None and s.name != host_side]
    present = {s.name for s in snapshot}

    def place(where: str | None) -> str | None:
        return None if where == host_side else where

    bridges = [
        BridgeSpec(link.name, _first_address(state, link.name), place(state.name))
        for state in snapshot
        for link in state.links
        if link.kind == "bridge"
    ]

    def end(state: NamespaceState, interface: str) -> str | None:
        """A link end's reference: its bridge's key, or its namespace, or None."""
        master = state.link(interface).master
        if master is not None:
            return f"{place(state.name) or ''}/{master}"
        return state.name if state.name in namespaces else None

    links: list[LinkSpec] = []
    seen: set[tuple[str | None, str]] = set()
    for state in snapshot:
        for link in state.links:
            peer = link.peer
            if peer is None or peer.name is None or (state.name, link.name) in seen:
                continue
            if peer.namespace not in present:
                continue
            seen.add((peer.namespace, peer.name))
            other = snapshot[peer.namespace]
            a, b = end(state, link.name), end(other, peer.name)
            if a is None or b is None:
                continue
            names = (link.name, peer.name)
            addresses = (_first_address(state, link.name), _first_address(other, peer.name))
            shape, way = _shaping(link, other, peer.name)
            if "/" in a and "/" not in b:  # the seed's order: the namespace end first
                a, b, names, addresses = b, a, names[::-1], addresses[::-1]
                way = shaping.flipped(way)
            links.append(LinkSpec(a, b, names, addresses, None, shape, way))
    ends = Ends(namespaces, bridges)
    named = [
        attrs.evolve(
            link,
            a=ends.ref(ends.by_key[link.a]) if link.a in ends.by_key else link.a,
            b=ends.ref(ends.by_key[link.b]) if link.b in ends.by_key else link.b,
        )
        for link in links
    ]
    routes = [
        RouteSpec(r.destination, r.via, r.dev, place(s.name))
        for s in snapshot
        for r in s.routes
        if r.protocol not in ("kernel", "ra") and not r.destination.startswith("fe80::")
    ]
    return Topology(name, isolated, tuple(namespaces), tuple(bridges), tuple(named), tuple(routes))


def _shaping(
    link: LinkInfo, peer_state: NamespaceState | None, peer: str
) -> tuple[shaping.Shape | None, str]:
    """A link's shaping and its direction, from the qdiscs of its two ends."""
    other = peer_state.link(peer).qdisc if peer_state is not None else None
    return shaping.link_shaping(link.qdisc, other)


def _first_address(state: NamespaceState | None, interface: str) -> str | None:
    if state is None:
        return None
    for address in state.addresses:
        if address.interface == interface and address.scope == "global":
            return address.address
    return None
