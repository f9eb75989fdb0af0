#!/usr/bin/env python3
"""The CPU cost of progress reporting, without the kernel's noise (issue 24).

Builds the bench's bridge lab of N namespaces against the RecordingExecutor (every
process the real build starts is recorded instead: what is left is the Python side,
where all the reporting happens), with and without the status line of ``netns-kit
up`` (written to a buffer), interleaved, and prints the median CPU time of each.

    .venv/bin/python scripts/experiments/progress_cost.py --n 1000 --repeat 9
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time

from netns_kit import Lab, spec
from netns_kit.engine.progress import TerminalLine
from netns_kit.executors import RecordingExecutor


def topology(n: int) -> spec.Topology:
    names = [f"n{i}" for i in range(n)]
    return spec.Topology(
        name="cost",
        isolated=True,
        namespaces=tuple(names),
        bridges=(spec.BridgeSpec("br0", "10.77.0.1/16"),),
        links=tuple(
            spec.LinkSpec(ns, "br0", names=("eth0", f"v{i}"), addresses=(None, None))
            for i, ns in enumerate(names)
        ),
    )


def build(topo: spec.Topology, with_progress: bool) -> float:
    line = TerminalLine(io.StringIO()) if with_progress else None
    with tempfile.TemporaryDirectory() as state:
        lab = Lab.from_topology(topo, executor=RecordingExecutor(), state_dir=state, progress=line)
        start = time.process_time()
        lab.open()
        spent = time.process_time() - start
        lab.close()
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    topo = topology(args.n)
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeat):
        for flag in (False, True):
            times[flag].append(build(topo, flag))
    for flag, spent in times.items():
        label = "with progress" if flag else "without"
        print(
            f"{label:15} N={args.n}: median CPU {statistics.median(spent) * 1000:.1f} ms "
            f"(min {min(spent) * 1000:.1f}, max {max(spent) * 1000:.1f}, {args.repeat} runs)"
        )


if __name__ == "__main__":
    main()
