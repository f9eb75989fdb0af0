"""Teardown at N=400: does the order of `netns delete` lines matter, and does IPv6
traffic (DAD, MLD, router solicitations flooded by the bridge) slow it down?  Builds
the bench lab with the process-less pyroute2 method, then deletes its namespaces with
one root `ip -batch -`: in creation order, in reverse, split over two processes, or
(same order) after a build with IPv6 disabled in every namespace.

Run as root: .venv/bin/python scripts/experiments/teardown_order.py [--n 400] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench
from growth_cause import NoIPv6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run = "nkx" + os.urandom(3).hex()
    rows: dict[str, list[float]] = {}
    k = 0
    try:
        for _ in range(args.repeat):
            for order in ("creation order", "reverse order", "two processes", "ipv6 off"):
                k += 1
                cls = NoIPv6 if order == "ipv6 off" else bench.Pyroute2
                method = cls(f"{run}-{k}", args.n, "/nonexistent")
                method.prepare()
                method.setup()
                method.abort()  # close sockets; namespaces stay
                names = list(method.namespaces)
                if order == "reverse order":
                    names.reverse()
                t = time.perf_counter()
                if order == "two processes":
                    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
                    procs = [
                        subprocess.Popen(["ip", "-batch", "-"], stdin=subprocess.PIPE, text=True)
                        for _ in halves
                    ]
                    for proc, half in zip(procs, halves, strict=True):
                        assert proc.stdin is not None
                        proc.stdin.write("".join(f"netns delete {n}\n" for n in half))
                        proc.stdin.close()
                    for proc in procs:
                        proc.wait()
                    subprocess.run(["ip", "netns", "delete", method.host], check=True)
                else:
                    lines = [f"netns delete {n}\n" for n in [*names, method.host]]
                    subprocess.run(["ip", "-batch", "-"], input="".join(lines), text=True)
                left = bench.wait_free(method.lab)
                rows.setdefault(order, []).append(time.perf_counter() - t)
                assert not left, left
                bench.settle(args.n)
    finally:
        bench.sweep(run)
    for order, values in rows.items():
        print(f"{order:16} median {statistics.median(values) * 1000:6.1f} ms  {values}")


if __name__ == "__main__":
    main()
