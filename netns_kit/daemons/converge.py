"""Ready means converged: every router's kernel table routes every prefix it should.

The daemons' own view is not trusted (a route can be in FRR's RIB and missing from,
or stale in, the kernel): each router's main table is read with ``ip -j route`` and
a prefix counts once a route for exactly it is there with a nexthop whose link is
up (not flagged ``linkdown`` or ``dead``).
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


def routes_command(namespace: str, machine: str | None) -> Command:
    return attrs.evolve(ip("-j", "route", "show", namespace=namespace, read=True), machine=machine)


def _usable(route: Mapping[str, Any]) -> bool:
    hops = route.get("nexthops") or [route]
    return any(not {"linkdown", "dead"} & set(h.get("flags", [])) for h in hops)


def present(text: str) -> set[str]:
    """The prefixes of a ``ip -j route show`` answer that have a usable route."""
    try:
        routes = json.loads(text or "[]")
    except ValueError:
        return set()
    found = set()
    for route in routes:
        dst = route.get("dst")
        if not dst or dst == "default" or not _usable(route):
            continue
        found.add(str(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)))
    return found


def missing(
    runner: Runner, want: Mapping[str, set[str]], host_of: Callable[[str], str | None]
) -> dict[str, set[str]]:
    """What each router still lacks, from one read of each table (overlapped)."""
    names = [r for r, nets in want.items() if nets]
    report = runner.run_each([routes_command(r, host_of(r)) for r in names])
    lacking: dict[str, set[str]] = {}
    for name, result in zip(names, report.results, strict=True):
        have = present(result.stdout if result is not None and result else "")
        gone = want[name] - have
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
