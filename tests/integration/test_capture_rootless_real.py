"""Rootless labs capture through a packet socket inside their sandbox (tcpdump cannot
write its file there): as root with rootless=True, and as the user nobody."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab
from netns_kit.capture import pcap
from netns_kit.capture.capture import packets_of
from netns_kit.objects.link import VethPair

from .nobody import Nobody


def test_a_rootless_lab_captures_a_link_end(uid: str, tmp_path: Path) -> None:
    with Lab(f"cap-{uid}", rootless=True, state_dir=tmp_path / "state") as lab:
        red = lab.namespace("red")
        blue = lab.namespace("blue")
        pair = lab.link(red, blue, addresses=("10.73.0.1/24", "10.73.0.2/24"))
        assert isinstance(pair, VethPair)
        red.run(["ip", "neigh", "flush", "all"])  # the ping starts with ARP
        arp_only = lab.capture(pair.end, filter="arp", file=tmp_path / "arp.pcap")
        with lab.capture(pair.end, file=tmp_path / "red.pcap") as capture:
            assert red.ping("10.73.0.2", count=4, interval=0.05)
        arp_only.stop()
        assert "listening on" in capture.legs[0].said
        assert {p.protocol for p in arp_only.packets()} == {"ARP"}
    found = pcap.read(tmp_path / "red.pcap")
    assert found.complete and found.header.linktype == pcap.ETHERNET
    echoes = [p for p in packets_of(tmp_path / "red.pcap") if p.protocol == "ICMP"]
    assert len(echoes) == 8
    assert {(p.src, p.dst) for p in echoes} == {
        ("10.73.0.1", "10.73.0.2"),
        ("10.73.0.2", "10.73.0.1"),
    }


@pytest.fixture(scope="module")
def nobody() -> Iterator[Nobody]:
    made = Nobody.make([])
    yield made
    made.remove()


AS_NOBODY = """
import os, sys
from netns_kit import Lab
with Lab(sys.argv[1], rootless=True) as lab:
    red = lab.namespace("red")
    blue = lab.namespace("blue")
    pair = lab.link(red, blue, addresses=("10.74.0.1/24", "10.74.0.2/24"))
    capture = lab.capture(pair.peer_end)
    red.ping("10.74.0.2", count=3, interval=0.05)
    capture.stop()
    print("uid", os.geteuid(), "owner", capture.path.stat().st_uid)
    print(capture.summary())
    path = capture.path
print("gone", not path.exists())
"""


def test_nobody_captures_in_a_rootless_lab(nobody: Nobody, uid: str) -> None:
    done = nobody.run("-c", AS_NOBODY, f"cap-{uid}-n")
    assert done.returncode == 0, done.stderr
    assert "uid 65534 owner 65534" in done.stdout
    assert "ICMP: 6 packets" in done.stdout
    assert "gone True" in done.stdout
