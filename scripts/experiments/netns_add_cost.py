"""Is `netns add` in a root batch super-linear, or is it slowed by the kernel still
freeing the previous run's namespaces?  Alternate N=200/400 with and without a settle
pause after the previous teardown.

Run as root: .venv/bin/python scripts/experiments/netns_add_cost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import nslab


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    rows: dict[tuple[str, int], list[float]] = {}
    prefix = nslab.new_prefix()
    try:
        for _ in range(args.repeat):
            for settle in (0.0, args.settle):
                for n in (200, 400):
                    prefix = nslab.new_prefix()
                    time.sleep(settle)
                    t_add = nslab.create_namespaces(prefix, n, host=False)
                    t_veth = nslab.create_veths_pairwise(prefix, n)
                    rows.setdefault((f"netns add batch, settle {settle:g}s", n), []).append(t_add)
                    rows.setdefault((f"veth (ns<->ns) batch, settle {settle:g}s", n), []).append(
                        t_veth
                    )
                    nslab.cleanup(prefix)
    finally:
        nslab.cleanup(prefix)
    keys = sorted({k for k, _ in rows})
    print(f"{'measure (median)':40}{'N=200':>10}{'N=400':>10}  growth")
    for key in keys:
        a = statistics.median(rows[(key, 200)])
        b = statistics.median(rows[(key, 400)])
        print(f"{key:40}{a * 1000:8.1f}ms{b * 1000:8.1f}ms  {b / a:.2f}x")


if __name__ == "__main__":
    main()
