"""Ready means converged: every router's kernel table routes every prefix it should.

The daemons' own view is not trusted (a route can be in FRR's RIB and missing from,
or stale in, the kernel): each router's main table is read with ``ip -j route`` (and
``ip -6 -j route`` where it should route IPv6 prefixes) and a prefix counts once a
route for exactly it is there with a nexthop whose link is up (not flagged
``linkdown`` or ``dead``).
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import attrs

from netns_kit.command import Command, ip
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError


class NotConvergedError(NetnsKitError):
    """Routing did not complete in time: ``missing`` says which router lacks what."""

    def __init__(self, timeout: float, missing: Mapping[str, Collection[str]]) -> None:
        self.timeout = timeout
        self.missing = {r: sorted(p) for r, p in missing.items()}
        told = "; ".join(f"{r} lacks {', '.join(p)}" for r, p in sorted(self.missing.items()))
        super().__init__(
            f"routing did not converge within {timeout:g} s: {told} "
            "(look with lab.vtysh(router, 'show ip ospf neighbor') or lab.birdc(router, "
            "'show protocols'))"
        )


def routes_command(namespace: str, machine: str | None, six: bool = False) -> Command:
    family = ("-6",) if six else ()
    read = ip(*family, "-j", "route", "show", namespace=namespace, read=True)
    return attrs.evolve(read, machine=machine)


def _usable(route: Mapping[str, Any]) -> bool:
    hops = route.get("nexthops") or [route]
    return any(not {"linkdown", "dead"} & set(h.get("flags", [])) for h in hops)


def present(text: str) -> set[str]:
    """The prefixes of a ``ip [-6] -j route show`` answer that have a usable route
    (a host route shows no length: /32, or /128 for IPv6)."""
    try:
        routes = json.loads(text or "[]")
    except ValueError:
        return set()
    found = set()
    for route in routes:
        dst = route.get("dst")
        if not dst or dst == "default" or not _usable(route):
            continue
        host = "/128" if ":" in dst else "/32"
        found.add(str(ipaddress.ip_network(dst if "/" in dst else dst + host, strict=False)))
    return found


def missing(
    runner: Runner, want: Mapping[str, set[str]], host_of: Callable[[str], str | None]
) -> dict[str, set[str]]:
    """What each router still lacks, from one read of each table it needs (IPv4,
    IPv6), all overlapped."""
    reads = [
        (r, six)
        for r, nets in want.items()
        for six in (False, True)
        if any((":" in n) == six for n in nets)
    ]
    report = runner.run_each([routes_command(r, host_of(r), six) for r, six in reads])
    have: dict[str, set[str]] = {}
    for (name, _), result in zip(reads, report.results, strict=True):
        text = result.stdout if result is not None and result else ""
        have.setdefault(name, set()).update(present(text))
    lacking: dict[str, set[str]] = {}
    for name, nets in want.items():
        gone = nets - have.get(name, set())
        if gone:
            lacking[name] = gone
    return lacking


def wait(
    runner: Runner,
    want: Mapping[str, set[str]],
    host_of: Callable[[str], str | None],
    timeout: float,
    *,
    poll: float = 0.05,
) -> float:
    """Wait until no router lacks anything; the seconds it took.  Raises
    :class:`NotConvergedError` naming routers and prefixes after ``timeout``."""
    start = time.monotonic()
    todo = {r: set(n) for r, n in want.items() if n}
    while True:
        lacking = missing(runner, todo, host_of)
        if not lacking:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise NotConvergedError(timeout, lacking)
        todo = lacking  # a router that had everything keeps it (or a later read says)
        time.sleep(poll)
