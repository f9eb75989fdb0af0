"""Experiment: how the cost of checking a topology grows with its size (issue 9).

Checking a file must stay about linear in its size, valid or not: a file in which
every reference is wrong once took minutes at 2,000 namespaces, because each bad
name was compared with every defined one.  This builds big labs in two layouts, each
valid and with one kind of fault in every item, and times ``topology.from_dict``
(the checks alone) and ``topology.load`` (parsing the TOML too), in CPU seconds.

- ``bridge``: namespaces ``red{i}`` on one bridge ``br0`` (10.0.0.1/16), each with an
  address on it, a default route through the bridge's address and a sysctl.
- ``hub``: one namespace ``hub`` with a veth pair to each ``red{i}`` (one /30 each)
  and a route in ``hub`` to a /24 behind each: thousands of interfaces and routes in
  one namespace.

Faults (``--fault``; ``valid`` has none):

- ``names``: every reference misspelt, ``rde{i}`` for ``red{i}`` (links, routes and
  sysctls; in ``hub`` also every route's ``dev``);
- ``duplicates``: every namespace, link, route and sysctl given twice;
- ``subnets``: ``bridge``: every other link's address outside the bridge's subnet,
  the rest all the same address; ``hub``: every link's far end in another subnet;
- ``gateways``: every route's gateway in no connected subnet (in ``hub``, without
  ``dev``, so that every one of the hub's subnets is a candidate).

Run: .venv/bin/python scripts/experiments/check_cost.py [SIZES...] [--layout L] [--fault F]
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# The worktree's netns_kit, not an installed one.
from netns_kit import topology
from netns_kit.topology import TopologyError

FAULTS = ("valid", "names", "duplicates", "subnets", "gateways")


def bridge_lab(n: int, fault: str = "valid") -> dict[str, object]:
    spell = "rde" if fault == "names" else "red"
    hosts = list(ipaddress.ip_network("10.0.0.0/16").hosts())
    twice = 2 if fault == "duplicates" else 1

    def address(i: int) -> str:
        if fault != "subnets":
            return f"{hosts[i + 1]}/16"
        return f"10.1.0.{i % 250 + 1}/24" if i % 2 else "10.0.0.2/16"

    via = "10.9.0.1" if fault == "gateways" else "10.0.0.1"
    return {
        "name": "cost",
        "isolated": True,
        "namespaces": [f"red{i}" for i in range(n)] * twice,
        "bridges": [{"name": "br0", "address": "10.0.0.1/16"}],
        "links": [{"a": f"{spell}{i}", "b": "br0", "addresses": [address(i)]} for i in range(n)]
        * twice,
        "routes": [
            {"namespace": f"{spell}{i}", "destination": "default", "via": via} for i in range(n)
        ]
        * twice,
        "sysctls": [
            {"namespace": f"{spell}{i}", "key": "net.ipv4.ip_forward", "value": 1} for i in range(n)
        ]
        * twice,
    }


def hub_lab(n: int, fault: str = "valid") -> dict[str, object]:
    spell = "rde" if fault == "names" else "red"
    nets = ipaddress.IPv4Network("10.0.0.0/9").subnets(new_prefix=30)
    behind = ipaddress.IPv4Network("10.128.0.0/9").subnets(new_prefix=24)
    links, routes = [], []
    for i, net, far in zip(range(n), nets, behind, strict=False):
        near, end = list(net.hosts())
        links.append(
            {
                "a": "hub",
                "b": f"{spell}{i}",
                "names": [f"h{i}", "up"],
                "addresses": [
                    f"{near}/30",
                    f"{far.network_address + 1}/30" if fault == "subnets" else f"{end}/30",
                ],
            }
        )
        route = {"namespace": "hub", "destination": str(far), "via": str(end), "dev": f"h{i}"}
        if fault == "names":
            route["dev"] = f"g{i}"
        elif fault == "gateways":  # no dev: every subnet of the hub is a candidate
            route["via"] = str(far.network_address + 9)
            del route["dev"]
        routes.append(route)
    twice = 2 if fault == "duplicates" else 1
    return {
        "name": "cost",
        "isolated": True,
        "namespaces": ["hub", *(f"red{i}" for i in range(n))] * twice,
        "links": links,
        "routes": routes * twice,
    }


def toml_text(data: dict[str, object]) -> str:
    """Just enough of a TOML writer for these labs (no dependency for it)."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return '"' + str(v) + '"'

    lines = []
    for key, v in data.items():
        if not (isinstance(v, list) and v and isinstance(v[0], dict)):
            lines.append(f"{key} = {value(v)}")
    for key, v in data.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{key}]]")
                lines.extend(f"{k} = {value(x)}" for k, x in item.items())
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, int, int]:
    """CPU seconds (the least of ``repeat`` runs, fewer when one takes over 5 s), the
    number of problems, and the error message's length.  CPU time, not wall time, so
    that other work on the machine does not count."""
    best, problems, length = float("inf"), 0, 0
    for _ in range(repeat):
        start = time.process_time()
        try:
            fn()
        except TopologyError as error:
            problems, length = len(error.problems), len(str(error))
        spent = time.process_time() - start
        best = min(best, spent)
        if spent > 5:
            break
    return best, problems, length


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[500, 1000, 2000, 5000])
    parser.add_argument("--layout", choices=("bridge", "hub", "both"), default="both")
    parser.add_argument("--fault", choices=(*FAULTS, "all"), action="append")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (the least)")
    parser.add_argument("--no-load", action="store_true", help="time the checks only")
    args = parser.parse_args()
    layouts = {"bridge": bridge_lab, "hub": hub_lab}
    chosen = list(layouts) if args.layout == "both" else [args.layout]
    faults = args.fault or ["valid", "names"]
    if "all" in faults:
        faults = list(FAULTS)
    print(f"{'layout':8}{'fault':12}{'n':>6}{'check s':>9}{'load s':>9}{'problems':>10}{'msg':>8}")
    with tempfile.TemporaryDirectory() as scratch:
        for name in chosen:
            for fault in faults:
                for n in args.sizes:
                    data = layouts[name](n, fault)
                    path = Path(scratch) / f"{name}-{n}-{fault}.toml"
                    path.write_text(toml_text(data))
                    check, problems, length = timed(partial(topology.from_dict, data), args.repeat)
                    load = float("nan")
                    if not args.no_load:
                        load, _, _ = timed(partial(topology.load, path), args.repeat)
                    row = f"{name:8}{fault:12}{n:>6}{check:>9.3f}{load:>9.3f}"
                    print(f"{row}{problems:>10}{length:>8}", flush=True)


if __name__ == "__main__":
    main()
