"""Routing in topology files: ``router = true`` and ``loopback`` on namespaces, an
``[ospf]`` table (or ``[[ospf]]`` tables, one per OSPF domain) and ``[[bgp]]``
tables, checked with every other key of the file (every problem at once, each with
its path), and their inert descriptions.

    namespaces = [{ name = "r1", router = true, loopback = "10.255.0.1/32" }, "h1"]
    # a dual-stack router: loopback = ["10.255.0.1/32", "fd00:255::1/128"]
    [ospf]
    routers = ["r1", "r2"]          # every router by default
    suite = "frr"                   # or "bird"; area, hello, dead, bfd as lab.ospf
    [[bgp]]
    router = "r1"
    asn = 65001
    neighbors = ["r4"]
    networks = ["192.168.1.0/24"]   # default: the loopback and the subnets to hosts
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from netns_kit import validate
from netns_kit.daemons import model
from netns_kit.errors import ValidationError
from netns_kit.spec import BgpSpec as BgpSpec
from netns_kit.spec import LinkSpec
from netns_kit.spec import OspfSpec as OspfSpec
from netns_kit.spec import RouterSpec as RouterSpec
from netns_kit.spec import RoutingSpec as RoutingSpec
from netns_kit.spec.keys import BGP, OSPF

NAMESPACE_KEYS = ("router", "loopback")
OSPF_KEYS = OSPF.allowed
BGP_KEYS = BGP.allowed


def _kind(value: object) -> str:
    return type(value).__name__


class _Problems:
    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def add(self, path: str, text: str) -> None:
        self.found.append((path, text))

    def check(self, path: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except ValidationError as error:
            self.add(path, str(error).split(": ", 1)[-1])
            return None


def read(
    data: Mapping[str, object], links: Sequence[LinkSpec]
) -> tuple[RoutingSpec, list[tuple[str, str]]]:
    """The routing of a topology's raw data (namespaces already checked by the
    caller), and its problems as (path, text)."""
    p = _Problems()
    routers = _routers(data.get("namespaces"), p)
    names = {r.name for r in routers}
    ospf = _ospf(data.get("ospf"), names, p)
    bgp = _bgp(data.get("bgp"), names, p)
    _paths(bgp, ospf, routers, links, p)
    _suites(ospf, bgp, p)
    return RoutingSpec(tuple(routers), tuple(ospf), tuple(bgp)), p.found


def _routers(value: object, p: _Problems) -> list[RouterSpec]:
    found: list[RouterSpec] = []
    if not isinstance(value, list):
        return found
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        path = f"namespaces[{index}]"
        router = item.get("router", False)
        if not isinstance(router, bool):
            p.add(f"{path}.router", f"must be true or false, not {_kind(router)}")
            continue
        loopback = item.get("loopback")
        if loopback is not None:
            if not router:
                p.add(f"{path}.loopback", "needs router = true")
                continue
            loopback = p.check(f"{path}.loopback", model.loopback, loopback)
            if loopback is None:
                continue
        if router:
            found.append(RouterSpec(item["name"], loopback))
    return found


def _names(path: str, value: object, routers: set[str], p: _Problems) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        p.add(path, f"must be an array of router names, not {_kind(value)}")
        return None
    bad = [v for v in value if v not in routers]
    for v in bad:
        p.add(f"{path}[{value.index(v)}]", f"{v!r} is not a router (router = true in namespaces)")
    return None if bad else tuple(value)


def _tables(value: object, key: str, p: _Problems) -> list[tuple[str, Mapping[str, object]]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [(key, value)]
    if isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    p.add(key, f"must be a table ([{key}]) or tables ([[{key}]]), not {_kind(value)}")
    return []


def _keys(path: str, item: Mapping[str, object], allowed: Sequence[str], p: _Problems) -> None:
    for key in item:
        if key not in allowed:
            p.add(f"{path}.{key}", f"unknown key (known: {', '.join(allowed)})")


def _ospf(value: object, routers: set[str], p: _Problems) -> list[OspfSpec]:
    found = []
    for path, item in _tables(value, "ospf", p):
        _keys(path, item, OSPF_KEYS, p)
        chosen = None
        whole = True
        if "routers" in item:
            chosen = _names(f"{path}.routers", item["routers"], routers, p)
            whole = chosen is not None
        elif not routers:
            p.add(path, "there are no routers (router = true in namespaces)")
            whole = False
        suite = p.check(f"{path}.suite", model.suite, item.get("suite", "frr"))
        area = p.check(f"{path}.area", model.area, item.get("area", "0.0.0.0"))
        bfd = item.get("bfd", False)
        if not isinstance(bfd, bool):
            p.add(f"{path}.bfd", f"must be true or false, not {_kind(bfd)}")
            continue
        hello, dead = item.get("hello", model.HELLO), item.get("dead", model.DEAD)
        timers = p.check(path, model.Ospf, area or "0.0.0.0", hello, dead, bfd)
        if suite is None or area is None or timers is None or not whole:
            continue
        found.append(OspfSpec(chosen, area, int(hello), int(dead), suite, bfd))  # type: ignore[call-overload]
    return found


def _bgp(value: object, routers: set[str], p: _Problems) -> list[BgpSpec]:
    found: list[BgpSpec] = []
    seen: dict[str, str] = {}
    tables = _tables(value, "bgp", p) if not isinstance(value, Mapping) else []
    if isinstance(value, Mapping):
        p.add("bgp", "must be tables ([[bgp]]), one per router")
    for path, item in tables:
        _keys(path, item, BGP_KEYS, p)
        for key in ("router", "asn", "neighbors"):
            if key not in item:
                p.add(path, f"needs {key}")
        router = item.get("router")
        if not isinstance(router, str) or router not in routers:
            if "router" in item:
                p.add(f"{path}.router", f"{router!r} is not a router (router = true in namespaces)")
            continue
        if router in seen:
            p.add(
                f"{path}.router", f"{router!r} has BGP already ({seen[router]}): one table a router"
            )
            continue
        seen[router] = path
        asn = p.check(f"{path}.asn", model.asn, item.get("asn"))
        neighbors = _names(f"{path}.neighbors", item.get("neighbors"), routers, p)
        networks = None
        if "networks" in item:
            raw = item["networks"]
            if not isinstance(raw, list):
                p.add(f"{path}.networks", f"must be an array of CIDRs, not {_kind(raw)}")
                continue
            nets = [
                p.check(f"{path}.networks[{i}]", validate.network, n, "networks")
                for i, n in enumerate(raw)
            ]
            if any(n is None for n in nets):
                continue
            networks = tuple(str(n) for n in nets)
        suite = p.check(f"{path}.suite", model.suite, item.get("suite", "frr"))
        if asn is None or neighbors is None or suite is None:
            continue
        if router in neighbors:
            p.add(f"{path}.neighbors", f"{router!r} cannot be its own neighbour")
            continue
        found.append(BgpSpec(router, asn, neighbors, networks, suite))
    return found


def _paths(
    bgp: list[BgpSpec],
    ospf: list[OspfSpec],
    routers: list[RouterSpec],
    links: Sequence[LinkSpec],
    p: _Problems,
) -> None:
    """Each BGP neighbour must be reachable: eBGP over a link they share, iBGP over a
    link or between loopbacks with OSPF on both; and it must have BGP itself, with
    an AS that matches what the pair says (two ends of eBGP in one AS are iBGP)."""
    by_router = {b.router: (i, b) for i, b in enumerate(bgp)}
    loops = {r.name: model.loopbacks(r.loopback) for r in routers}
    in_ospf = set()
    for o in ospf:
        in_ospf |= set(o.routers if o.routers is not None else loops)
    direct = set()
    for link in links:
        direct.add((link.a, link.b))
        direct.add((link.b, link.a))
    for index, b in enumerate(bgp):
        for n_index, peer in enumerate(b.neighbors):
            path = f"bgp[{index}].neighbors[{n_index}]"
            if peer not in by_router:
                p.add(path, f"{peer!r} has no [[bgp]] table")
                continue
            theirs = by_router[peer][1]
            if b.router not in theirs.neighbors:
                p.add(path, f"{peer!r} does not name {b.router!r} among its neighbors")
            internal = theirs.asn == b.asn
            linked = (b.router, peer) in direct
            here, there = loops.get(b.router, (None, None)), loops.get(peer, (None, None))
            same_family = any(here[f] and there[f] for f in (0, 1))
            looped = internal and {b.router, peer} <= in_ospf and same_family
            if not linked and not looped:
                how = "a link" if not internal else "a link, or loopbacks and OSPF on both"
                p.add(path, f"{peer!r} has no path from {b.router!r}: BGP needs {how}")


def _suites(ospf: list[OspfSpec], bgp: list[BgpSpec], p: _Problems) -> None:
    chosen: dict[str, tuple[str, str]] = {}
    for index, b in enumerate(bgp):
        chosen[b.router] = (b.suite, f"bgp[{index}]")
    for index, o in enumerate(ospf):
        for r in o.routers or ():
            had = chosen.get(r)
            if had is not None and had[0] != o.suite:
                p.add(
                    f"ospf[{index}].suite" if len(ospf) > 1 else "ospf.suite",
                    f"{r!r} runs {had[0]} ({had[1]})",
                )


def to_dict(spec: RoutingSpec) -> dict[str, object]:
    """The ``[ospf]``/``[[bgp]]`` part of a file (routers are marked in namespaces)."""
    out: dict[str, object] = {}
    plain = OspfSpec()
    tables = []
    for o in spec.ospf:
        table: dict[str, object] = {} if o.routers is None else {"routers": list(o.routers)}
        for key in ("area", "hello", "dead", "suite", "bfd"):
            if getattr(o, key) != getattr(plain, key):
                table[key] = getattr(o, key)
        tables.append(table)
    if tables:
        out["ospf"] = tables[0] if len(tables) == 1 else tables
    bgp = []
    for b in spec.bgp:
        item: dict[str, object] = {"router": b.router, "asn": b.asn, "neighbors": list(b.neighbors)}
        if b.networks is not None:
            item["networks"] = list(b.networks)
        if b.suite != "frr":
            item["suite"] = b.suite
        bgp.append(item)
    if bgp:
        out["bgp"] = bgp
    return out


def build(lab: Any, spec: RoutingSpec) -> None:
    """The routing builders a file's routing stands for (namespaces are made by the
    caller as routers: :func:`router_of`)."""
    for o in spec.ospf:
        lab.ospf(o.routers, area=o.area, hello=o.hello, dead=o.dead, suite=o.suite, bfd=o.bfd)
    for b in spec.bgp:
        lab.bgp(b.router, asn=b.asn, neighbors=b.neighbors, networks=b.networks, suite=b.suite)
