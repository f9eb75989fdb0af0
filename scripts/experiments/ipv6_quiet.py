"""Does silencing IPv6 on the lab's links make setup linear and teardown fast?

Every veth end that comes up makes an IPv6 link-local address: DAD, MLD reports and
three router solicitations, all multicast, which the bridge floods to every other
port, i.e. into every namespace: O(N) softirq work per namespace, O(N^2) in all, much
of it in the seconds after setup.  `ip link set dev X addrgenmode none up` (one batch
line, no extra process) makes no link-local address, hence none of that traffic.

Builds the bench's bridge lab with the recommended layout (root batches, one
`ip -n HOST -batch -`, per-namespace `ip -batch -` started from a setns()ed thread,
2 in flight), with and without `addrgenmode none`, pings, and tears down with one
root batch (all namespaces + host).

Run as root: .venv/bin/python scripts/experiments/ipv6_quiet.py [--sizes 200,400]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bench

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def per_namespace(batches: list[tuple[str, str]], width: int = 2) -> None:
    """Run `ip -batch -` with each text in its namespace, from a thread that setns()es."""
    failures: list[BaseException] = []

    def work() -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        running: list[subprocess.Popen[str]] = []
        try:
            for namespace, text in batches:
                fd = os.open(f"{bench.NETNS_DIR}/{namespace}", os.O_RDONLY)
                try:
                    _setns(fd)
                    proc = subprocess.Popen(["ip", "-batch", "-"], stdin=subprocess.PIPE, text=True)
                finally:
                    _setns(home)
                    os.close(fd)
                assert proc.stdin is not None
                proc.stdin.write(text)
                proc.stdin.close()
                running.append(proc)
                if len(running) >= width and running.pop(0).wait() != 0:
                    raise RuntimeError("a namespace batch failed")
            for proc in running:
                if proc.wait() != 0:
                    raise RuntimeError("a namespace batch failed")
        except BaseException as error:
            failures.append(error)
        finally:
            os.close(home)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def batch(lines: list[str], *prefix: str) -> None:
    done = subprocess.run(
        ["ip", *prefix, "-batch", "-"], input="".join(x + "\n" for x in lines), text=True
    )
    if done.returncode:
        raise RuntimeError(f"batch {prefix} failed")


def build(lab: str, n: int, quiet: bool) -> tuple[str, list[str]]:
    host = f"{lab}-host"
    names = [f"{lab}-{i}" for i in range(n)]
    mode = " addrgenmode none" if quiet else ""
    batch([f"netns add {x}" for x in [host, *names]])
    batch(
        [
            f"link add name eth0 netns {ns} type veth peer name {bench.host_end(i)} netns {host}"
            for i, ns in enumerate(names)
        ]
    )
    batch(
        [
            "link set dev lo up",
            f"link add name {bench.BRIDGE} type bridge",
            f"link set dev {bench.BRIDGE}{mode} up",
            f"addr add {bench.HOST_CIDR} dev {bench.BRIDGE}",
            *(f"link set dev {bench.host_end(i)} master {bench.BRIDGE}{mode} up" for i in range(n)),
        ],
        "-n",
        host,
    )
    per_namespace(
        [
            (
                ns,
                f"addr add {bench.address(i)} dev eth0\nlink set dev eth0{mode} up\n"
                "link set dev lo up\n",
            )
            for i, ns in enumerate(names)
        ]
    )
    return host, names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,400")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    run = "nkx" + os.urandom(3).hex()
    rows: dict[tuple[str, int], list[tuple[float, float]]] = {}
    k = 0
    try:
        for _ in range(args.repeat):
            for n in sizes:
                for quiet in (False, True):
                    k += 1
                    lab = f"{run}-{k}"
                    t = time.perf_counter()
                    host, names = build(lab, n, quiet)
                    setup = time.perf_counter() - t
                    assert bench.ping(names[-1], bench.address(0).split("/")[0]), "no reply"
                    t = time.perf_counter()
                    batch([f"netns delete {x}" for x in [*names, host]])
                    left = bench.wait_free(lab)
                    teardown = time.perf_counter() - t
                    assert not left, left
                    label = "addrgenmode none" if quiet else "ipv6 default"
                    rows.setdefault((label, n), []).append((setup, teardown))
                    bench.settle(n)
            print("repeat done", flush=True)
    finally:
        bench.sweep(run)
    print(f"{'variant':18}{'N':>5}{'setup s':>9}{'teardown s':>12}")
    for (label, n), values in sorted(rows.items()):
        s = statistics.median(v[0] for v in values)
        d = statistics.median(v[1] for v in values)
        print(f"{label:18}{n:>5}{s:9.3f}{d:12.3f}")


if __name__ == "__main__":
    main()
