#!/usr/bin/env python3
"""How fast can all pairs of a bridge lab be probed?  (issue 13's measurements)

Builds the bench's bridge lab (isolated, N namespaces on one bridge, 10.77.0.0/16,
optionally fd77::/64 too) and probes every ordered pair of namespaces:

  raw     raw ICMP sockets opened after setns, two worker threads
          (ShellExecutor.probe: what Lab.reachability uses as root)
  fping   one ``fping -i 0 -C COUNT -r 0`` per namespace, two at a time
          (the process-based fallback)
  ping    ``ip netns exec SRC ping -c1 -W1 DST`` on a sample of pairs, scaled
          (a sequential pingall, Mininet-style)

between methods the lab's neighbour tables are flushed.  ``--limits raise`` raises
net.ipv{4,6}.neigh.default.gc_thresh2/3 for the run (restored at the end, also on
Ctrl-C); ``--limits keep`` leaves them, to see the overflow.  All traffic stays in
the lab's namespaces (prefix ``rc``).

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
from pathlib import Path

from netns_kit import Lab, ShellExecutor, spec
from netns_kit.command import in_namespace, ip
from netns_kit.probes import ProbeJob
from netns_kit.runner import Runner

LIMITS = [f"net.ipv{v}.neigh.default.gc_thresh{i}" for v in (4, 6) for i in (2, 3)]


def address(i: int, six: bool) -> str:
    h = i + 2
    return f"fd77::{h:x}/64" if six else f"10.77.{h >> 8}.{h & 255}/16"


def topology(name: str, n: int, six: bool) -> spec.Topology:
    names = [f"{name}-{i}" for i in range(n)]
    links = []
    for i, ns in enumerate(names):
        links.append(
            spec.LinkSpec(ns, "br0", names=("eth0", f"v{i}"), addresses=(address(i, False), None))
        )
    topo = spec.Topology(
        name=name,
        isolated=True,
        namespaces=tuple(names),
        bridges=(spec.BridgeSpec("br0", "10.77.0.1/16"),),
        links=tuple(links),
    )
    return topo


def sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def flush(names: list[str]) -> float:
    started = time.perf_counter()
    commands = [ip("neigh", "flush", "all", namespace=ns) for ns in names]
    Runner(ShellExecutor()).run_each(commands)
    return time.perf_counter() - started


def raw(names: list[str], addrs: dict[str, list[str]], timeout: float) -> tuple[float, int, int]:
    jobs = [ProbeJob(ns, [a for other in names if other != ns for a in addrs[other]]) for ns in names]
    lanes: list[list[ProbeJob]] = [jobs[0::2], jobs[1::2]]
    started = time.perf_counter()
    answers = ShellExecutor().probe(lanes, timeout=timeout, count=1)
    took = time.perf_counter() - started
    flat = [rtt for lane in answers for a in lane for rtt in a.rtts]
    errors = [e for lane in answers for a in lane for e in a.errors if e]
    if errors:
        print(f"    raw: {len(errors)} send errors, e.g. {errors[0]!r}")
    return took, sum(r is not None for r in flat), len(flat)


def halves(names: list[str], addrs: dict[str, list[str]], timeout: float) -> tuple[float, int, int]:
    """Two probe calls: first every pair (i, j>i), then (i, j<i), whose neighbours
    are known from the first call's ARP requests."""
    index = {ns: i for i, ns in enumerate(names)}
    total_ok = total = 0
    started = time.perf_counter()
    for upper in (True, False):
        jobs = [
            ProbeJob(ns, [a for o in names if (index[o] > index[ns]) == upper and o != ns for a in addrs[o]])
            for ns in names
        ]
        t0 = time.perf_counter(); c0 = time.process_time()
        answers = ShellExecutor().probe([jobs[0::2], jobs[1::2]], timeout=timeout, count=1)
        print(f"    half upper={upper}: {time.perf_counter() - t0:.3f} s, process cpu {time.process_time() - c0:.3f} s")
        flat = [rtt for lane in answers for a in lane for rtt in a.rtts]
        total_ok += sum(r is not None for r in flat)
        total += len(flat)
    return time.perf_counter() - started, total_ok, total


def warm(names: list[str], addrs: dict[str, list[str]], timeout: float) -> tuple[float, int, int]:
    """Unicast ARP requests from every namespace to every other (MACs read first,
    untimed), then the raw probes: no broadcast ARP at all."""
    import socket
    import struct
    from concurrent.futures import ThreadPoolExecutor

    from netns_kit.executor import quiet_thread

    ex = ShellExecutor()
    snap = WARM_SNAP[0]
    macs = {ns: bytes.fromhex(snap[ns].link("eth0").mac.replace(":", "")) for ns in names}
    ips = {ns: socket.inet_aton(addrs[ns][0]) for ns in names}
    setns = ex._setns or __import__("netns_kit.executor", fromlist=["x"])._Setns()

    def introduce(lane: list[str]) -> None:
        for ns in lane:
            with setns.entered(ns):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            sock.bind(("eth0", 0))
            for other in names:
                if other == ns:
                    continue
                frame = macs[other] + macs[ns] + b"\x08\x06" + struct.pack(
                    "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, macs[ns], ips[ns], b"\0" * 6, ips[other]
                )
                sock.send(frame)
            sock.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(2, initializer=quiet_thread) as pool:
        list(pool.map(introduce, [names[0::2], names[1::2]]))
    introduced = time.perf_counter() - started
    took, ok, total = raw(names, addrs, timeout)
    print(f"    introductions {introduced:.3f} s, probes {took:.3f} s")
    return introduced + took, ok, total


WARM_SNAP: list = []


def intro(names: list[str], addrs: dict[str, list[str]], timeout: float) -> tuple[float, int, int]:
    """The library's way: introductions (unicast ARP) in the jobs, then echoes."""
    from netns_kit.probes import Introduction

    snap = WARM_SNAP[0]
    macs = {ns: snap[ns].link("eth0").mac for ns in names}
    jobs = []
    for ns in names:
        others = [o for o in names if o != ns]
        intros = [Introduction("eth0", macs[ns], addrs[ns][0], macs[o], addrs[o][0]) for o in others]
        jobs.append(ProbeJob(ns, [addrs[o][0] for o in others], intros))
    started = time.perf_counter()
    answers = ShellExecutor().probe([jobs[0::2], jobs[1::2]], timeout=timeout, count=1)
    took = time.perf_counter() - started
    flat = [rtt for lane in answers for a in lane for rtt in a.rtts]
    return took, sum(r is not None for r in flat), len(flat)


def fping(names: list[str], addrs: dict[str, list[str]], timeout: float) -> tuple[float, int, int]:
    commands = []
    for ns in names:
        targets = [a for other in names if other != ns for a in addrs[other]]
        argv = ["fping", "-i", "0", "-q", "-C", "1", "-r", "0", "-t", str(int(timeout * 1000))]
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


def ping_sample(names: list[str], addrs: dict[str, list[str]], sample: int) -> tuple[float, int]:
    pairs = [(a, b) for a in names for b in names if a != b]
    chosen = random.sample(pairs, min(sample, len(pairs)))
    started = time.perf_counter()
    ok = 0
    for source, target in chosen:
        dst = addrs[target][0]
        done = subprocess.run(
            ["ip", "netns", "exec", source, "ping", "-n", "-q", "-c1", "-W1", dst],
            capture_output=True,
        )
        ok += done.returncode == 0
    per_pair = (time.perf_counter() - started) / len(chosen)
    return per_pair * len(pairs), ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="30,100")
    parser.add_argument("--methods", default="raw,fping")
    parser.add_argument("--limits", choices=("raise", "keep"), default="raise")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--ping-sample", type=int, default=0)
    parser.add_argument("--six", action="store_true", help="IPv6 addresses too")
    args = parser.parse_args()
    old = {key: sysctl_path(key).read_text().strip() for key in LIMITS}
    try:
        if args.limits == "raise":
            for key in LIMITS:
                sysctl_path(key).write_text("200000")
        for n in [int(x) for x in args.sizes.split(",")]:
            name = "rc" + secrets.token_hex(2)
            topo = topology(name, n, args.six)
            with tempfile.TemporaryDirectory() as state:
                started = time.perf_counter()
                lab = Lab.from_topology(topo, state_dir=state)
                lab.open()
                setup = time.perf_counter() - started
                try:
                    names = list(topo.namespaces)
                    addrs = {
                        link.a: [str(link.addresses[0]).split("/")[0]] for link in topo.links
                    }
                    print(f"N={n}: setup {setup:.2f} s, {n * (n - 1)} pairs")
                    time.sleep(0.5)
                    WARM_SNAP[:] = [lab.snapshot()]
                    for method in args.methods.split(","):
                        times = []
                        for _ in range(args.repeat):
                            flushed = flush(names)
                            took, ok, total = {"raw": raw, "fping": fping, "halves": halves, "warm": warm, "intro": intro}[method](
                                names, addrs, args.timeout
                            )
                            times.append(took)
                            print(
                                f"  {method:6} {took:.3f} s  {ok}/{total} answered"
                                f"  (flush {flushed:.3f} s)",
                                flush=True,
                            )
                        print(f"  {method:6} median {statistics.median(times):.3f} s")
                    if args.ping_sample:
                        flush(names)
                        scaled, ok = ping_sample(names, addrs, args.ping_sample)
                        print(f"  pingall (scaled from {args.ping_sample}): {scaled:.1f} s ({ok} ok)")
                    started = time.perf_counter()
                    lab.snapshot()
                    print(f"  snapshot {time.perf_counter() - started:.3f} s")
                    flush(names)
                finally:
                    lab.close()
    finally:
        for key, value in old.items():
            sysctl_path(key).write_text(value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
