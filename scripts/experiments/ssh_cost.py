"""What a call over ssh costs: one fake host (netns_kit.testing.fakemachines), the SSHExecutor.

Opens the master connection, then times calls with and without connection reuse, a
500-line ``ip -batch`` through the master, and 20 calls 4 at a time.  Root, and
OpenSSH's client and server, are needed; nothing outside the fake host's namespaces
is touched.

Run: PYTHONPATH=. .venv/bin/python scripts/experiments/ssh_cost.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netns_kit import FakeMachines, Runner
from netns_kit.command import Command, ip


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with FakeMachines(1, name="sshcost") as hosts:
        ex = hosts[0].executor()
        start = time.perf_counter()
        ex.connect()
        print(f"open the master connection: {time.perf_counter() - start:.3f} s")

        # no reuse: a control socket that does not exist makes ssh connect directly
        direct = list(ex.argv(Command(("true",)), Path("/nonexistent/cm")))
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(direct, capture_output=True, check=True)
            samples.append(time.perf_counter() - start)
        print(f"one call without reuse: {statistics.median(samples) * 1000:.0f} ms")

        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            ex.execute(Command(("true",)))
            samples.append(time.perf_counter() - start)
        print(f"one call through the master: {statistics.median(samples) * 1000:.0f} ms")

        lines = [ip("link", "add", "name", f"d{i}", "type", "bridge") for i in range(500)]
        start = time.perf_counter()
        Runner(ex).run_all(lines).check()
        print(f"a 500-line ip -batch: {time.perf_counter() - start:.3f} s")

        start = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: ex.execute(Command(("true",))), range(20)))
        print(f"20 calls, 4 at a time: {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
