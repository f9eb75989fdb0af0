"""Experiment 1: cost of one `ip -V` call from Python, by way of starting it.

Run: .venv/bin/python scripts/experiments/call_cost.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

import sh


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    ip = sh.Command("ip")
    for _ in range(20):  # warm caches
        subprocess.run(["ip", "-V"], capture_output=True, check=True)
        ip("-V", _tty_out=False, _return_cmd=True)

    def timed(fn: object) -> list[float]:
        out = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            out.append(time.perf_counter() - t)
        return out

    sub = timed(lambda: subprocess.run(["ip", "-V"], capture_output=True, check=True))
    sub_nocap = timed(lambda: subprocess.run(["ip", "-V"], stdout=subprocess.DEVNULL, check=True))
    shc = timed(lambda: ip("-V", _tty_out=False, _return_cmd=True))
    print(f"subprocess.run capture   median {median_ms(sub):.2f} ms  (n={runs})")
    print(f"subprocess.run devnull   median {median_ms(sub_nocap):.2f} ms")
    print(f"sh _return_cmd           median {median_ms(shc):.2f} ms")

    for width in (4, 8, 16):
        per_call = []
        for _ in range(max(20, runs // width)):
            t = time.perf_counter()
            procs = [ip("-V", _tty_out=False, _bg=True) for _ in range(width)]
            for p in procs:
                p.wait()
            per_call.append((time.perf_counter() - t) / width)
        print(f"sh _bg x{width:<2} per call        median {median_ms(per_call):.2f} ms")
        per_call = []
        for _ in range(max(20, runs // width)):
            t = time.perf_counter()
            popens = [
                subprocess.Popen(["ip", "-V"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(width)
            ]
            for popen in popens:
                popen.communicate()
            per_call.append((time.perf_counter() - t) / width)
        print(f"Popen x{width:<2} per call         median {median_ms(per_call):.2f} ms")


if __name__ == "__main__":
    main()
