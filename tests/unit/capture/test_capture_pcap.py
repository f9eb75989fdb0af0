"""The classic pcap reader and the packet summaries, on checked-in captures.

``ping.pcap``: tcpdump on veth-red while red (10.9.0.1) pinged blue (10.9.0.2) twice
(ARP request and reply, two echo requests and replies).  ``any.pcap``: ``-i any``
(Linux cooked v2) in red, ``-c 2``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from netns_kit.capture import decode, pcap
from netns_kit.capture.capture import Summary, packets_of

HERE = Path(__file__).parent.parent / "fixtures" / "capture"


def test_header_and_counts_without_dpkt() -> None:
    found = pcap.read(HERE / "ping.pcap")
    assert found.header.linktype == pcap.ETHERNET
    assert found.header.snaplen == 262144
    assert found.complete and found.trailing == 0
    assert found.packets == 6
    assert pcap.count(HERE / "ping.pcap") == (6, 2 * 42 + 4 * 98)


def test_classify_names_addresses_and_protocols() -> None:
    found = pcap.read(HERE / "ping.pcap")
    kinds = [pcap.classify(found.header.linktype, r.data) for r in found.records]
    assert [k.protocol for k in kinds] == ["ARP", "ARP", "ICMP", "ICMP", "ICMP", "ICMP"]
    icmp = [k for k in kinds if k.protocol == "ICMP"]
    assert [(k.src, k.dst, k.kind) for k in icmp] == [
        ("10.9.0.1", "10.9.0.2", 8),
        ("10.9.0.2", "10.9.0.1", 0),
    ] * 2


def test_linux_cooked_v2_from_any() -> None:
    found = pcap.read(HERE / "any.pcap")
    assert found.header.linktype == pcap.LINUX_SLL2
    assert found.packets == 2
    first = pcap.classify(found.header.linktype, found.records[0].data)
    assert first.protocol in ("ARP", "ICMP")
    assert first.src == "10.9.0.1"


def test_summaries_through_dpkt() -> None:
    assert decode.available()
    lines = [p.summary for p in packets_of(HERE / "ping.pcap")]
    assert lines[0] == "ARP, who-has 10.9.0.2 tell 10.9.0.1"
    assert lines[2].startswith("10.9.0.1 > 10.9.0.2: ICMP echo request, id ")
    assert lines[3].startswith("10.9.0.2 > 10.9.0.1: ICMP echo reply, id ")


def test_summaries_without_dpkt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode, "_dpkt", lambda: None)
    lines = [p.summary for p in packets_of(HERE / "ping.pcap")]
    assert lines[2] == "10.9.0.1 > 10.9.0.2: ICMP"


def test_summary_counts_by_protocol_and_pair() -> None:
    summary = Summary.of(packets_of(HERE / "ping.pcap"))
    assert summary.packets == 6
    assert summary.by_protocol == {"ICMP": (4, 392), "ARP": (2, 84)}
    assert summary.by_pair[("10.9.0.1", "10.9.0.2")] == (3, 42 + 196)
    assert "6 packets" in str(summary)
    assert "<table>" in summary._repr_html_()


def test_a_record_cut_short_is_left_out(tmp_path: Path) -> None:
    whole = (HERE / "ping.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-10])
    found = pcap.read(cut)
    assert found.packets == 5
    assert not found.complete
    assert found.trailing == 98 + 16 - 10


def test_big_endian_and_nanoseconds() -> None:
    head = b"\xa1\xb2\x3c\x4d" + struct.pack(">HHiIII", 2, 4, 0, 0, 65535, 1)
    body = bytes(14)
    record = struct.pack(">IIII", 10, 500_000_000, len(body), 60) + body
    found = pcap.parse(head + record)
    assert found.header.nanoseconds and found.header.order == ">"
    assert found.records[0].time == pytest.approx(10.5)
    assert found.records[0].length == 60


@pytest.mark.parametrize(
    ("data", "said"),
    [(b"", "too short"), (b"\n\r\r\n" + bytes(20), "pcapng"), (bytes(24), "magic 00000000")],
)
def test_not_pcap(data: bytes, said: str) -> None:
    with pytest.raises(pcap.PcapError, match=said):
        pcap.parse(data)
