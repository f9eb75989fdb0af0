#!/usr/bin/env python3
"""Measure the timeline's probes (issue 21): run as root on a lab machine.

1. CPU cost of continuous probes: 20 pairs (5 namespaces on a bridge, every ordered
   pair) at 100 Hz for 5 s, as CPU time of this process (``os.times``, user + system;
   the fping loops' own CPU is their children's time), ``--runs`` runs, median.
2. Timestamp accuracy: a chain h1 - r - h2, the link r - h2 down at 1.0 s and up at
   3.0 s, ``--runs`` runs (10 by default): the measured outage's length against the
   scheduled 2.0 s and its start against the scheduled 1.0 s, mean and max error.
3. The outage of a ring of three spanning-tree switches when the link two hosts use
   is cut (3 runs, each value).

Every name starts with ``tl`` and a random token; each lab is torn down by its
``with`` block.  The machine may be shared: the numbers are medians, and CPU time is
the process's own, not wall-clock load.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from typing import Any

from netns_kit import Lab
from netns_kit.objects.link import VethPair


def cpu_cost(method: str, seconds: float) -> dict[str, float]:
    tok = secrets.token_hex(2)
    with Lab(f"tl-b{tok}", isolated=True) as lab:
        with lab.batch():
            bridge = lab.bridge(f"tlbr{tok}")
            spaces = [lab.namespace(f"tl{tok}n{i}") for i in range(5)]
            for i, space in enumerate(spaces):
                lab.link(space, bridge, addresses=[f"10.78.0.{i + 1}/24", None])
        pairs = [(a, b) for a in spaces for b in spaces if a is not b]
        watch = lab.watch(pairs, interval=0.01)
        watch.method = method  # "fping": the fallback, for comparison
        before, start = os.times(), time.monotonic()
        with watch:
            time.sleep(seconds)
        after, end = os.times(), time.monotonic()
        wall = end - start
        own = (after.user - before.user + after.system - before.system) / wall
        user = (after.user - before.user) / wall
        children = (
            after.children_user
            - before.children_user
            + after.children_system
            - before.children_system
        ) / wall
        sent = sum(s.sent for s in watch.series)
        return {
            "pairs": len(pairs),
            "own_cpu_percent": round(own * 100, 2),
            "own_user_percent": round(user * 100, 2),
            "children_cpu_percent": round(children * 100, 2),
            "probes_per_second": round(sent / wall, 1),
            "outages": len(watch.outages()),
        }


def accuracy_run() -> dict[str, float]:
    tok = secrets.token_hex(2)
    with Lab(f"tl-a{tok}", isolated=True) as lab:
        h1, r, h2 = (lab.namespace(f"tl{tok}{x}") for x in ("a", "r", "b"))
        lab.link(h1, r, addresses=["10.77.1.1/24", "10.77.1.2/24"])
        far = lab.link(r, h2, addresses=["10.77.2.1/24", "10.77.2.2/24"])
        assert isinstance(far, VethPair)
        lab.route("10.77.2.0/24", via="10.77.1.2", namespace=h1)
        lab.route("10.77.1.0/24", via="10.77.2.1", namespace=h2)
        lab.sysctl("net.ipv4.ip_forward", 1, namespace=r)
        t = lab.timeline()
        t.at("1s", "down", target=far)
        t.at("3s", "up", target=far)
        run = t.run(watch=[(h1, h2)], interval="10ms", until="4s")
    found = run.outages((h1, h2))
    longest = max(found, key=lambda o: o.duration)
    return {
        "outages": len(found),
        "length": longest.duration,
        "start": longest.start,
        "down_took": run.events[0].finished - run.events[0].started,
        "up_took": run.events[1].finished - run.events[1].started,
    }


def stp_run() -> float:
    tok = secrets.token_hex(2)
    with Lab(f"tl-r{tok}", isolated=True) as lab:
        switches = [lab.namespace(f"tl{tok}s{i}") for i in range(3)]
        bridges = [lab.bridge("br0", namespace=s, stp=True) for s in switches]
        ring = []
        hosts = []
        with lab.batch():
            for i in range(3):
                ring.append(lab.link(bridges[i], bridges[(i + 1) % 3]))
            for i, bridge in enumerate(bridges):
                host = lab.namespace(f"tl{tok}h{i}")
                lab.link(host, bridge, addresses=(f"10.79.0.{i + 1}/24", None))
                hosts.append(host)
        states: dict[tuple[str | None, str], str] = {}
        for switch in switches:
            shown = json.loads(switch.run(["bridge", "-j", "link", "show"]).stdout or "[]")
            states.update({(switch.name, e["ifname"]): e["state"] for e in shown})
        used = next(  # a ring link forwarding at both ends: its two hosts' path
            i
            for i, pair in enumerate(ring)
            if isinstance(pair, VethPair)
            and states[(pair.namespace, pair.name)] == "forwarding"
            and states[(pair.peer_namespace, pair.peer)] == "forwarding"
        )
        a, b = hosts[used], hosts[(used + 1) % 3]
        t = lab.timeline()
        t.at("1s", "down", target=ring[used])
        run = t.run(watch=[(a, b)], interval="10ms", until="14s")
    found = run.outages((a, b))
    return max((o.duration for o in found), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--cpu-runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--stp-runs", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    for method in ("raw", "fping"):
        runs = [cpu_cost(method, args.seconds) for _ in range(args.cpu_runs)]
        out[f"cpu_{method}"] = {
            "runs": runs,
            "median_own_cpu_percent": statistics.median(r["own_cpu_percent"] for r in runs),
            "median_children_cpu_percent": statistics.median(
                r["children_cpu_percent"] for r in runs
            ),
        }
        print(method, json.dumps(out[f"cpu_{method}"]["runs"]), flush=True)
    accuracy = [accuracy_run() for _ in range(args.runs)]
    length_errors = [abs(a["length"] - 2.0) for a in accuracy]
    start_errors = [abs(a["start"] - 1.0) for a in accuracy]
    out["accuracy"] = {
        "runs": accuracy,
        "length_error_mean_ms": round(statistics.mean(length_errors) * 1000, 1),
        "length_error_max_ms": round(max(length_errors) * 1000, 1),
        "start_error_mean_ms": round(statistics.mean(start_errors) * 1000, 1),
        "start_error_max_ms": round(max(start_errors) * 1000, 1),
    }
    print("accuracy", json.dumps(out["accuracy"]), flush=True)
    stp = [stp_run() for _ in range(args.stp_runs)]
    out["stp_ring_outage_s"] = [round(x, 3) for x in stp]
    print("stp", stp, flush=True)
    print(
        json.dumps(
            {k: v for k, v in out.items() if k != "accuracy"}
            | {"accuracy": {k: v for k, v in out["accuracy"].items() if k != "runs"}},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
