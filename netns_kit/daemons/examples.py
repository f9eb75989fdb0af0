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


def two_as(
    lab: Lab, prefix: str, *, suite: str = "frr", ipv6: bool = False
) -> dict[str, Namespace]:
    """AS 65001: a1, a2, a3 (OSPF, iBGP between loopbacks), host h1 behind a3.
    AS 65002: b1, b2 (the same), host h2 behind b2.  eBGP between a1 and b1.

    ``ipv6=True``: dual-stack, with IPv6 loopbacks fd00:255:AS::N/128 beside the IPv4
    ones, and beside each link an IPv6 one (fd00:X:YZ::/64, the hosts' fd00:1::/64
    and fd00:2::/64): OSPFv3, iBGP between the IPv6 loopbacks, eBGP over fd00:12::/64.
    """
    n: dict[str, Namespace] = {}

    def loop(side: int, i: int) -> str | tuple[str, str]:
        four = f"10.255.{side}.{i}/32"
        return (four, f"fd00:255:{side}::{i}/128") if ipv6 else four

    with lab.batch():
        for i, name in enumerate(("a1", "a2", "a3"), 1):
            n[name] = lab.router(f"{prefix}{name}", loopback=loop(1, i))
        for i, name in enumerate(("b1", "b2"), 1):
            n[name] = lab.router(f"{prefix}{name}", loopback=loop(2, i))
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
        if ipv6:
            for x, y, net, ends in (
                ("a1", "a2", "fd00:1:12", "12"),
                ("a2", "a3", "fd00:1:23", "23"),
                ("a3", "a1", "fd00:1:13", "31"),
                ("b1", "b2", "fd00:2:12", "12"),
                ("a1", "b1", "fd00:12", "12"),
            ):
                lab.link(n[x], n[y], addresses=(f"{net}::{ends[0]}/64", f"{net}::{ends[1]}/64"))
            lab.link(n["a3"], n["h1"], addresses=("fd00:1::1/64", "fd00:1::10/64"))
            lab.link(n["b2"], n["h2"], addresses=("fd00:2::1/64", "fd00:2::10/64"))
            lab.route("default", via="fd00:1::1", namespace=n["h1"])
            lab.route("default", via="fd00:2::1", namespace=n["h2"])
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


def dual_stack_triangle(lab: Lab, prefix: str, *, suite: str = "frr") -> list[Namespace]:
    """The triangle, dual-stack: loopbacks 10.255.0.N/32 and fd00:255::N/128, and
    between each two routers an IPv4 link (10.0.XY.0/24, OSPFv2) and an IPv6 link
    (fd00:XY::/64, OSPFv3; a link holds one address an end)."""
    with lab.batch():
        r = [
            lab.router(f"{prefix}r{i}", loopback=(f"10.255.0.{i}/32", f"fd00:255::{i}/128"))
            for i in (1, 2, 3)
        ]
        for x, y in ((1, 2), (2, 3), (1, 3)):
            a, b = r[x - 1], r[y - 1]
            lab.link(a, b, addresses=(f"10.0.{x}{y}.{x}/24", f"10.0.{x}{y}.{y}/24"))
            lab.link(a, b, addresses=(f"fd00:{x}{y}::{x}/64", f"fd00:{x}{y}::{y}/64"))
        lab.ospf(suite=suite)
    return r


def ebgp6(lab: Lab, prefix: str, *, suite: str = "frr") -> dict[str, Namespace]:
    """IPv6 only: r1 (AS 65001, loopback fd00:255::1) and r2 (AS 65002) speak eBGP
    over fd00:12::/64; host h1 (fd00:1::10) behind r1, h2 (fd00:2::10) behind r2."""
    n: dict[str, Namespace] = {}
    with lab.batch():
        for i in (1, 2):
            n[f"r{i}"] = lab.router(f"{prefix}r{i}", loopback=f"fd00:255::{i}/128")
            n[f"h{i}"] = lab.namespace(f"{prefix}h{i}")
            lab.link(n[f"r{i}"], n[f"h{i}"], addresses=(f"fd00:{i}::1/64", f"fd00:{i}::10/64"))
            lab.route("default", via=f"fd00:{i}::1", namespace=n[f"h{i}"])
        lab.link(n["r1"], n["r2"], addresses=("fd00:12::1/64", "fd00:12::2/64"))
        lab.bgp(n["r1"], asn=65001, neighbors=[n["r2"]], suite=suite)
        lab.bgp(n["r2"], asn=65002, neighbors=[n["r1"]], suite=suite)
    return n
