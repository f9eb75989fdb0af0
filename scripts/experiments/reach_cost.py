#!/usr/bin/env python3
"""How fast can all pairs of a bridge lab be probed?  (issue 13's measurements)

Builds the bench's bridge lab (isolated, N namespaces on one bridge, 10.77.0.0/16)
and probes every ordered pair of namespaces, each method ``--repeat`` times, the
lab's neighbour tables flushed before each run:

  raw     raw ICMP sockets opened after setns, two worker threads, the kernel
          resolving every neighbour with a broadcast ARP request
  intro   the same, after each namespace introduced itself to its peers with a
          unicast ARP request (what Lab.reachability does as root)
  fping   one ``fping -i 0 -C 1 -r 0`` per namespace, two at a time
          (the process-based fallback)
  halves  raw, in two calls: pairs (i, j>i), then (i, j<i), whose neighbours the
          first call's ARP requests taught: shows where the time goes
  check   Lab.reachability() itself, everything included
  ping    ``ip netns exec SRC ping -c1 -W1 DST`` on ``--ping-sample`` random pairs,
          scaled to all pairs (a sequential pingall)

``--limits raise`` (default) raises net.ipv{4,6}.neigh.default.gc_thresh2/3 for the
run (put back at the end, also on Ctrl-C) for the methods that do not do it
themselves; ``--limits keep`` leaves them, to see the overflow.  The snapshot of the
lab is timed too.  All traffic stays in the lab's namespaces (prefix ``rc``).

    sudo PYTHONPATH=. .venv/bin/python scripts/experiments/reach_cost.py --sizes 30,100
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from netns_kit import Lab, ShellExecutor, spec
from netns_kit.command import in_namespace, ip
from netns_kit.engine.runner import Runner
from netns_kit.executors.probes import Introduction, ProbeJob
from netns_kit.readback.reader import Snapshot

LIMITS = [f"net.ipv{v}.neigh.default.gc_thresh{i}" for v in (4, 6) for i in (2, 3)]
Outcome = tuple[float, int, int]


def address(i: int) -> str:
    h = i + 2
    return f"10.77.{h >> 8}.{h & 255}/16"


def topology(name: str, n: int) -> spec.Topology:
    names = [f"{name}-{i}" for i in range(n)]
    links = tuple(
        spec.LinkSpec(ns, "br0", names=("eth0", f"v{i}"), addresses=(address(i), None))
        for i, ns in enumerate(names)
    )
    return spec.Topology(
        name=name,
        isolated=True,
        namespaces=tuple(names),
        bridges=(spec.BridgeSpec("br0", "10.77.0.1/16"),),
        links=links,
    )


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def flush(names: list[str]) -> float:
    started = time.perf_counter()
    Runner(ShellExecutor()).run_each([ip("neigh", "flush", "all", namespace=ns) for ns in names])
    return time.perf_counter() - started


def _same_side(index: dict[str, int], ns: str, upper: bool, other: str) -> bool:
    """Whether ``other`` is on ``ns``'s upper (or lower) side of the pair matrix."""
    return (index[other] > index[ns]) == upper


class Methods:
    """The ways to probe one lab (see the module docstring)."""

    def __init__(self, lab: Lab, snap: Snapshot, timeout: float) -> None:
        self.lab = lab
        self.names = [ns.name for ns in lab.namespaces]
        self.addrs = {ns: snap[ns].addresses_of("eth0")[0].split("/")[0] for ns in self.names}
        self.macs = {ns: str(snap[ns].link("eth0").mac) for ns in self.names}
        self.timeout = timeout

    def _probe(self, jobs: list[ProbeJob]) -> Outcome:
        started = time.perf_counter()
        answers = ShellExecutor().probe([jobs[0::2], jobs[1::2]], timeout=self.timeout, count=1)
        took = time.perf_counter() - started
        flat = [rtt for lane in answers for answer in lane for rtt in answer.rtts]
        return took, sum(r is not None for r in flat), len(flat)

    def raw(self) -> Outcome:
        return self._probe([self._job(ns, intro=False) for ns in self.names])

    def intro(self) -> Outcome:
        return self._probe([self._job(ns, intro=True) for ns in self.names])

    def _job(self, ns: str, *, intro: bool, keep: Callable[[str], bool] = bool) -> ProbeJob:
        others = [o for o in self.names if o != ns and keep(o)]
        intros = [
            Introduction("eth0", self.macs[ns], self.addrs[ns], self.macs[o], self.addrs[o])
            for o in others
            if intro
        ]
        return ProbeJob(ns, [self.addrs[o] for o in others], intros)

    def halves(self) -> Outcome:
        index = {ns: i for i, ns in enumerate(self.names)}
        took = ok = total = 0.0
        for upper in (True, False):
            jobs = [
                self._job(ns, intro=False, keep=partial(_same_side, index, ns, upper))
                for ns in self.names
            ]
            part = self._probe(jobs)
            print(f"    half {'i<j' if upper else 'i>j'}: {part[0]:.3f} s")
            took, ok, total = took + part[0], ok + part[1], total + part[2]
        return took, int(ok), int(total)

    def fping(self) -> Outcome:
        commands = []
        for ns in self.names:
            targets = [self.addrs[o] for o in self.names if o != ns]
            argv = [
                "fping",
                "-i",
                "0",
                "-q",
                "-C",
                "1",
                "-r",
                "0",
                "-t",
                str(int(self.timeout * 1000)),
            ]
            commands.append(in_namespace([*argv, *targets], ns, read=True, mounts=False))
        started = time.perf_counter()
        report = Runner(ShellExecutor()).run_each(commands)
        took = time.perf_counter() - started
        ok = total = 0
        for result in report.results:
            assert result is not None
            for line in result.stderr.splitlines():
                if " : " in line:
                    total += 1
                    ok += line.split(" : ", 1)[1].strip() != "-"
        return took, ok, total

    def check(self) -> Outcome:
        started = time.perf_counter()
        result = self.lab.reachability(timeout=self.timeout)
        return time.perf_counter() - started, result.answered, len(result)

    def ping(self, sample: int) -> tuple[float, int]:
        pairs = [(a, b) for a in self.names for b in self.names if a != b]
        chosen = random.sample(pairs, min(sample, len(pairs)))
        started = time.perf_counter()
        ok = 0
        for source, target in chosen:
            argv = ["ip", "netns", "exec", source, "ping", "-n", "-q", "-c1", "-W1"]
            ok += subprocess.run([*argv, self.addrs[target]], capture_output=True).returncode == 0
        return (time.perf_counter() - started) / len(chosen) * len(pairs), ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30,100")
    parser.add_argument("--methods", default="raw,intro,fping,check")
    parser.add_argument("--limits", choices=("raise", "keep"), default="raise")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--ping-sample", type=int, default=0)
    args = parser.parse_args()
    old = {key: sysctl_path(key).read_text().strip() for key in LIMITS}
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            with tempfile.TemporaryDirectory() as state:
                started = time.perf_counter()
                lab = Lab.from_topology(topology("rc" + secrets.token_hex(2), n), state_dir=state)
                lab.open()
                setup = time.perf_counter() - started
                try:
                    run(lab, n, setup, args, old)
                finally:
                    lab.close()
    finally:
        for key, value in old.items():
            sysctl_path(key).write_text(value)
    return 0


def run(lab: Lab, n: int, setup: float, args: argparse.Namespace, old: dict[str, str]) -> None:
    print(f"N={n}: setup {setup:.2f} s, {n * (n - 1)} pairs")
    times = []
    for _ in range(3):
        started = time.perf_counter()
        snap = lab.snapshot()
        times.append(time.perf_counter() - started)
    print(f"  snapshot median {statistics.median(times):.3f} s (of 3)")
    methods = Methods(lab, snap, args.timeout)
    names = methods.names
    for method in filter(None, args.methods.split(",")):
        times = []
        for _ in range(args.repeat):
            flushed = flush(names)
            raise_ = args.limits == "raise" and method != "check"
            for key in LIMITS:
                sysctl_path(key).write_text("200000" if raise_ else old[key])
            took, ok, total = getattr(methods, method)()
            for key in LIMITS:
                sysctl_path(key).write_text(old[key])
            times.append(took)
            print(f"  {method:6} {took:.3f} s  {ok}/{total} answered  (flush {flushed:.3f} s)")
        print(f"  {method:6} median {statistics.median(times):.3f} s", flush=True)
    if args.ping_sample:
        flush(names)
        scaled, ok = methods.ping(args.ping_sample)
        print(f"  pingall scaled from {args.ping_sample} pairs: {scaled:.1f} s ({ok} answered)")
    flush(names)


if __name__ == "__main__":
    sys.exit(main())
