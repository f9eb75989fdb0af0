#!/usr/bin/env python3
"""The README's shaping table: configured rate against what iperf3 measures.

One isolated lab, two namespaces on one veth pair; the pair is shaped at each rate in
turn (``pair.shape(rate=...)``: tbf, changed in place) and iperf3 measures TCP from
the first namespace to the second for ``--seconds`` (the first second left out), the
median of ``--repeat`` runs.  A last row measures the link unshaped.  Prints a
Markdown table; ``--json`` also writes the runs.

All traffic stays between the lab's two namespaces.  Needs root and iperf3.

    sudo .venv/bin/python scripts/shaping_table.py
    sudo .venv/bin/python scripts/shaping_table.py --rates 1mbit,10mbit --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import sys
from collections.abc import Sequence
from typing import Any

from netns_kit import Lab, VethPair, units

RATES = ("1mbit", "5mbit", "10mbit", "20mbit", "50mbit", "100mbit", "500mbit", "1gbit")


def measure(rates: Sequence[str], seconds: int, repeat: int, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with Lab(name, isolated=True) as lab:
        a = lab.namespace(f"{name}-a")
        b = lab.namespace(f"{name}-b")
        pair = lab.link(a, b, addresses=("10.66.0.1/24", "10.66.0.2/24"))
        assert isinstance(pair, VethPair)  # one machine: a veth pair
        for rate in [*rates, None]:
            if rate is None:
                pair.unshape()
            else:
                pair.shape(rate=rate)
            runs = [lab.throughput(a, "10.66.0.2", seconds=seconds) for _ in range(repeat)]
            measured = statistics.median(r.mbit_per_s for r in runs)
            configured = None if rate is None else units.rate(rate) / 1e6
            rows.append(
                {
                    "rate": rate or "unshaped",
                    "configured_mbit_per_s": configured,
                    "measured_mbit_per_s": round(measured, 2),
                    "ratio": None if configured is None else round(measured / configured, 3),
                    "retransmits": statistics.median(r.retransmits or 0 for r in runs),
                    "runs": [r.mbit_per_s for r in runs],
                }
            )
            print(f"{rows[-1]['rate']:>9}: {measured:.2f} Mbit/s", file=sys.stderr)
    return rows


def markdown(rows: list[dict[str, Any]], seconds: int, repeat: int) -> str:
    lines = [
        "| configured rate | iperf3 TCP, Mbit/s | measured / configured | retransmits |",
        "|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['rate']} | {row['measured_mbit_per_s']:.1f} | {ratio} "
            f"| {row['retransmits']:g} |"
        )
    lines.append(
        f"\n(median of {repeat} runs of {seconds} s each, `-O 1`; "
        f"measured with scripts/shaping_table.py)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default=",".join(RATES), help="comma-separated tc rates")
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--name", default=f"shp-{secrets.token_hex(2)}", help="the lab's name")
    parser.add_argument("--json", metavar="PATH", help="also write the runs as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        print("shaping_table.py builds a lab and runs iperf3: run it as root", file=sys.stderr)
        return 2
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    rows = measure(rates, args.seconds, args.repeat, args.name)
    print(markdown(rows, args.seconds, args.repeat))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(rows, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
