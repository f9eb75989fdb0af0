"""Routed labs used by the docs, the tests and ``scripts/bench_routing.py``.

Each takes an open lab and a name prefix (namespaces are global: tests and
benchmarks give each run its own) and builds inside one ``batch()``, so the call
returns once routing has converged.
"""

from __future__ import annotations

from netns_kit.lab.lab import Lab
from netns_kit.objects.namespace import Namespace


def triangle(
    lab: Lab, prefix: str, *, suite: str = "frr", bfd: bool = False, hello: int = 1, dead: int = 3
) -> list[Namespace]:
    """Three routers in a ring, loopbacks 10.255.0.1-3, OSPF on every link."""
    with lab.batch():
        r = [lab.router(f"{prefix}r{i}", loopback=f"10.255.0.{i}/32") for i in (1, 2, 3)]
        lab.link(r[0], r[1], addresses=("10.0.12.1/24", "10.0.12.2/24"))
        lab.link(r[1], r[2], addresses=("10.0.23.2/24", "10.0.23.3/24"))
        lab.link(r[2], r[0], addresses=("10.0.13.3/24", "10.0.13.1/24"))
        lab.ospf(suite=suite, bfd=bfd, hello=hello, dead=dead)
    return r


def two_as(lab: Lab, prefix: str, *, suite: str = "frr") -> dict[str, Namespace]:
    """AS 65001: a1, a2, a3 (OSPF, iBGP between loopbacks), host h1 behind a3.
    AS 65002: b1, b2 (the same), host h2 behind b2.  eBGP between a1 and b1."""
    n: dict[str, Namespace] = {}
    with lab.batch():
        for i, name in enumerate(("a1", "a2", "a3"), 1):
            n[name] = lab.router(f"{prefix}{name}", loopback=f"10.255.1.{i}/32")
        for i, name in enumerate(("b1", "b2"), 1):
            n[name] = lab.router(f"{prefix}{name}", loopback=f"10.255.2.{i}/32")
        n["h1"] = lab.namespace(f"{prefix}h1")
        n["h2"] = lab.namespace(f"{prefix}h2")
        lab.link(n["a1"], n["a2"], addresses=("10.1.12.1/24", "10.1.12.2/24"))
        lab.link(n["a2"], n["a3"], addresses=("10.1.23.2/24", "10.1.23.3/24"))
        lab.link(n["a3"], n["a1"], addresses=("10.1.13.3/24", "10.1.13.1/24"))
        lab.link(n["b1"], n["b2"], addresses=("10.2.12.1/24", "10.2.12.2/24"))
        lab.link(n["a1"], n["b1"], addresses=("10.12.0.1/30", "10.12.0.2/30"))
        lab.link(n["a3"], n["h1"], addresses=("192.168.1.1/24", "192.168.1.10/24"))
        lab.link(n["b2"], n["h2"], addresses=("192.168.2.1/24", "192.168.2.10/24"))
        lab.route("default", via="192.168.1.1", namespace=n["h1"])
        lab.route("default", via="192.168.2.1", namespace=n["h2"])
        a = [n["a1"], n["a2"], n["a3"]]
        b = [n["b1"], n["b2"]]
        lab.ospf(a, suite=suite)
        lab.ospf(b, suite=suite)
        for r in a:
            peers = [x for x in a if x is not r] + ([n["b1"]] if r is n["a1"] else [])
            lab.bgp(r, asn=65001, neighbors=peers, suite=suite)
        for r in b:
            peers = [x for x in b if x is not r] + ([n["a1"]] if r is n["b1"] else [])
            lab.bgp(r, asn=65002, neighbors=peers, suite=suite)
    return n


def grid(lab: Lab, prefix: str, rows: int, cols: int, *, suite: str = "frr") -> list[Namespace]:
    """``rows`` x ``cols`` routers, each linked to its right and lower neighbour
    (/30 subnets of 10.100.0.0/16), loopbacks 10.255.ROW.COL+1, OSPF everywhere."""
    with lab.batch():
        r = {
            (x, y): lab.router(f"{prefix}g{x}x{y}", loopback=f"10.255.{x}.{y + 1}/32")
            for x in range(rows)
            for y in range(cols)
        }
        k = 0
        for (x, y), here in r.items():
            for dx, dy in ((1, 0), (0, 1)):
                there = r.get((x + dx, y + dy))
                if there is None:
                    continue
                third, fourth = divmod(k * 4, 256)
                base = f"10.100.{third}"
                lab.link(
                    here, there, addresses=(f"{base}.{fourth + 1}/30", f"{base}.{fourth + 2}/30")
                )
                k += 1
        lab.ospf(suite=suite)
    return list(r.values())
