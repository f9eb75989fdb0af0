#!/usr/bin/env python3
"""Benchmark routing daemons (issue 20): FRR and BIRD in lab namespaces.

For each suite and topology (the OSPF triangle, the dual-stack triangle ``dual``:
OSPFv2 and OSPFv3, grids of routers):

  start      seconds to make the routers' directories, write their configurations
             and start their daemons (``lab.start_routing()``), once the links exist
  converge   seconds from then until every router's kernel table routes every
             loopback and subnet (``lab.converge()``: ``ip -j route``, not the
             daemons' opinion)
  pss        memory per router: the proportional set size of its daemons
             (/proc/PID/smaps_rollup), MiB
  procs      daemons per router
  cpu        CPU seconds of this process and the children it reaped during
             ``lab.start_routing()`` (the daemons' own time is not in it): the
             start's cost when the machine is shared and wall time is noisy

and, for the triangle, the outage when r1's link to r2 goes down: ``fping -l -p 10``
from r1 to r2's loopback (one probe every 10 ms) counts the probes lost, and the
kernel's ``ip route get`` tells when r1 routes through r3.

Medians of ``--runs`` runs.  The machine may be shared (other tests running): say so
with the figures.  Run as root:  .venv/bin/python scripts/bench_routing.py
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from netns_kit import Lab
from netns_kit.daemons import examples


def pss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        found = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
        total += int(found.group(1)) if found else 0
    return total / 1024


def build(kind: str, lab: Lab, prefix: str, suite: str) -> int:
    """The topology without starting routing (the build's own hook is bypassed)."""
    if kind == "triangle":
        examples.triangle(lab, prefix, suite=suite, hello=HELLO, dead=DEAD)
        return 3
    if kind == "dual":  # converged: the IPv4 and the IPv6 tables complete
        examples.dual_stack_triangle(lab, prefix, suite=suite)
        return 3
    rows, cols = {"grid20": (4, 5), "grid50": (5, 10)}[kind]
    examples.grid(lab, prefix, rows, cols, suite=suite)
    return rows * cols


def cpu_seconds() -> float:
    """User and system time of this process and its reaped children."""
    me, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def one_run(kind: str, suite: str, outage: bool) -> dict[str, float]:
    name = f"{PREFIX}{secrets.token_hex(2)}"
    lab = Lab(name)
    built = lab._routing_built
    lab._routing_built = lambda: None  # type: ignore[method-assign]
    out: dict[str, float] = {}
    try:
        lab.open()
        routers = build(kind, lab, name, suite)
        lab._routing_built = built  # type: ignore[method-assign]
        start, cpu = time.monotonic(), cpu_seconds()
        lab.start_routing()
        out["start"] = time.monotonic() - start
        out["cpu"] = cpu_seconds() - cpu
        out["converge"] = lab.converge(120)
        pids = [d.process.pid for ds in lab.routing.running.values() for d in ds]
        out["pss"] = pss_mib(pids) / routers
        out["procs"] = len(pids) / routers
        if outage:
            out.update(measure_outage(lab, name))
    finally:
        lab.close()
    return out


def measure_outage(lab: Lab, prefix: str) -> dict[str, float]:
    r1 = lab[f"{prefix}r1"]
    link = next(
        a["ifname"]
        for a in json.loads(r1.run(["ip", "-j", "addr", "show"]).stdout)
        if any(i.get("local") == "10.0.12.1" for i in a["addr_info"])
    )
    probe = r1.popen(["fping", "-l", "-p", "10", "-D", "10.255.0.2"])
    # BIRD originates a router LSA at most every 5 s (MinLSInterval): a cut right
    # after convergence waits for that; settle first, as a lab in use has
    time.sleep(SETTLE)
    cut = time.monotonic()
    r1.run(["ip", "link", "set", "dev", link, "down"])
    rerouted = 0.0
    while time.monotonic() - cut < 30:
        said = r1.run(["ip", "-j", "route", "get", "10.255.0.2"], check=False).stdout
        got = json.loads(said or "[]")
        if got and got[0].get("gateway") == "10.0.13.3":
            rerouted = time.monotonic() - cut
            break
        time.sleep(0.005)
    time.sleep(max(0.0, 5.0 - (time.monotonic() - cut)))  # answers flowing again
    stopped = probe.stop()
    seqs = [int(m) for m in re.findall(r"\[(\d+)\], \d+ bytes", stopped.stdout)]
    lost = (max(seqs) + 1 - len(set(seqs))) if seqs else -1
    return {"reroute": rerouted, "outage": lost * 0.010}


#: Seconds between convergence and the cut (see measure_outage); --settle.
SETTLE = 6.0
#: The first letters of every lab's name (--prefix).
PREFIX = "rt"
#: The triangle's OSPF timers (--hello, --dead): the lab's defaults, or e.g. 10/40.
HELLO, DEAD = 1, 3
#: The labs' name prefix (--prefix): namespaces are global.
PREFIX = "rt"


def median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs if key in r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--suites", default="frr,bird")
    parser.add_argument("--labs", default="triangle,grid20,grid50")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds before the cut")
    parser.add_argument("--hello", type=int, default=1, help="the triangle's OSPF hello")
    parser.add_argument("--dead", type=int, default=3, help="the triangle's OSPF dead interval")
    parser.add_argument("--prefix", default="rt", help="the first letters of the labs' names")
    args = parser.parse_args()
    global SETTLE, HELLO, DEAD, PREFIX
    SETTLE, HELLO, DEAD, PREFIX = args.settle, args.hello, args.dead, args.prefix
    rows: list[tuple[Any, ...]] = []
    for kind in args.labs.split(","):
        for suite in args.suites.split(","):
            runs = [one_run(kind, suite, kind == "triangle") for _ in range(args.runs)]
            row: list[Any] = [kind, suite]
            keys = ["start", "cpu", "converge", "pss", "procs", "reroute", "outage"]
            row += [median(runs, k) if any(k in r for r in runs) else None for k in keys]
            rows.append(tuple(row))
            print(_line(row), flush=True)


def _line(row: list[Any]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v))

    return "  ".join(f"{cell(v):>9}" for v in row)


HEADER = ("lab", "suite", "start", "cpu", "converge", "pss/MiB", "procs", "reroute", "outage")

if __name__ == "__main__":
    print("  ".join(f"{h:>9}" for h in HEADER), flush=True)
    main()
