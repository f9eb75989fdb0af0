"""Ready means ready: how long a bridge port whose veth peer has the same ifindex in
another namespace stays out of `forwarding`, and what the two fixes cost.

Lab: h1 -- s1(br0) == s2(br0) -- h2, each a namespace; the s1==s2 veth is made first
in each switch, so both its ends get ifindex 3 (lo=1, br0=2): the collision.  For each
variant the whole lab is made in root `ip -batch` runs the way a netns_kit build does
(ports attached before the links come up), then, from the moment the batch returns:

  ports   the time until `bridge -j link show` in s1 and s2 reports every port forwarding
          (polled as fast as processes start, ~2-4 ms a poll)
  ping    the round trip of the first `ping -c1 -W3` from h1 to h2, started at once

Variants: `same` (indexes collide), `index` (the s1 end of the s1==s2 veth gets an
explicit high `index`), and `wait` (same indexes; the build polls until forwarding,
then pings: the ping time is then the real one, and the poll time is the cost).

Then, with netns_kit (which gives such ends distinct indexes): a ring of three
switch namespaces with ``stp=True`` and a host on each, built in one batch; the build
returns once spanning tree has settled (netns_kit.lab.ready).  Reported: how long the
build took, and whether every host then pings every other at once.

Every name starts with na<hex>-; everything is deleted at the end, also on Ctrl-C.
Run as root:  PYTHONPATH=. python scripts/experiments/port_ready.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from typing import TypedDict

NETNS_DIR = "/run/netns"


def batch(lines: list[str], *prefix: str) -> None:
    done = subprocess.run(
        ["ip", *prefix, "-batch", "-"],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())


def states(ns: str) -> list[str]:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "bridge", "-j", "link", "show"],
        capture_output=True,
        text=True,
    ).stdout
    return [entry.get("state", "?") for entry in json.loads(out or "[]")]


def build(p: str, index: bool) -> None:
    names = [f"{p}h1", f"{p}h2", f"{p}s1", f"{p}s2"]
    h1, h2, s1, s2 = names
    lines = [f"netns add {n}" for n in names]
    for s in (s1, s2):
        lines.append(f"netns exec {s} sysctl -q -w net.bridge.bridge-nf-call-iptables=0")
    batch(lines)
    for s in (s1, s2):
        batch(["link add name br0 type bridge", "link set dev br0 up"], "-n", s)
    idx = " index 4000" if index else ""
    batch(
        [
            f"link add name t2 netns {s1}{idx} type veth peer name t1 netns {s2}",
            f"link add name eth0 netns {h1} type veth peer name h1 netns {s1}",
            f"link add name eth0 netns {h2} type veth peer name h2 netns {s2}",
        ]
    )
    for s, ports in ((s1, ("t2", "h1")), (s2, ("t1", "h2"))):
        batch([f"link set dev {x} master br0" for x in ports], "-n", s)
    for h, addr in ((h1, "10.9.0.1/24"), (h2, "10.9.0.2/24")):
        batch([f"addr add {addr} dev eth0", "link set dev eth0 up", "link set dev lo up"], "-n", h)
    for s, ports in ((s1, ("t2", "h1")), (s2, ("t1", "h2"))):
        batch([f"link set dev {x} addrgenmode none up" for x in ports], "-n", s)


def cleanup(p: str) -> None:
    names = [n for n in os.listdir(NETNS_DIR) if n.startswith(p)]
    if names:
        batch([f"netns delete {n}" for n in names])


_RTT = re.compile(r"time=([\d.]+) ms")


def first_ping(p: str) -> float | None:
    done = subprocess.run(
        ["ip", "netns", "exec", f"{p}h1", "ping", "-n", "-c1", "-W3", "10.9.0.2"],
        capture_output=True,
        text=True,
    )
    found = _RTT.search(done.stdout)
    return float(found.group(1)) if found else None


class Row(TypedDict):
    """One run: the first ping's time, when the ports forwarded, how often we looked."""

    ping_ms: float | None
    ports_s: float | None
    polls: int


def run(variant: str) -> Row:
    p = f"na{secrets.token_hex(2)}-"
    try:
        build(p, index=variant == "index")
        start = time.perf_counter()
        polls = 0
        ports_s: float | None = None
        if variant == "wait":
            while True:
                polls += 1
                if all(s == "forwarding" for ns in ("s1", "s2") for s in states(p + ns)):
                    ports_s = time.perf_counter() - start
                    break
        ping_ms = first_ping(p)
        if variant != "wait":
            while True:  # how long the ports stayed out of forwarding, for the record
                polls += 1
                if all(s == "forwarding" for ns in ("s1", "s2") for s in states(p + ns)):
                    ports_s = time.perf_counter() - start
                    break
        return {"ping_ms": ping_ms, "ports_s": ports_s, "polls": polls}
    finally:
        cleanup(p)


def stp_ring() -> tuple[float, bool]:
    """Build the STP ring with netns_kit: (seconds to a settled build, all pinged)."""
    from netns_kit import Lab

    p = f"na{secrets.token_hex(2)}"
    with tempfile.TemporaryDirectory() as state, Lab(p, isolated=True, state_dir=state) as lab:
        switches = [lab.namespace(f"{p}-s{i}") for i in range(3)]
        bridges = [lab.bridge("br0", namespace=s, stp=True) for s in switches]
        hosts = [lab.namespace(f"{p}-h{i}") for i in range(3)]
        started = time.perf_counter()
        with lab.batch():
            for i in range(3):
                lab.link(bridges[i], bridges[(i + 1) % 3])
                lab.link(hosts[i], bridges[i], addresses=(f"10.9.0.{i + 1}/24", None))
        took = time.perf_counter() - started
        pinged = all(
            hosts[i].ping(f"10.9.0.{j + 1}", timeout=1)
            for i in range(3)
            for j in range(3)
            if i != j
        )
    return took, pinged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    # the cost of one poll, in a namespace that exists
    p = f"na{secrets.token_hex(2)}-"
    try:
        batch([f"netns add {p}s"])
        batch(["link add name br0 type bridge"], "-n", f"{p}s")
        t = time.perf_counter()
        for _ in range(20):
            states(f"{p}s")
        poll_ms = (time.perf_counter() - t) / 20 * 1000
    finally:
        cleanup(p)
    print(f"one `ip netns exec NS bridge -j link show`: {poll_ms:.1f} ms")
    for variant in ("same", "index", "wait"):
        rows = [run(variant) for _ in range(args.repeat)]
        pings = [r["ping_ms"] for r in rows]
        ports = [r["ports_s"] for r in rows]
        print(
            f"{variant:6} first ping ms: {pings}; ports forwarding after s: "
            f"{[round(x, 3) if x is not None else None for x in ports]}; "
            f"median polls {statistics.median(r['polls'] for r in rows)}"
        )
    rings = [stp_ring() for _ in range(args.repeat)]
    print(
        "stp ring of 3, built and settled in s: "
        f"{[round(took, 2) for took, _ in rings]}; every host then pinged every other: "
        f"{[ok for _, ok in rings]}"
    )


if __name__ == "__main__":
    main()
