"""Why does per-namespace work grow faster than N?  Time single operations at N extra
namespaces (N = 0, 200, 400): mount count, `unshare -m`, `ip -n`, `nsenter --net`,
`ip netns exec`, `ip netns add`.

Run as root: .venv/bin/python scripts/experiments/mount_cost.py [--sizes 0,200,400] [--runs 60]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import nslab


def med_ms(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,200,400")
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    prefix = nslab.new_prefix()
    target = nslab.host_name(prefix)
    made = 0
    rows: dict[str, dict[int, float]] = {}
    try:
        nslab.run_batch([f"netns add {target}"])
        for n in sizes:
            if n > made:
                nslab.run_batch([f"netns add {nslab.ns_name(prefix, i)}" for i in range(made, n)])
                made = n
            path = f"{nslab.NETNS_DIR}/{target}"
            probes = {
                "mountinfo lines": None,
                "ip link show dev lo (root)": ["ip", "link", "show", "dev", "lo"],
                "unshare -m true": ["unshare", "-m", "true"],
                "unshare -m --propagation unchanged true": [
                    "unshare",
                    "-m",
                    "--propagation",
                    "unchanged",
                    "true",
                ],
                "ip -n NS link show dev lo": ["ip", "-n", target, "link", "show", "dev", "lo"],
                "nsenter --net=NS ip link show dev lo": [
                    "nsenter",
                    f"--net={path}",
                    "ip",
                    "link",
                    "show",
                    "dev",
                    "lo",
                ],
                "ip netns exec NS true": ["ip", "netns", "exec", target, "true"],
            }
            for key, argv in probes.items():
                value = float(nslab.mountinfo_lines()) if argv is None else med_ms(argv, args.runs)
                rows.setdefault(key, {})[n] = value
            # netns add + delete of one extra namespace, in one process each
            extra = f"{prefix}x"
            adds, dels = [], []
            for _ in range(max(10, args.runs // 3)):
                adds.append(nslab.run_batch([f"netns add {extra}"]))
                dels.append(nslab.run_batch([f"netns delete {extra}"]))
            rows.setdefault("ip netns add (one)", {})[n] = statistics.median(adds) * 1000
            rows.setdefault("ip netns delete (one)", {})[n] = statistics.median(dels) * 1000
            print(f"N={n} done", flush=True)
    finally:
        nslab.cleanup(prefix)
    print(f"\n{'probe (median ms)':42}" + "".join(f"{'N=' + str(n):>9}" for n in sizes))
    for key, per_n in rows.items():
        print(f"{key:42}" + "".join(f"{per_n[n]:9.2f}" for n in sizes))


if __name__ == "__main__":
    main()
