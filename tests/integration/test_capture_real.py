"""lab.capture on the real kernel: exact packets, filters, start/stop cycles, recovery.

Names start with ``cap-`` and a random token; every lab is closed (or recovered) by
the test, and the tests check that no tcpdump of theirs is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, recover
from netns_kit.capture import pcap
from netns_kit.capture.capture import packets_of

pytestmark = pytest.mark.skipif(
    shutil.which("tcpdump") is None, reason="tcpdump is not installed (scripts/bootstrap.sh)"
)


def alive(pid: int) -> bool:
    """Running, and not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def tcpdumps_writing_under(directory: Path) -> list[int]:
    """PIDs of tcpdump processes whose command line names a file under ``directory``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            words = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            words
            and words[0].endswith(b"tcpdump")
            and any(str(directory).encode() in w for w in words)
        ):
            found.append(int(entry))
    return found


@pytest.fixture
def pair_lab(uid: str, tmp_path: Path) -> Iterator[Lab]:
    with Lab(f"cap-{uid}", isolated=True, state_dir=tmp_path / "state") as lab:
        red = lab.namespace(f"cap-{uid}-red")
        blue = lab.namespace(f"cap-{uid}-blue")
        lab.link(
            red, blue, addresses=("10.61.0.1/24", "10.61.0.2/24"), names=("veth-red", "veth-blue")
        )
        yield lab


def test_a_capture_sees_exactly_the_pings_sent(pair_lab: Lab, uid: str, tmp_path: Path) -> None:
    red = pair_lab.held.namespaces[f"cap-{uid}-red"]
    (pair,) = [r for r in pair_lab.resources if hasattr(r, "peer_end")]
    with pair_lab.capture(pair.end, file=tmp_path / "red.pcap") as cap:
        assert red.ping("10.61.0.2", count=5, interval=0.05)
    assert cap.path == tmp_path / "red.pcap"
    found = pcap.read(cap.path)
    assert found.complete
    icmp = [p for p in packets_of(cap.path) if p.protocol == "ICMP"]
    requests = [p for p in icmp if "echo request" in p.summary]
    replies = [p for p in icmp if "echo reply" in p.summary]
    assert len(requests) == 5 and len(replies) == 5 and len(icmp) == 10
    assert {(p.src, p.dst) for p in requests} == {("10.61.0.1", "10.61.0.2")}
    assert {(p.src, p.dst) for p in replies} == {("10.61.0.2", "10.61.0.1")}
    summary = cap.summary()
    assert summary.by_protocol["ICMP"][0] == 10
    assert summary.by_pair[("10.61.0.1", "10.61.0.2")][0] >= 5


def test_an_icmp_filter_leaves_arp_and_udp_out(pair_lab: Lab, uid: str) -> None:
    red = pair_lab.held.namespaces[f"cap-{uid}-red"]
    red.run(["ip", "neigh", "flush", "all"])  # the ping then starts with an ARP request
    everything = pair_lab.capture(f"cap-{uid}-red:veth-red")
    only_icmp = pair_lab.capture(f"cap-{uid}-red:veth-red", filter="icmp")
    assert red.ping("10.61.0.2", count=2, interval=0.05)
    send = (
        "import socket; "
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.61.0.2', 9))"
    )
    red.run([sys.executable, "-c", send])
    # the UDP datagram is in the unfiltered file before we stop (bounded wait, no sleep)
    deadline = time.monotonic() + 10
    while not any(p.protocol == "UDP" for p in everything.packets()):
        assert time.monotonic() < deadline, "the UDP datagram never reached the capture"
        time.sleep(0.01)
    everything.stop()
    only_icmp.stop()
    protocols = {p.protocol for p in everything.packets()}
    assert {"ARP", "UDP", "ICMP"} <= protocols
    kept = only_icmp.packets()
    assert {p.protocol for p in kept} == {"ICMP"}  # (and blue's "port unreachable")
    assert len([p for p in kept if "echo" in p.summary]) == 4


def test_fifty_starts_and_stops_leave_no_tcpdump_and_no_half_file(
    pair_lab: Lab, uid: str, tmp_path: Path
) -> None:
    red = pair_lab.held.namespaces[f"cap-{uid}-red"]
    pids = []
    for k in range(50):
        cap = pair_lab.capture(f"cap-{uid}-red:veth-red", file=tmp_path / f"c{k}.pcap")
        pids.append(cap.legs[0].process.machine_pid)
        if k % 10 == 0:
            red.ping("10.61.0.2", count=1)
        cap.stop()
        assert not alive(pids[-1])
    for k in range(50):
        found = pcap.read(tmp_path / f"c{k}.pcap")
        assert found.complete, f"c{k}.pcap ends in the middle of a record"
        assert found.header.linktype == pcap.ETHERNET
    assert pcap.read(tmp_path / "c0.pcap").packets >= 2
    assert not [pid for pid in pids if alive(pid)]
    assert tcpdumps_writing_under(tmp_path) == []
    assert not pair_lab.captures or all(not c.running for c in pair_lab.captures)


CHILD = """
import sys, time
from netns_kit import Lab
lab = Lab(sys.argv[1], isolated=True, state_dir=sys.argv[2])
lab.open()
lab.namespace(sys.argv[1] + "-a")
cap = lab.capture(sys.argv[1] + "-a", file=sys.argv[3])
print("PID", cap.legs[0].process.machine_pid, flush=True)
time.sleep(300)
"""


def test_a_killed_labs_capture_is_gone_after_recover(uid: str, tmp_path: Path) -> None:
    name = f"cap-{uid}-k"
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, name, str(state), str(tmp_path / "k.pcap")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("PID "), line
        pid = int(line.split()[1])
        assert alive(pid)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert alive(pid)  # a dead owner leaves its tcpdump running
        removed = recover(name, state_dir=state)
        assert f"process tcpdump {name}-a:any" in removed
        deadline = time.monotonic() + 10
        while alive(pid):
            assert time.monotonic() < deadline, "recover() left the capture running"
            time.sleep(0.01)
        assert pcap.read(tmp_path / "k.pcap").complete
        assert (
            f"{name}-a"
            not in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            ).stdout
        )
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in tcpdumps_writing_under(tmp_path):
            os.kill(pid, signal.SIGKILL)
        if (state / f"{name}.json").exists():
            recover(name, state_dir=state)
