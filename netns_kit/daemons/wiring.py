"""From a lab's links to each router's configuration, and what "converged" means.

Pure: it reads the lab's inert link descriptions (:class:`~netns_kit.spec.LinkSpec`)
and what the routing builders were asked for, and returns
:class:`~netns_kit.daemons.model.RouterConfig` values and, per router, the prefixes
its kernel must hold a route for before the lab counts as converged.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import attrs

from netns_kit.daemons.model import (
    Bgp,
    Interface,
    Loopback,
    Neighbor,
    Ospf,
    RouterConfig,
    loopbacks,
)
from netns_kit.errors import ValidationError
from netns_kit.spec import LinkSpec


@attrs.frozen
class BgpAsk:
    """What ``lab.bgp`` was asked: neighbours by router name."""

    asn: int
    neighbors: tuple[str, ...]
    networks: tuple[str, ...] | None = None


@attrs.frozen
class Port:
    """One interface of a namespace: its name, address and what is at the far end
    (a namespace, or the members of a switched segment)."""

    name: str
    address: str | None
    peers: tuple[str, ...]
    segment: bool
    ipv6: bool = False  # the link carries IPv6 (an IPv6 address, or link-local on every link)
    link: int = -1  # which of the lab's links (its index)


def ports(links: Iterable[LinkSpec], link_local: bool = False) -> dict[str, list[Port]]:
    """Each namespace's interfaces on the lab's links, with who is at the far end.

    A link carries IPv6 when one of its ends has an IPv6 address, or when the lab
    gives every link a link-local address (``link_local``): the lab makes the
    link-local addresses of exactly those links, and OSPFv3 needs nothing more."""
    links = list(links)
    members: dict[str, list[str]] = {}  # a bridge's key -> the namespaces on it
    for link in links:
        for mine, other in ((link.a, link.b), (link.b, link.a)):
            if "/" in other and "/" not in mine:
                members.setdefault(other, []).append(mine)
    found: dict[str, list[Port]] = {}
    for index, link in enumerate(links):
        names = link.names or ("", "")
        six = link_local or any(a is not None and ":" in a for a in link.addresses)
        for i, (mine, other) in enumerate(((link.a, link.b), (link.b, link.a))):
            if "/" in mine:
                continue
            if "/" in other:
                peers = tuple(m for m in members.get(other, []) if m != mine)
                port = Port(names[i], link.addresses[i], peers, True, six, index)
            else:
                port = Port(names[i], link.addresses[i], (other,), False, six, index)
            found.setdefault(mine, []).append(port)
    return found


def _net(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).network)


def _ip(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).ip)


def _v4(cidr: str | None) -> bool:
    return cidr is not None and ":" not in cidr


def _v6(cidr: str | None) -> bool:
    """An IPv6 address that is not link-local (link-local ones name no prefix)."""
    return cidr is not None and ":" in cidr and not ipaddress.ip_interface(cidr).is_link_local


def router_id(
    name: str, loopback: str | None, mine: Sequence[Port], loopback6: str | None = None
) -> str:
    """The loopback's IPv4 address, else the lowest IPv4 address of the router; a
    router without IPv4 takes the low 32 bits of its IPv6 loopback (``fd00::1`` is
    ``0.0.0.1``), else of its lowest IPv6 address (both suites want a 32-bit id)."""
    if _v4(loopback):
        assert loopback is not None
        return _ip(loopback)
    found = sorted(
        ipaddress.IPv4Address(_ip(p.address)) for p in mine if _v4(p.address) and p.address
    )
    if found:
        return str(found[0])
    six = sorted(
        ipaddress.IPv6Address(_ip(p.address)) for p in mine if p.address and _v6(p.address)
    )
    if loopback6 is not None:
        six.insert(0, ipaddress.IPv6Address(_ip(loopback6)))
    if not six:
        raise ValidationError(
            "loopback", name, "a router needs an address (loopback= or on a link) for its id"
        )
    low = int(six[0]) & 0xFFFFFFFF
    if low == 0:
        raise ValidationError(
            "loopback", name, f"the router id comes from {six[0]}'s low 32 bits, which are 0"
        )
    return str(ipaddress.IPv4Address(low))


def configs(
    routers: Mapping[str, Loopback],
    links: Iterable[LinkSpec],
    ospf: Mapping[str, Ospf],
    bgp: Mapping[str, BgpAsk],
    suites: Mapping[str, str],
    link_local: bool = False,
) -> dict[str, RouterConfig]:
    """Every router's configuration (those asked to run a protocol)."""
    found = ports(links, link_local)
    out: dict[str, RouterConfig] = {}
    ids: dict[str, str] = {}
    for name in [r for r in routers if r in ospf or r in bgp]:
        mine = found.get(name, [])
        loop, loop6 = loopbacks(routers[name])
        rid = router_id(name, loop, mine, loop6)
        if rid in ids:
            raise ValidationError(
                "loopback",
                name,
                f"its router id {rid} is {ids[rid]}'s too (give distinct loopbacks)",
            )
        ids[rid] = name
        mine_ospf = ospf.get(name)
        interfaces = tuple(
            Interface(
                p.name,
                p.address,
                active=mine_ospf is not None
                and any(
                    peer in ospf and ospf[peer].instance == mine_ospf.instance for peer in p.peers
                ),
                p2p=not p.segment and len(p.peers) == 1,
                ipv6=p.ipv6,
                peers=p.peers,
            )
            for p in mine
        )
        session = None
        if name in bgp:
            session = _bgp(name, bgp, routers, ospf, found)
        out[name] = RouterConfig(
            name, suites[name], rid, loop, interfaces, ospf.get(name), session, loop6
        )
    return out


def _bgp(
    name: str,
    bgp: Mapping[str, BgpAsk],
    routers: Mapping[str, Loopback],
    ospf: Mapping[str, Ospf],
    found: Mapping[str, Sequence[Port]],
) -> Bgp:
    """The sessions of ``name``: per neighbour and address family (IPv4, IPv6), one
    between the loopbacks (iBGP, both in OSPF, both with a loopback of that family),
    else one over a link they share where both ends have an address of that family."""
    ask = bgp[name]
    neighbors: list[Neighbor] = []
    mine = loopbacks(routers.get(name))
    for peer in ask.neighbors:
        if peer not in bgp:
            raise ValidationError(
                "neighbors", peer, f"of {name} runs no BGP (lab.bgp({peer!r}, ...))"
            )
        internal = bgp[peer].asn == ask.asn
        theirs = loopbacks(routers.get(peer))
        before = len(neighbors)
        for family in (0, 1):  # IPv4, IPv6
            here, there = mine[family], theirs[family]
            if internal and name in ospf and peer in ospf and here and there:
                neighbors.append(Neighbor(peer, _ip(there), ask.asn, True, False, _ip(here)))
                continue
            address = _direct(name, peer, found, six=family == 1)
            if address is not None:
                neighbors.append(Neighbor(peer, address, bgp[peer].asn, internal))
        if len(neighbors) == before:
            raise ValidationError(
                "neighbors",
                peer,
                f"has no link with {name} (an iBGP session over loopbacks needs OSPF on both)",
            )
    networks = ask.networks
    if networks is None:  # the loopbacks and the subnets towards hosts
        nets = [_net(loop) for loop in mine if loop is not None]
        towards_hosts = [
            p.address
            for p in found.get(name, [])
            if p.address and not any(q in bgp or q in ospf for q in p.peers)
        ]
        nets += [_net(a) for a in towards_hosts if _v4(a)]
        nets += [_net(a) for a in towards_hosts if _v6(a)]
        networks = tuple(dict.fromkeys(nets))
    return Bgp(ask.asn, tuple(neighbors), networks)


def _direct(
    name: str, peer: str, found: Mapping[str, Sequence[Port]], six: bool = False
) -> str | None:
    """``peer``'s IPv4 (or IPv6) address on a link it shares with ``name`` (for
    IPv6, one where ``name``'s end has an IPv6 address too)."""
    usable = _v6 if six else _v4
    mine = {p.link for p in found.get(name, []) if usable(p.address)}
    for port in found.get(peer, []):
        if name in port.peers and usable(port.address) and port.address:
            if six and port.link not in mine:
                continue
            return _ip(port.address)
    return None


def prefixes_of(config: RouterConfig) -> set[str]:
    """What a router's OSPFv2 advertises: its loopback and its interfaces' subnets."""
    nets = {_net(i.address) for i in config.interfaces if _v4(i.address) and i.address}
    if _v4(config.loopback) and config.loopback:
        nets.add(_net(config.loopback))
    return nets


def prefixes6_of(config: RouterConfig) -> set[str]:
    """What a router's OSPFv3 advertises: its IPv6 loopback and subnets."""
    nets = {_net(i.address) for i in config.interfaces if i.address and _v6(i.address)}
    if config.loopback6 is not None:
        nets.add(_net(config.loopback6))
    return nets


def _groups(adjacent: Mapping[str, set[str]]) -> list[set[str]]:
    """The connected components of an adjacency graph."""
    seen: set[str] = set()
    groups = []
    for start in adjacent:
        if start in seen:
            continue
        group: set[str] = set()
        todo = [start]
        while todo:
            n = todo.pop()
            if n in group:
                continue
            group.add(n)
            todo += adjacent[n] - group
        seen |= group
        groups.append(group)
    return groups


def expected(all_configs: Mapping[str, RouterConfig]) -> dict[str, set[str]]:
    """Per router, the IPv4 and IPv6 prefixes its kernel tables must route (beyond
    its own).

    OSPF: every prefix of every router it can reach through OSPF adjacencies (OSPFv2
    for IPv4, OSPFv3 for IPv6).  BGP: every network announced by a router whose
    announcement reaches it over sessions of the network's family, where a session
    exists only if both ends name each other, a route learned over iBGP is passed on
    only to eBGP peers, and a router's own loopback sent over iBGP between loopbacks
    is never used (its next hop would resolve through itself).
    """
    own = {n: prefixes_of(c) | prefixes6_of(c) for n, c in all_configs.items()}
    want: dict[str, set[str]] = {n: set() for n in all_configs}
    # OSPFv2: components of the adjacency graph (shared subnets)
    adjacent: dict[str, set[str]] = {n: set() for n, c in all_configs.items() if c.ospf}
    for name, config in all_configs.items():
        if config.ospf is None:
            continue
        for other, theirs in all_configs.items():
            same = theirs.ospf is not None and theirs.ospf.instance == config.ospf.instance
            if other != name and same and _shares_active(config, theirs):
                adjacent[name].add(other)
    for group in _groups(adjacent):
        nets = set().union(*(prefixes_of(all_configs[n]) for n in group))
        for n in group:
            want[n] |= nets
    # OSPFv3: the same over the links that carry IPv6, between routers that run it
    six = {n: c for n, c in all_configs.items() if c.ospf is not None and c.ipv6}
    adjacent6: dict[str, set[str]] = {n: set() for n in six}
    for name, config in six.items():
        assert config.ospf is not None
        for iface in (i for i in config.interfaces if i.active and i.ipv6):
            for peer in iface.peers:
                far = six.get(peer)
                if far is not None and far.ospf is not None and far.ospf == config.ospf:
                    adjacent6[name].add(peer)
    for group in _groups(adjacent6):
        nets = set().union(*(prefixes6_of(all_configs[n]) for n in group))
        for n in group:
            want[n] |= nets
    # BGP: announcements spread over sessions both ends configured, per family
    sessions: dict[tuple[str, bool], list[tuple[str, bool]]] = {}
    for name, config in all_configs.items():
        if config.bgp is None:
            continue
        for nb in config.bgp.neighbors:
            far = all_configs.get(nb.router)
            if far is None or far.bgp is None:
                continue
            if any(x.router == name and x.ipv6 == nb.ipv6 for x in far.bgp.neighbors):
                sessions.setdefault((name, nb.ipv6), []).append((nb.router, nb.internal))
    for origin, config in all_configs.items():
        if config.bgp is None:
            continue
        loops = {config.loopback, config.loopback6} - {None}
        own_loops = {_net(loop) for loop in loops if loop is not None}
        for net in (str(ipaddress.ip_network(n, strict=False)) for n in config.bgp.networks):
            v6 = ":" in net
            # a router's own loopback, sent over a session between loopbacks, has a
            # next hop that resolves only through itself: the peer never uses it
            itself = net in own_loops
            free = {origin}  # may pass it to every peer
            limited: set[str] = set()  # learned over iBGP: to eBGP peers only
            todo = [origin]
            while todo:
                n = todo.pop()
                for peer, internal in sessions.get((n, v6), []):
                    if internal and (n not in free or (itself and n == origin)):
                        continue
                    if internal:
                        if peer not in free and peer not in limited:
                            limited.add(peer)
                            todo.append(peer)
                    elif peer not in free:
                        free.add(peer)
                        limited.discard(peer)
                        todo.append(peer)
            for n in (free | limited) - {origin}:
                want[n].add(net)
    return {n: nets - own[n] for n, nets in want.items()}


def _shares_active(a: RouterConfig, b: RouterConfig) -> bool:
    """Whether two OSPF routers share a subnet on which both run OSPF actively."""
    mine = {_net(i.address) for i in a.interfaces if i.active and _v4(i.address) and i.address}
    theirs = {_net(i.address) for i in b.interfaces if i.active and _v4(i.address) and i.address}
    return bool(mine & theirs)
