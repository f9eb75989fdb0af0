"""Planning a check (targets, pairs, introductions, workers, rounds), the packets a
probe sends, and the fping fallback's argv and output, all without a kernel.

The lab is the fixtures' sample (fixtures/README.md): red and blue are ports of
bridge v-net-0 in the host namespace, and red-blue is a direct veth without
addresses.  red has 192.168.15.1/24 and fd00:15::1/64, blue 192.168.15.2/24.
"""

from __future__ import annotations

import ipaddress
import struct

import pytest

from netns_kit import RecordingExecutor, Target, ValidationError
from netns_kit.check import fping
from netns_kit.check import probe_plan as reach_plan
from netns_kit.errors import CommandError
from netns_kit.executors import probes
from netns_kit.executors.probes import Introduction, ProbeJob
from netns_kit.readback.reader import Snapshot
from netns_kit.readback.snapshot import snapshot
from netns_kit.result import Result

from ..readback.test_state import BLUE, HOST, RED, answer_lab


@pytest.fixture
def snap() -> Snapshot:
    ex = RecordingExecutor()
    answer_lab(ex)
    return snapshot(ex, [HOST, RED, BLUE])


def test_targets_are_global_addresses_of_the_lab_namespaces(snap: Snapshot) -> None:
    targets = reach_plan.targets_of(snap, [RED, BLUE])
    assert targets == [
        Target(RED, "192.168.15.1", "veth-red"),
        Target(RED, "fd00:15::1", "veth-red"),
        Target(BLUE, "192.168.15.2", "veth-blue"),
    ]  # no loopback, no link-local, nothing of the host side


def test_pairs_never_probe_a_namespace_itself(snap: Snapshot) -> None:
    targets = reach_plan.targets_of(snap, [RED, BLUE])
    pairs = reach_plan.pairs([RED, BLUE], targets)
    assert [(s, t.address) for s, t in pairs] == [
        (RED, "192.168.15.2"),
        (BLUE, "192.168.15.1"),
        (BLUE, "fd00:15::1"),
    ]
    only = reach_plan.pairs([BLUE], targets, chosen=["fd00:15::1"])
    assert [(s, t.address) for s, t in only] == [(BLUE, "fd00:15::1")]


def test_choose_checks_names_and_addresses() -> None:
    names = ["a", "b"]
    assert reach_plan.choose(None, "sources", names) == names
    assert reach_plan.choose("b", "sources", names) == ["b"]
    assert reach_plan.choose(["b", "a", "b"], "sources", names) == ["b", "a"]
    assert reach_plan.choose(["a", "10.0.0.1/24"], "targets", names, {"10.0.0.1"}) == [
        "a",
        "10.0.0.1",
    ]
    with pytest.raises(ValidationError, match="sources: 'c' is not a namespace of this lab"):
        reach_plan.choose(["a", "c"], "sources", names)
    with pytest.raises(ValidationError, match="is not a namespace or an address of this lab"):
        reach_plan.choose(["10.0.0.9"], "targets", names, {"10.0.0.1"})
    assert reach_plan.choose(["10.0.0.9"], "targets", names, any_address=True) == ["10.0.0.9"]
    with pytest.raises(ValidationError, match="names nothing"):
        reach_plan.choose([], "targets", names)


def test_segments_from_bridge_ports_and_direct_veths(snap: Snapshot) -> None:
    segments = reach_plan.segments(snap)
    bridge = ("bridge", HOST, "v-net-0")
    assert segments[(RED, "veth-red")] == segments[(BLUE, "veth-blue")] == bridge
    assert segments[(HOST, "v-net-0")] == bridge
    assert segments[(RED, "red-blue")] == segments[(BLUE, "blue-red")]
    assert segments[(RED, "red-blue")][0] == "veth"
    assert (RED, "lo") not in segments


def test_introductions_both_ways_for_pairs_on_one_segment(snap: Snapshot) -> None:
    targets = reach_plan.targets_of(snap, [RED, BLUE])
    pairs = reach_plan.pairs([RED, BLUE], targets)
    introduced = reach_plan.introductions(snap, pairs)
    red_mac, blue_mac = snap[RED].link("veth-red").mac, snap[BLUE].link("veth-blue").mac
    assert red_mac and blue_mac
    assert introduced[RED] == [
        Introduction("veth-red", red_mac, "192.168.15.1", blue_mac, "192.168.15.2")
    ]
    assert introduced[BLUE] == [
        Introduction("veth-blue", blue_mac, "192.168.15.2", red_mac, "192.168.15.1")
    ]  # blue has no IPv6 address on that segment: its IPv6 probe goes unintroduced


def test_jobs_one_per_namespace(snap: Snapshot) -> None:
    targets = reach_plan.targets_of(snap, [RED, BLUE])
    pairs = reach_plan.pairs([BLUE], targets)
    jobs = reach_plan.jobs(pairs, reach_plan.introductions(snap, pairs))
    assert [(job.namespace, job.addresses) for job in jobs] == [
        (BLUE, ("192.168.15.1", "fd00:15::1")),
        (RED, ()),  # not a source, but it introduces itself to blue
    ]
    assert len(jobs[1].introductions) == 1


def test_lanes_give_each_namespace_to_one_worker_and_balance_the_load() -> None:
    jobs = [ProbeJob(f"n{i}", [f"10.0.0.{k}" for k in range(i + 1)]) for i in range(9)]
    lanes = reach_plan.lanes(jobs, 2)
    assert len(lanes) == 2
    placed = [job.namespace for lane in lanes for job in lane]
    assert sorted(placed) == sorted(job.namespace for job in jobs)  # each exactly once
    loads = [sum(job.probes for job in lane) for lane in lanes]
    assert abs(loads[0] - loads[1]) <= 1  # 45 probes: 23 and 22
    for lane in lanes:  # a worker keeps the given order
        assert lane == sorted(lane, key=jobs.index)
    assert reach_plan.lanes(jobs[:1], 4) == [jobs[:1]]
    assert reach_plan.lanes([], 2) == []


def grid(n: int) -> list[tuple[str, Target]]:
    names = [f"n{i}" for i in range(n)]
    targets = [Target(name, f"10.0.{i // 250}.{i % 250 + 1}") for i, name in enumerate(names)]
    return reach_plan.pairs(names, targets)


def test_neighbour_entries_count_both_directions_per_version() -> None:
    assert reach_plan.neighbour_entries(grid(30)) == {4: 870, 6: 0}
    one_way = [("a", Target("b", "10.0.0.2")), ("a", Target("b", "fd00::2"))]
    assert reach_plan.neighbour_entries(one_way) == {4: 2, 6: 2}


@pytest.mark.parametrize(("n", "budget"), [(30, 256), (100, 256), (30, 10_000), (7, 16)])
def test_rounds_cover_every_pair_once_within_the_budget(n: int, budget: int) -> None:
    pairs = grid(n)
    rounds = reach_plan.rounds(pairs, budget)
    flat = [pair for batch in rounds for pair in batch]
    assert sorted(flat, key=repr) == sorted(pairs, key=repr)
    assert all(reach_plan.neighbour_entries_max(batch) <= budget for batch in rounds)
    if reach_plan.neighbour_entries_max(pairs) <= budget:
        assert rounds == [pairs]
    else:
        assert len(rounds) > 1


def test_rounds_are_blocks_not_rows_when_paced() -> None:
    rounds = reach_plan.rounds(grid(100), 256)
    assert len(rounds) < 100  # rows of one source each would take 100
    touched = [len(reach_plan.namespaces_of(batch)) for batch in rounds]
    assert max(touched) <= 30  # each round flushes few namespaces


# -- packets -----------------------------------------------------------------------------
def test_echo_request_v4_is_checksummed() -> None:
    packet = probes.echo_request(4, 0x1234, 7)
    assert packet[:2] == b"\x08\x00"
    assert struct.unpack("!HH", packet[4:8]) == (0x1234, 7)
    assert probes.checksum(packet) == 0


def test_echo_request_v6_leaves_the_checksum_to_the_kernel() -> None:
    assert probes.echo_request(6, 1, 2) == bytes([128, 0, 0, 0, 0, 1, 0, 2])


def test_parse_reply_skips_the_ip_header_and_anything_not_a_reply() -> None:
    reply = bytes([0, 0, 0, 0]) + struct.pack("!HH", 0xBEEF, 9)
    header = bytes([0x45]) + bytes(19)
    assert probes.parse_reply(4, header + reply) == (0xBEEF, 9)
    assert probes.parse_reply(4, header + probes.echo_request(4, 1, 1)) is None
    assert probes.parse_reply(6, bytes([129, 0, 0, 0]) + struct.pack("!HH", 5, 6)) == (5, 6)
    assert probes.parse_reply(6, bytes([128, 0, 0, 0, 0, 5, 0, 6])) is None
    assert probes.parse_reply(4, b"short") is None


def test_reply_filters_let_only_echo_replies_in() -> None:
    level, option, value = probes.reply_filter(4)
    assert (level, option) == (255, 1)
    (mask,) = struct.unpack("=I", value)
    assert mask & 1 == 0 and mask & (1 << 8)  # replies pass, requests are dropped
    level, option, value = probes.reply_filter(6)
    words = struct.unpack("=8I", value)
    assert (level, option) == (58, 1)
    assert not words[129 >> 5] & (1 << (129 & 31))
    assert words[128 >> 5] & (1 << (128 & 31))


def test_arp_request_is_unicast_to_the_peer() -> None:
    frame = Introduction("eth0", "02:00:00:00:00:01", "10.0.0.1", "02:00:00:00:00:02", "10.0.0.2")
    data = frame.frame()
    assert data[:6] == bytes.fromhex("020000000002")  # to the peer, not broadcast
    assert data[6:12] == bytes.fromhex("020000000001")
    assert data[12:14] == b"\x08\x06"
    op, sender, sender_ip, target_ip = struct.unpack("!6xH6s4s6x4s", data[14:42])
    assert op == 1 and sender == bytes.fromhex("020000000001")
    assert (sender_ip, target_ip) == (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))


def test_neighbour_solicitation_checksums_over_the_pseudo_header() -> None:
    me, peer = "fd00::1", "fd00::2"
    data = Introduction("eth0", "02:00:00:00:00:01", me, "02:00:00:00:00:02", peer).frame()
    assert data[12:14] == b"\x86\xdd"
    ipv6 = data[14:54]
    length, next_header, hops = struct.unpack("!HBB", ipv6[4:8])
    assert (next_header, hops) == (58, 255)
    message = data[54:]
    assert len(message) == length == 32 and message[0] == 135
    assert message[8:24] == ipaddress.IPv6Address(peer).packed
    assert message[24:32] == bytes([1, 1]) + bytes.fromhex("020000000001")
    pseudo = ipv6[8:40] + struct.pack("!I3xB", length, 58)
    assert probes.checksum(pseudo + message) == 0


def test_bad_mac_is_refused() -> None:
    with pytest.raises(ValueError, match="MAC"):
        Introduction("eth0", "02:00", "10.0.0.1", "02:00:00:00:00:02", "10.0.0.2")


# -- fping -------------------------------------------------------------------------------
JOB = ProbeJob("rc-a", ["10.0.0.2", "fd00::2", "10.0.0.3"])


def test_fping_command() -> None:
    command = fping.command(JOB, timeout=0.5, count=2)
    assert command.argv == (
        "ip", "netns", "exec", "rc-a",
        "fping", "-q", "-C", "2", "-i", "0", "-p", "10", "-r", "0", "-t", "500",
        "10.0.0.2", "fd00::2", "10.0.0.3",
    )  # fmt: skip
    assert command.read and command.inside == command.argv[4:]


def test_fping_output_parsed_best_of_count() -> None:
    said = "10.0.0.2 : 0.12 0.05\nfd00::2  : - 0.30\n10.0.0.3 : - -\nICMP Host Unreachable\n"
    answer = fping.parse(JOB, Result(("fping",), 1, "", said))
    assert answer.rtts == (0.05, 0.30, None)
    assert answer.errors == (None, None, None)


def test_fping_failing_itself_is_an_error() -> None:
    with pytest.raises(CommandError, match="fping"):
        fping.parse(JOB, Result(("fping",), 3, "", "fping: bad option"))
    with pytest.raises(CommandError, match="Cannot open"):
        fping.parse(JOB, Result(("fping",), 1, "", 'Cannot open network namespace "rc-a"'))


def test_a_port_in_the_root_namespace_names_its_segment() -> None:
    """A lab that is not isolated: from the lab's namespace, a peer in the root
    namespace stays unnamed, but the root's port knows the far end."""
    from netns_kit.readback.reader import LinkInfo, NamespaceState, PeerInfo

    def end() -> LinkInfo:
        return LinkInfo(
            "eth0", "veth", "UP", 1500, "02:00:00:00:00:0a", peer=PeerInfo(None, None, 9, 0)
        )

    root = NamespaceState(
        None,
        (
            LinkInfo("br0", "bridge", "UP", 1500),
            LinkInfo("pa", "veth", "UP", 1500, master="br0", peer=PeerInfo("eth0", "a", 2, 1)),
            LinkInfo("pb", "veth", "UP", 1500, master="br0", peer=PeerInfo("eth0", "b", 2, 2)),
        ),
    )
    snap = Snapshot((root, NamespaceState("a", (end(),)), NamespaceState("b", (end(),))))
    segments = reach_plan.segments(snap)
    assert segments[("a", "eth0")] == segments[("b", "eth0")] == ("bridge", None, "br0")
