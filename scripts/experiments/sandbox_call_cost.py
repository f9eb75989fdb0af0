"""What one command costs inside a rootless sandbox, by way of entering it.

Starts a sandbox (netns_kit.Sandbox), makes N named namespaces in it, then times one
`ip link show dev lo` in namespace 0, RUNS times each way:

  outside             `ip link show dev lo` on the machine, for scale
  nsenter ip -n       nsenter into the sandbox, then `ip -n NS ...` (copies the mount table)
  nsenter --net=FILE  nsenter straight into NS's file (what SandboxExecutor does)
  ... without --pid   the same, not joining the sandbox's PID namespace (no extra fork)
  helper              one long-lived Python helper inside the sandbox, fed requests over
                      a pipe; it enters NS with setns(2) and starts the program itself

Run as anyone (a normal user, or root):
    PYTHONPATH=. python3 scripts/experiments/sandbox_call_cost.py [--namespaces 200] [--runs 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable

from netns_kit import Sandbox
from netns_kit.executors.sandbox import enter_argv, netns_path

# The helper: one JSON request a line ({"ns": NAME, "argv": [...]}), one JSON answer a
# line ({"rc": N, "out": TEXT}); it is single-threaded, so setns(2) works there.
HELPER = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
home = os.open("/proc/self/ns/net", os.O_RDONLY)
for line in sys.stdin:
    ask = json.loads(line)
    fd = os.open("/run/netns/" + ask["ns"], os.O_RDONLY)
    libc.setns(fd, 0x40000000)
    os.close(fd)
    done = subprocess.run(ask["argv"], capture_output=True, text=True)
    libc.setns(home, 0x40000000)
    print(json.dumps({"rc": done.returncode, "out": done.stdout}), flush=True)
"""


def median_ms(call: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespaces", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    root = os.geteuid() == 0
    sandbox = Sandbox()
    sandbox.start()
    try:
        holder = sandbox.pid
        enter = enter_argv(holder, root=root)
        lines = "".join(f"netns add n{i}\n" for i in range(args.namespaces))
        subprocess.run([*enter, "ip", "-batch", "-"], input=lines, text=True, check=True)
        show = ["ip", "link", "show", "dev", "lo"]
        by_file = list(enter_argv(holder, namespace="n0", root=root))
        no_pid = [word for word in by_file if word != "--pid"]

        def run(argv: list[str]) -> Callable[[], object]:
            return lambda: subprocess.run(argv, capture_output=True, check=True)

        helper = subprocess.Popen(
            [*enter, "python3", "-c", HELPER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert helper.stdin is not None and helper.stdout is not None

        def ask() -> object:
            assert helper.stdin is not None and helper.stdout is not None
            helper.stdin.write(json.dumps({"ns": "n0", "argv": show}) + "\n")
            helper.stdin.flush()
            answer = json.loads(helper.stdout.readline())
            assert answer["rc"] == 0
            return answer

        ways: dict[str, Callable[[], object]] = {
            "outside": run(show),
            "nsenter ip -n": run([*enter, "ip", "-n", "n0", *show[1:]]),
            "nsenter --net=FILE": run([*by_file, *show]),
            "nsenter --net=FILE, no --pid": run([*no_pid, *show]),
            "helper (setns inside)": ask,
        }
        print(f"{args.namespaces} namespaces in the sandbox, {args.runs} calls each, root={root}")
        for name, call in ways.items():
            print(f"  {name:30} median {median_ms(call, args.runs):.2f} ms")
        helper.stdin.close()
        helper.wait()
    finally:
        sandbox.stop()
    print(f"  (netns path used: {netns_path(holder, 'n0')})")


if __name__ == "__main__":
    main()
