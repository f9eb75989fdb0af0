#!/usr/bin/env python3
"""Record the fast reader's samples (tests/unit/fixtures/*.read.txt): real output of
``ip -d -j -force -batch -`` with netns_kit.readback.snapshot' read lines, and of ``ip -j
netns list-id``, from labs built by hand and deleted afterwards.

  sample lab (as fixtures/README.md describes, names rch/rcr/rcb-TAG)
  twins: rcp-TAG <-> rcq-TAG and rcs-TAG <-> rct-TAG, each a veth made in fresh
         namespaces, so both pairs carry the same interface indexes

    sudo PYTHONPATH=. .venv/bin/python scripts/experiments/record_read_samples.py DIR
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from netns_kit.readback.snapshot import read_command

TAG = "5cfe"
H, R, B = f"rch-{TAG}", f"rcr-{TAG}", f"rcb-{TAG}"
P, Q, S, T = (f"rc{x}-{TAG}" for x in "pqst")

SAMPLE = f"""netns add {H}
netns add {R}
netns add {B}
netns add {P}
netns add {Q}
netns add {S}
netns add {T}
-n {H} link set lo up
-n {R} link set lo up
-n {B} link set lo up
-n {H} link add name v-net-0 type bridge
-n {H} addr add 192.168.15.5/24 dev v-net-0
-n {H} link set dev v-net-0 up
-n {R} link add name veth-red type veth peer name veth-red-br netns {H}
-n {B} link add name veth-blue type veth peer name veth-blue-br netns {H}
-n {H} link set dev veth-red-br master v-net-0 alias netns-kit:lab up
-n {H} link set dev veth-blue-br master v-net-0 up
-n {H} link add name pair-a type veth peer name pair-b
-n {R} link add name red-blue mtu 1400 type veth peer name blue-red netns {B}
-n {R} addr add 192.168.15.1/24 dev veth-red
-n {R} addr add fd00:15::1/64 dev veth-red nodad
-n {R} link set dev veth-red up
-n {R} link set dev red-blue up
-n {B} addr add 192.168.15.2/24 dev veth-blue
-n {B} link set dev veth-blue up
-n {R} route add default via 192.168.15.5
-n {R} route add 10.20.0.0/16 via 192.168.15.2
-n {R} -6 route add fd00:99::/64 via fd00:15::2
-n {P} link add name p0 type veth peer name q0 netns {Q}
-n {S} link add name s0 type veth peer name t0 netns {T}
"""


def ip(line: str) -> None:
    subprocess.run(["ip", *line.split()], check=True)


def main() -> int:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    names = [H, R, B, P, Q, S, T]
    try:
        for line in SAMPLE.strip().splitlines():
            ip(line)
        subprocess.run(["sleep", "1"], check=True)  # carrier and operstate settle
        for ns in names:
            command = read_command(ns)
            done = subprocess.run(command.argv, input=command.stdin, capture_output=True, text=True)
            (out / f"{ns}.read.txt").write_text(done.stdout)
            ids = subprocess.run(
                ["ip", "-n", ns, "-j", "netns", "list-id"], capture_output=True, text=True
            )
            (out / f"{ns}.list-id.json").write_text(ids.stdout)
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
