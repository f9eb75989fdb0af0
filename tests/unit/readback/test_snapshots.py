"""The fast reader (netns_kit.readback.snapshot) against real ``ip -d -j -force -batch -`` output.

The samples (fixtures/rc*-5cfe.read.txt and .list-id.json) were recorded by
scripts/experiments/record_read_samples.py from labs built by hand: the sample lab
of fixtures/README.md (rch/rcr/rcb), and two pairs of fresh namespaces joined by a
veth each (rcp-rcq, rcs-rct), whose four ends all have the same interface indexes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import NotFoundError, RecordingExecutor
from netns_kit.errors import CommandError
from netns_kit.readback.reader import PeerInfo
from netns_kit.readback.snapshot import READ_LINES, read_command, snapshot, split_output
from netns_kit.result import Result

FIXTURES = Path(__file__).parent.parent / "fixtures"
H, R, B = "rch-5cfe", "rcr-5cfe", "rcb-5cfe"
P, Q, S, T = "rcp-5cfe", "rcq-5cfe", "rcs-5cfe", "rct-5cfe"
BATCH = ("-d", "-j", "-force", "-batch", "-")


def answer(ex: RecordingExecutor, *names: str) -> None:
    for name in names:
        text = (FIXTURES / f"{name}.read.txt").read_text()
        ex.answer(["ip", "-n", name, *BATCH], stdout=text)
        ids = (FIXTURES / f"{name}.list-id.json").read_text()
        ex.answer(["ip", "-n", name, "-j", "netns", "list-id"], stdout=ids)


def list_ids(ex: RecordingExecutor) -> list[str]:
    return [argv[2] for argv in ex.commands if argv[-2:] == ("netns", "list-id")]


def test_one_read_process_per_namespace() -> None:
    """A namespace of veths and bridges only (noqueue) costs one process."""
    command = read_command("red")
    assert command.argv == ("ip", "-n", "red", *BATCH)
    assert command.inside == ("ip", *BATCH)  # started from a thread inside red
    assert command.read and command.namespace == "red"
    assert command.stdin == (
        "link show\naddr show\n"
        "route show table all root 0.0.0.0/0\nroute show table all root ::/0\n"
    )
    assert read_command(None).argv == ("ip", *BATCH)


def test_the_sample_lab_in_one_process_each() -> None:
    ex = RecordingExecutor()
    answer(ex, H, R, B)
    snap = snapshot(ex, [H, R, B])
    reads = [argv for argv in ex.commands if argv[-1] == "-"]
    assert reads == [("ip", "-n", ns, *BATCH) for ns in (H, R, B)]
    # tc only where ip names a root qdisc other than noqueue: the down links' noop
    tc = [argv[2] for argv in ex.commands if argv[0] == "tc"]
    assert tc == [H, B]
    red = snap[R]
    assert [link.name for link in red.links] == ["lo", "veth-red", "red-blue"]
    assert red.link("red-blue").mtu == 1400
    assert "192.168.15.1/24" in red.addresses_of("veth-red")
    assert "fd00:15::1/64" in red.addresses_of("veth-red")
    routes = {(r.destination, r.via, r.family) for r in red.routes}
    assert ("default", "192.168.15.5", "inet") in routes
    assert ("10.20.0.0/16", "192.168.15.2", "inet") in routes
    assert ("fd00:99::/64", "fd00:15::2", "inet6") in routes
    assert not any(r.destination.startswith("127.") for r in red.routes)  # main table only
    host = snap[H]
    assert host.link("veth-red-br").master == "v-net-0"
    assert host.link("pair-a").peer == PeerInfo(
        "pair-b", H
    )  # ip names a peer in the same namespace


def test_peers_matched_from_what_was_read() -> None:
    ex = RecordingExecutor()
    answer(ex, H, R, B)
    snap = snapshot(ex, [H, R, B])
    assert snap[B].link("veth-blue").peer.name == "veth-blue-br"  # type: ignore[union-attr]
    assert snap[B].link("veth-blue").peer.namespace == H  # type: ignore[union-attr]
    assert snap[H].link("veth-blue-br").peer.namespace == B  # type: ignore[union-attr]
    assert (snap[R].link("red-blue").peer.name, snap[R].link("red-blue").peer.namespace) == (  # type: ignore[union-attr]
        "blue-red",
        B,
    )
    assert (snap[R].link("veth-red").peer.name, snap[R].link("veth-red").peer.namespace) == (  # type: ignore[union-attr]
        "veth-red-br",
        H,
    )
    # veth-red-br carries an alias its other end lacks: not matched by guessing, so
    # only the two namespaces of that link asked the kernel (netns list-id)
    assert sorted(list_ids(ex)) == sorted([H, R])


def test_ambiguous_twins_are_resolved_by_the_kernel() -> None:
    ex = RecordingExecutor()
    answer(ex, P, Q, S, T)
    snap = snapshot(ex, [P, Q, S, T])
    pairs = {
        ns: (snap[ns].links[1].peer.namespace, snap[ns].links[1].peer.name)  # type: ignore[union-attr]
        for ns in (P, Q, S, T)
    }
    assert pairs == {P: (Q, "q0"), Q: (P, "p0"), S: (T, "t0"), T: (S, "s0")}
    assert sorted(list_ids(ex)) == sorted([P, Q, S, T])


def test_a_peer_outside_the_snapshot_is_read_to_be_named() -> None:
    ex = RecordingExecutor()
    answer(ex, P, Q)
    ex.answer(
        ["ip", "-n", Q, "-d", "-j", "link", "show"],
        stdout=(FIXTURES / f"{Q}.read.txt").read_text().splitlines()[0],
    )
    snap = snapshot(ex, [P])
    assert snap[P].link("p0").peer == PeerInfo("q0", Q, index=2, netnsid=0)
    assert ("ip", "-n", Q, "-d", "-j", "link", "show") in ex.commands


def test_a_failed_line_reads_as_empty_and_the_rest_stay_aligned() -> None:
    command = read_command("x")
    lines = (FIXTURES / f"{R}.read.txt").read_text().splitlines()
    printed = "\n".join([lines[0], lines[1], lines[3]]) + "\n"  # line 3 printed nothing
    said = "Error: ipv4: FIB table does not exist.\nCommand failed -:3\n"
    parts = split_output(command, Result(command.argv, 1, printed, said))
    assert [key for key, _ in READ_LINES] == ["links", "addresses", "routes4", "routes6"]
    assert parts["routes4"] == []
    assert parts["routes6"] and parts["routes6"][0]["dst"].startswith("fd00")
    assert parts["links"][0]["ifname"] == "lo"


def test_a_namespace_that_cannot_be_read_raises() -> None:
    ex = RecordingExecutor()
    ex.answer(
        ["ip", "-n", "gone", *BATCH],
        returncode=1,
        stderr='Cannot open network namespace "gone": No such file or directory\n',
    )
    with pytest.raises(NotFoundError):
        snapshot(ex, ["gone"])
    with pytest.raises(CommandError, match="not JSON"):
        command = read_command("x")
        split_output(command, Result(command.argv, 0, "1: lo: <LOOPBACK>\n", ""))
