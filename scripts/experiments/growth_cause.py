"""Why does every method's setup grow ~2.5-3.5x from 200 to 400 namespaces?

Suspect: IPv6.  Every eth0 that comes up sends multicast (DAD neighbour solicitation,
MLD reports, router solicitations), and the bridge floods each such packet to all its
other ports, i.e. into every other namespace: O(N) softirq work per namespace, O(N^2)
in all, some of it while the build is still running.  Build the bench lab with the
process-less pyroute2 method, with and without IPv6 in the lab's namespaces, and read
the machine's CPU time (/proc/stat) spent meanwhile (build + a 1 s tail).

Run as root: .venv/bin/python scripts/experiments/growth_cause.py [--sizes 200,400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench

HZ = os.sysconf("SC_CLK_TCK")


def cpu() -> dict[str, float]:
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq"]
    return {n: int(v) / HZ for n, v in zip(names, fields, strict=False)}


def softirq_net_rx() -> int:
    with open("/proc/softirqs") as f:
        for line in f:
            if line.strip().startswith("NET_RX"):
                return sum(int(x) for x in line.split()[1:])
    return 0


class NoIPv6(bench.Pyroute2):
    """The same build, but each namespace turns IPv6 off before its veth exists."""

    def _enter_new(self, name: str) -> object:
        netns = self.netns
        netns.pushns()
        try:
            netns.setns(name, flags=os.O_CREAT | os.O_EXCL, fork=False)
            self.made.append(name)
            for key in ("all", "default"):  # /proc/sys/net is the caller's netns
                with open(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "w") as f:
                    f.write("1")
            ipr = self.IPRoute(groups=0)
            self.sockets.append(ipr)
            return ipr
        finally:
            netns.popns()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,400")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    rows: dict[tuple[str, int], list[tuple[float, float, float, int]]] = {}
    run = "nkx" + os.urandom(3).hex()
    k = 0
    try:
        for _ in range(args.repeat):
            for n in sizes:
                for label, cls in (("ipv6 on", bench.Pyroute2), ("ipv6 off", NoIPv6)):
                    k += 1
                    lab = f"{run}-{k}"
                    method = cls(lab, n, "/nonexistent")
                    method.prepare()
                    c0, r0 = cpu(), softirq_net_rx()
                    t = time.perf_counter()
                    method.setup()
                    setup = time.perf_counter() - t
                    time.sleep(1.0)
                    c1, r1 = cpu(), softirq_net_rx()
                    assert bench.ping(method.namespaces[-1], "10.77.0.2")
                    method.teardown()
                    bench.sweep(lab)
                    busy = sum(c1[x] - c0[x] for x in ("user", "system", "softirq", "irq"))
                    soft = c1["softirq"] - c0["softirq"]
                    rows.setdefault((label, n), []).append((setup, busy, soft, r1 - r0))
                    bench.settle(n)
            print("repeat done", flush=True)
    finally:
        bench.sweep(run)
    print(f"{'variant':10}{'N':>5}{'setup s':>9}{'cpu s':>8}{'softirq s':>10}{'NET_RX':>9}")
    for (label, n), values in sorted(rows.items()):
        med = [statistics.median(v[i] for v in values) for i in range(4)]
        print(f"{label:10}{n:>5}{med[0]:9.3f}{med[1]:8.2f}{med[2]:10.2f}{med[3]:9.0f}")


if __name__ == "__main__":
    main()
