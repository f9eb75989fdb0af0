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

from netns_kit.daemons.model import Bgp, Interface, Neighbor, Ospf, RouterConfig
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


def ports(links: Iterable[LinkSpec]) -> dict[str, list[Port]]:
    """Each namespace's interfaces on the lab's links, with who is at the far end."""
    links = list(links)
    members: dict[str, list[str]] = {}  # a bridge's key -> the namespaces on it
    for link in links:
        for mine, other in ((link.a, link.b), (link.b, link.a)):
            if "/" in other and "/" not in mine:
                members.setdefault(other, []).append(mine)
    found: dict[str, list[Port]] = {}
    for link in links:
        names = link.names or ("", "")
        for i, (mine, other) in enumerate(((link.a, link.b), (link.b, link.a))):
            if "/" in mine:
                continue
            if "/" in other:
                peers = tuple(m for m in members.get(other, []) if m != mine)
                port = Port(names[i], link.addresses[i], peers, True)
            else:
                port = Port(names[i], link.addresses[i], (other,), False)
            found.setdefault(mine, []).append(port)
    return found


def _net(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).network)


def _ip(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).ip)


def _v4(cidr: str | None) -> bool:
    return cidr is not None and ":" not in cidr


def router_id(name: str, loopback: str | None, mine: Sequence[Port]) -> str:
    """The loopback's IPv4 address, else the lowest IPv4 address of the router."""
    if _v4(loopback):
        assert loopback is not None
        return _ip(loopback)
    found = sorted(
        ipaddress.IPv4Address(_ip(p.address)) for p in mine if _v4(p.address) and p.address
    )
    if not found:
        raise ValidationError(
            "loopback", name, "a router needs an IPv4 address (loopback= or on a link) for its id"
        )
    return str(found[0])


def configs(
    routers: Mapping[str, str | None],
    links: Iterable[LinkSpec],
    ospf: Mapping[str, Ospf],
    bgp: Mapping[str, BgpAsk],
    suites: Mapping[str, str],
) -> dict[str, RouterConfig]:
    """Every router's configuration (those asked to run a protocol)."""
    found = ports(links)
    out: dict[str, RouterConfig] = {}
    for name in [r for r in routers if r in ospf or r in bgp]:
        mine = found.get(name, [])
        loop = routers[name]
        rid = router_id(name, loop, mine)
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
            )
            for p in mine
        )
        session = None
        if name in bgp:
            session = _bgp(name, bgp, routers, ospf, found)
        out[name] = RouterConfig(name, suites[name], rid, loop, interfaces, ospf.get(name), session)
    return out


def _bgp(
    name: str,
    bgp: Mapping[str, BgpAsk],
    routers: Mapping[str, str | None],
    ospf: Mapping[str, Ospf],
    found: Mapping[str, Sequence[Port]],
) -> Bgp:
    ask = bgp[name]
    neighbors = []
    for peer in ask.neighbors:
        if peer not in bgp:
            raise ValidationError(
                "neighbors", peer, f"of {name} runs no BGP (lab.bgp({peer!r}, ...))"
            )
        internal = bgp[peer].asn == ask.asn
        mine, theirs = routers.get(name), routers.get(peer)
        if internal and name in ospf and peer in ospf and _v4(mine) and _v4(theirs):
            assert mine is not None and theirs is not None
            neighbors.append(Neighbor(peer, _ip(theirs), ask.asn, True, False, _ip(mine)))
            continue
        address = _direct(name, peer, found)
        if address is None:
            raise ValidationError(
                "neighbors",
                peer,
                f"has no link with {name} (an iBGP session over loopbacks needs OSPF on both)",
            )
        neighbors.append(Neighbor(peer, address, bgp[peer].asn, internal))
    networks = ask.networks
    if networks is None:  # the loopback and the subnets towards hosts
        nets = [_net(routers[name] or "")] if _v4(routers.get(name)) else []
        nets += [
            _net(p.address)
            for p in found.get(name, [])
            if _v4(p.address) and p.address and not any(q in bgp or q in ospf for q in p.peers)
        ]
        networks = tuple(dict.fromkeys(nets))
    return Bgp(ask.asn, tuple(neighbors), networks)


def _direct(name: str, peer: str, found: Mapping[str, Sequence[Port]]) -> str | None:
    """``peer``'s IPv4 address on a link it shares with ``name``."""
    for port in found.get(peer, []):
        if name in port.peers and _v4(port.address) and port.address:
            return _ip(port.address)
    return None


def prefixes_of(config: RouterConfig) -> set[str]:
    """What a router's OSPF advertises: its loopback and its interfaces' subnets."""
    nets = {_net(i.address) for i in config.interfaces if _v4(i.address) and i.address}
    if _v4(config.loopback) and config.loopback:
        nets.add(_net(config.loopback))
    return nets


def expected(all_configs: Mapping[str, RouterConfig]) -> dict[str, set[str]]:
    """Per router, the IPv4 prefixes its kernel table must route (beyond its own).

    OSPF: every prefix of every router it can reach through OSPF adjacencies.  BGP:
    every network announced by a router whose announcement reaches it, where a
    session exists only if both ends name each other, a route learned over iBGP is
    passed on only to eBGP peers, and a router's own loopback sent over iBGP between
    loopbacks is never used (its next hop would resolve through itself).
    """
    own = {n: prefixes_of(c) for n, c in all_configs.items()}
    want: dict[str, set[str]] = {n: set() for n in all_configs}
    # OSPF: components of the adjacency graph
    adjacent: dict[str, set[str]] = {n: set() for n, c in all_configs.items() if c.ospf}
    for name, config in all_configs.items():
        if config.ospf is None:
            continue
        for other, theirs in all_configs.items():
            same = theirs.ospf is not None and theirs.ospf.instance == config.ospf.instance
            if other != name and same and _shares_active(config, theirs):
                adjacent[name].add(other)
    seen: set[str] = set()
    for start in adjacent:
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n in group:
                continue
            group.add(n)
            todo += adjacent[n] - group
        seen |= group
        nets = set().union(*(own[n] for n in group))
        for n in group:
            want[n] |= nets
    # BGP: announcements spread over sessions both ends configured
    sessions: dict[str, list[tuple[str, bool]]] = {}
    for name, config in all_configs.items():
        if config.bgp is None:
            continue
        for nb in config.bgp.neighbors:
            far = all_configs.get(nb.router)
            if far is None or far.bgp is None:
                continue
            if any(x.router == name for x in far.bgp.neighbors):
                sessions.setdefault(name, []).append((nb.router, nb.internal))
    for origin, config in all_configs.items():
        if config.bgp is None:
            continue
        own_loop = _net(config.loopback) if _v4(config.loopback) and config.loopback else None
        for net in (n for n in config.bgp.networks if ":" not in n):
            # a router's own loopback, sent over a session between loopbacks, has a
            # next hop that resolves only through itself: the peer never uses it
            itself = str(ipaddress.ip_network(net, strict=False)) == own_loop
            free = {origin}  # may pass it to every peer
            limited: set[str] = set()  # learned over iBGP: to eBGP peers only
            todo = [origin]
            while todo:
                n = todo.pop()
                for peer, internal in sessions.get(n, []):
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
                want[n].add(str(ipaddress.ip_network(net, strict=False)))
    return {n: nets - own[n] for n, nets in want.items()}


def _shares_active(a: RouterConfig, b: RouterConfig) -> bool:
    """Whether two OSPF routers share a subnet on which both run OSPF actively."""
    mine = {_net(i.address) for i in a.interfaces if i.active and _v4(i.address) and i.address}
    theirs = {_net(i.address) for i in b.interfaces if i.active and _v4(i.address) and i.address}
    return bool(mine & theirs)
