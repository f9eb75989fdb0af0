"""Issue 22's figures: how long lab.capture() takes to be ready, what capturing every
namespace of a 50-namespace lab costs the pytest plugin's setup, and a throughput
time series.  Run as root: ``.venv/bin/python scripts/experiments/capture_bench.py``.

Names start with ``cap-`` and a random token; every lab is closed at the end.
"""

from __future__ import annotations

import resource
import secrets
import statistics
import sys
import time

from netns_kit import Lab
from netns_kit.capture.evidence import Follow
from netns_kit.capture.telemetry import Sampled
from netns_kit.objects.link import VethPair


def cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def ready_times(runs: int) -> None:
    token = secrets.token_hex(2)
    with Lab(f"cap-b{token}", isolated=True) as lab:
        red = lab.namespace(f"cap-b{token}-r")
        blue = lab.namespace(f"cap-b{token}-b")
        pair = lab.link(red, blue, addresses=("10.67.0.1/24", "10.67.0.2/24"))
        assert isinstance(pair, VethPair)
        lab.capture(pair.end).stop()  # the first finds tcpdump
        walls, cpus, stops = [], [], []
        for _ in range(runs):
            c0, t0 = cpu(), time.perf_counter()
            capture = lab.capture(pair.end)
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu() - c0)
            t1 = time.perf_counter()
            capture.close()
            stops.append(time.perf_counter() - t1)
        print(
            f"lab.capture() to ready, {runs} runs: median {statistics.median(walls) * 1e3:.1f} ms "
            f"(min {min(walls) * 1e3:.1f}, max {max(walls) * 1e3:.1f}); "
            f"CPU {statistics.median(cpus) * 1e3:.1f} ms; "
            f"stop {statistics.median(stops) * 1e3:.1f} ms"
        )


def build(n: int, capture: bool) -> tuple[float, float, float]:
    """A bridge star of ``n`` namespaces, as a test would build it inside the lab
    fixture: (open+build seconds, CPU seconds, close seconds)."""
    token = secrets.token_hex(2)
    c0, t0 = cpu(), time.perf_counter()
    lab = Lab(f"cap-s{token}", isolated=True).open()
    follow = None
    if capture:
        follow = Follow(lab)
        follow()
        lab.after_build.append(follow)
    with lab.batch():
        bridge = lab.bridge("br0", "10.68.0.254/16")
        for k in range(n):
            ns = lab.namespace(f"cap-s{token}-{k}")
            lab.link(ns, bridge, addresses=(f"10.68.{k // 250}.{k % 250 + 1}/16", None))
    built = time.perf_counter() - t0
    used = cpu() - c0
    t1 = time.perf_counter()
    lab.close()
    if follow is not None:
        follow.close()
    return built, used, time.perf_counter() - t1


def plugin_cost(n: int, rounds: int) -> None:
    for capture in (False, True):
        results = [build(n, capture) for _ in range(rounds)]
        wall = statistics.median(r[0] for r in results)
        used = statistics.median(r[1] for r in results)
        close = statistics.median(r[2] for r in results)
        label = "with capture" if capture else "without"
        print(
            f"{n}-namespace lab, {label}: setup {wall:.2f} s (CPU {used:.2f} s), "
            f"teardown {close:.2f} s, median of {rounds}"
        )


def series() -> None:
    token = secrets.token_hex(2)
    with Lab(f"cap-t{token}", isolated=True) as lab:
        a = lab.namespace(f"cap-t{token}-a")
        b = lab.namespace(f"cap-t{token}-b")
        lab.link(a, b, addresses=("10.69.0.1/24", "10.69.0.2/24"), rate="20mbit")
        result = lab.throughput(a, "10.69.0.2", seconds=3, sample=0.1)
        assert isinstance(result, Sampled)
        print(f"sampled: {result}, {len(result.sockets)} samples")
        print("   t s   Mbit/s  cwnd  rtt ms  retrans  tbf drops")
        drops = {round(q.t, 3): q.dropped for q in result.qdiscs if q.kind == "tbf"}
        rates = dict(result.series())
        for s in result.sockets[::5]:
            rate = rates.get(s.t)
            print(
                f"{s.t:6.2f} {rate if rate is not None else float('nan'):8.1f} {s.cwnd:5} "
                f"{s.rtt_ms:7.2f} {s.retransmits:8} {drops.get(round(s.t, 3), 0):9}"
            )


if __name__ == "__main__":
    what = sys.argv[1:] or ["ready", "plugin", "series"]
    if "ready" in what:
        ready_times(40)
    if "plugin" in what:
        plugin_cost(50, 3)
    if "series" in what:
        series()
