"""Experiments 2-4: per-namespace batch layouts, veth creation in place, teardown.

For each N and repeat, and for each layout (interleaved), a fresh set of N namespaces
plus a host namespace is made (timed: `netns add` root batch, veth root batch with the
peer made in place), the per-namespace batch (addr add, eth0 up, lo up) is run with the
layout under test (timed), checked, and torn down (timed, two variants alternating).

Run as root: .venv/bin/python scripts/experiments/batch_layouts.py [--sizes 200,400]
[--repeat 3] [--layouts a,b]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable

import nslab

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for name, p in procs:
        p.wait()
        assert p.stderr is not None
        err = p.stderr.read()
        p.stderr.close()
        if p.returncode != 0:
            raise RuntimeError(f"{name}: rc {p.returncode}: {err.decode()[:300]}")


def _pool(argvs: list[tuple[list[str], bytes, Callable[[], None] | None]], width: int) -> None:
    """Run processes with at most ``width`` in flight; stdin is written at once (small)."""
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    for argv, data, pre in argvs:
        if len(running) >= width:
            _check([running.pop(0)])
        p = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=pre,
        )
        assert p.stdin is not None
        p.stdin.write(data)
        p.stdin.close()
        running.append((argv[2] if len(argv) > 2 else argv[0], p))
    _check(running)


def _stdin(i: int) -> bytes:
    return "".join(x + "\n" for x in nslab.per_ns_lines(i)).encode()


def layout_ip_n(prefix: str, n: int, width: int = 1) -> None:
    _pool(
        [
            (["ip", "-n", nslab.ns_name(prefix, i), "-batch", "-"], _stdin(i), None)
            for i in range(n)
        ],
        width,
    )


def layout_nsenter(prefix: str, n: int, width: int = 1) -> None:
    _pool(
        [
            (
                [
                    "nsenter",
                    f"--net={nslab.NETNS_DIR}/{nslab.ns_name(prefix, i)}",
                    "ip",
                    "-batch",
                    "-",
                ],
                _stdin(i),
                None,
            )
            for i in range(n)
        ],
        width,
    )


def _setns_to(path: str) -> Callable[[], None]:
    def enter() -> None:
        fd = os.open(path, os.O_RDONLY)
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)

    return enter


def layout_setns(prefix: str, n: int, width: int = 1) -> None:
    _pool(
        [
            (
                ["ip", "-batch", "-"],
                _stdin(i),
                _setns_to(f"{nslab.NETNS_DIR}/{nslab.ns_name(prefix, i)}"),
            )
            for i in range(n)
        ],
        width,
    )


def layout_thread_setns(prefix: str, n: int, width: int = 1) -> None:
    """A helper thread enters each namespace (setns is per thread for CLONE_NEWNET) and
    starts a plain `ip -batch -` there with subprocess' vfork path: the child inherits
    the thread's network namespace, with no mount namespace copy and no extra exec."""
    errors: list[BaseException] = []

    def work() -> None:
        root = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        running: list[tuple[str, subprocess.Popen[bytes]]] = []
        try:
            for i in range(n):
                name = nslab.ns_name(prefix, i)
                fd = os.open(f"{nslab.NETNS_DIR}/{name}", os.O_RDONLY)
                try:
                    if _libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns")
                    p = subprocess.Popen(
                        ["ip", "-batch", "-"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                finally:
                    os.close(fd)
                    if _libc.setns(root, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns back")
                assert p.stdin is not None
                p.stdin.write(_stdin(i))
                p.stdin.close()
                running.append((name, p))
                if len(running) >= width:
                    _check([running.pop(0)])
            _check(running)
        except BaseException as error:
            errors.append(error)
        finally:
            os.close(root)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def layout_root_exec(prefix: str, n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="nkx-") as tmp:
        lines = []
        for i in range(n):
            path = os.path.join(tmp, f"{i}.batch")
            with open(path, "w") as f:
                f.write("".join(x + "\n" for x in nslab.per_ns_lines(i)))
            lines.append(f"netns exec {nslab.ns_name(prefix, i)} ip -batch {path}")
        nslab.run_batch(lines)


LAYOUTS: dict[str, Callable[[str, int], None]] = {
    "ip-n": layout_ip_n,
    "nsenter": layout_nsenter,
    "root-netns-exec": layout_root_exec,
    "setns-preexec": layout_setns,
    "ip-n-par2": lambda p, n: layout_ip_n(p, n, 2),
    "nsenter-par2": lambda p, n: layout_nsenter(p, n, 2),
    "nsenter-par4": lambda p, n: layout_nsenter(p, n, 4),
    "setns-par2": lambda p, n: layout_setns(p, n, 2),
    "thread-setns": layout_thread_setns,
    "thread-setns-par2": lambda p, n: layout_thread_setns(p, n, 2),
    "thread-setns-par4": lambda p, n: layout_thread_setns(p, n, 4),
}


def verify(prefix: str, n: int) -> None:
    for i in (0, n - 1):
        out = subprocess.run(
            ["ip", "-n", nslab.ns_name(prefix, i), "-j", "addr", "show"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        links = {x["ifname"]: x for x in json.loads(out)}
        want = nslab.address(i).split("/")[0]
        eth0 = links["eth0"]
        assert "UP" in eth0["flags"] and "UP" in links["lo"]["flags"], links
        assert any(a["local"] == want for a in eth0["addr_info"]), eth0


def teardown(prefix: str, n: int, with_host: bool) -> tuple[float, float]:
    """Returns (batch seconds, seconds until host-side peers are gone / host gone)."""
    t = time.perf_counter()
    lines = [f"netns delete {nslab.ns_name(prefix, i)}" for i in range(n)]
    if with_host:
        lines.append(f"netns delete {nslab.host_name(prefix)}")
    nslab.run_batch(lines)
    batch = time.perf_counter() - t
    if not with_host:
        deadline = t + 30
        while nslab.host_links(prefix) and time.perf_counter() < deadline:
            time.sleep(0.005)
        if nslab.host_links(prefix):
            raise RuntimeError("peers still present after 30 s")
    done = time.perf_counter() - t
    nslab.cleanup(prefix)
    return batch, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,400")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--json")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    layouts = args.layouts.split(",")
    data: dict[str, dict[int, list[float]]] = {}

    def record(key: str, n: int, value: float) -> None:
        data.setdefault(key, {}).setdefault(n, []).append(value)

    prefix = nslab.new_prefix()
    try:
        for n in sizes:
            for rep in range(args.repeat):
                for k, name in enumerate(layouts):
                    prefix = nslab.new_prefix()
                    record("mountinfo lines (with N ns)", n, 0)  # placeholder, set below
                    record("netns add batch", n, nslab.create_namespaces(prefix, n))
                    data["mountinfo lines (with N ns)"][n][-1] = nslab.mountinfo_lines()
                    record("veth in place batch", n, nslab.create_veths(prefix, n))
                    t = time.perf_counter()
                    LAYOUTS[name](prefix, n)
                    record(f"layout {name}", n, time.perf_counter() - t)
                    verify(prefix, n)
                    with_host = (rep + k) % 2 == 1
                    batch, done = teardown(prefix, n, with_host)
                    tag = "delete ns+host" if with_host else "delete ns only"
                    record(f"{tag}: batch", n, batch)
                    if not with_host:
                        record(f"{tag}: until host peers gone", n, done)
                    time.sleep(0.2 + n * 0.001)  # let the kernel finish freeing namespaces
                print(f"N={n} repeat {rep + 1} done", flush=True)
    finally:
        nslab.cleanup(prefix)

    print(f"\n{'measure':42} " + " ".join(f"{'N=' + str(n):>10}" for n in sizes) + "  growth")
    summary = {}
    for key, per_n in data.items():
        meds = {n: statistics.median(v) for n, v in per_n.items()}
        summary[key] = meds
        cells = []
        for n in sizes:
            m = meds.get(n)
            if m is None:
                cells.append(f"{'-':>10}")
            elif key.startswith("mountinfo"):
                cells.append(f"{m:>10.0f}")
            else:
                cells.append(f"{m * 1000:>8.1f}ms")
        growth = ""
        if len(sizes) >= 2 and sizes[-2] in meds and sizes[-1] in meds and meds[sizes[-2]]:
            growth = f"  {meds[sizes[-1]] / meds[sizes[-2]]:.2f}x"
        print(f"{key:42} " + " ".join(cells) + growth)
        if key.startswith("layout"):
            per = " ".join(f"{meds[n] / n * 1000:6.2f}" for n in sizes if n in meds)
            print(f"{'   per namespace (ms)':42} {per}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
