"""The planner and the batch writer: which steps share a process, in what order, and
how a failed batch line maps back to its command."""

from __future__ import annotations

import pytest

from netns_kit import Phase, Step
from netns_kit.command import Command, in_namespace, ip, tc
from netns_kit.engine.plan import Run, Wave, in_order, schedule
from netns_kit.executors.batch import Batch, failures, fits, split
from netns_kit.result import Result

ADD_A = ip("netns", "add", "a")
ADD_B = ip("netns", "add", "b")
LO_A = ip("link", "set", "dev", "lo", "up", namespace="a")
BR_A = ip("link", "add", "name", "br0", "type", "bridge", namespace="a")
SYSCTL_A = in_namespace(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"), "a", mounts=False)
USER_A = in_namespace(("ping", "-c1", "10.0.0.1"), "a")


# -- the batch writer -----------------------------------------------------------------
def test_a_batch_runs_as_one_process_with_its_lines_on_stdin() -> None:
    batch = Batch("ip", "a", (LO_A, BR_A, SYSCTL_A))
    process = batch.process()
    assert process.argv == ("ip", "-n", "a", "-batch", "-")
    assert process.stdin == (
        "link set dev lo up\n"
        "link add name br0 type bridge\n"
        "netns exec a sysctl -q -w net.ipv4.ip_forward=1\n"
    )
    assert process.inside == ("ip", "-batch", "-")  # from a thread already in "a"
    forced = Batch("tc", None, (tc("qdisc", "show"),), force=True).process()
    assert forced.argv == ("tc", "-force", "-batch", "-")


@pytest.mark.parametrize(
    "command",
    [
        ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "x"),  # global option
        ip("-j", "link", "show", read=True),  # a read: its output must stay apart
        ip("link", "set", "dev", "x", "alias", "two words"),  # a space splits a batch line
        ip("link", "set", "dev", "x", "alias", "a#b"),  # '#' starts a comment
        USER_A,  # needs what ip netns exec mounts
        Command(("ip", "-batch", "-"), stdin="netns add a\n"),
        Command(("sysctl", "-w", "x=1")),
        Command(ADD_A.argv, family="ip", line=ADD_A.line, unless=LO_A),  # guarded
    ],
)
def test_what_may_not_go_on_a_batch_line(command: Command) -> None:
    assert not fits(command)


def test_what_may() -> None:
    assert all(fits(c) for c in (ADD_A, LO_A, BR_A, SYSCTL_A, tc("qdisc", "del", "dev", "x")))


def test_failures_reads_every_failed_line_and_its_message() -> None:
    stderr = (
        'Cannot find device "nosuch"\nCommand failed -:2\n'
        "RTNETLINK answers: File exists\nCommand failed -:4\n"
    )
    assert failures(stderr) == [
        (1, 'Cannot find device "nosuch"'),
        (3, "RTNETLINK answers: File exists"),
    ]


def test_split_stops_at_the_failed_line_unless_forced() -> None:
    given = [ADD_A, ADD_B, ip("netns", "add", "c")]
    batch = Result(("ip", "-batch", "-"), 1, "", "exists\nCommand failed -:2\n")
    stopped = split(given, batch, force=False)
    assert [bool(r) for r in stopped] == [True, False]
    assert stopped[1].argv == ADD_B.argv and stopped[1].stderr == "exists"
    forced = split(given, batch, force=True)
    assert [bool(r) for r in forced] == [True, False, True]


def test_a_batch_that_died_without_a_line_number_blames_its_first_line() -> None:
    died = Result(("ip", "-batch", "-"), 255, "", "Killed")
    (only,) = split([ADD_A, ADD_B], died, force=False)
    assert only.argv == ADD_A.argv and only.returncode == 255 and only.stderr == "Killed"


# -- plans of plain command lists -------------------------------------------------------
def test_in_order_merges_neighbours_of_one_program_and_namespace_only() -> None:
    waves = in_order([ADD_A, ADD_B, LO_A, BR_A, USER_A, ADD_A])
    assert [w.runs() for w in waves] == [
        [Run((0, 1), "ip", None)],
        [Run((2, 3), "ip", "a")],
        [Run((4,), None, "a")],
        [Run((5,), "ip", None)],
    ]


# -- plans of steps -----------------------------------------------------------------------
def step(command: Command, phase: Phase = Phase.CONFIGURE, *, port: bool = False) -> Step:
    return Step(command, phase=phase, port=port)


def test_schedule_orders_by_phase_whatever_the_order_given() -> None:
    up_b = ip("link", "set", "dev", "lo", "up", namespace="b")
    veth = ip("link", "add", "name", "x", "netns", "a", "type", "veth", "peer", "name", "y")
    steps = [
        step(LO_A),
        step(ADD_A, Phase.NAMESPACE),
        step(veth, Phase.CREATE),
        step(up_b),
        step(ADD_B, Phase.NAMESPACE),
    ]
    waves = schedule(steps)
    # the root's netns adds and its veth are one batch (nothing else runs meanwhile)
    assert waves == [
        Wave(((Run((1, 4, 2), "ip", None),),)),
        Wave(((Run((0,), "ip", "a"),), (Run((3,), "ip", "b"),))),
    ]


def test_a_lane_is_a_batch_per_program_then_the_singles_in_order() -> None:
    steps = [step(LO_A), step(USER_A), step(tc("qdisc", "add", namespace="a")), step(BR_A)]
    (wave,) = schedule(steps)
    assert wave.lanes == ((Run((0, 3), "ip", "a"), Run((2,), "tc", "a"), Run((1,), None, "a")),)


def test_bridge_ports_finish_before_the_far_ends_come_up() -> None:
    far = ip("link", "set", "dev", "veth-a", "up", namespace="a")
    port = ip("link", "set", "dev", "veth-a-br", "master", "br0", namespace="h")
    port_up = ip("link", "set", "dev", "veth-a-br", "up", namespace="h")
    waves = schedule([step(far), step(port, port=True), step(port_up)])
    assert waves == [
        Wave(((Run((1, 2), "ip", "h"),),)),  # alone, first
        Wave(((Run((0,), "ip", "a"),),)),
    ]


def test_a_namespace_alone_in_a_wave_takes_its_next_batch_along() -> None:
    """The bridge is created (CREATE) and configured (CONFIGURE) in one batch when no
    other namespace creates anything: postponing its creation delays nobody."""
    bridge = step(BR_A, Phase.CREATE)
    veth = step(ip("link", "add", "name", "p", "netns", "a", "type", "veth", "peer", "name", "q"))
    veth = Step(veth.command, phase=Phase.CREATE)
    port = step(ip("link", "set", "dev", "p", "master", "br0", namespace="a"), port=True)
    later = step(ip("link", "set", "dev", "q", "up"), Phase.ADDRESS6)
    waves = schedule([bridge, veth, port, later])
    assert [w.runs() for w in waves] == [
        [Run((1,), "ip", None)],
        [Run((0, 2), "ip", "a")],
        [Run((3,), "ip", None)],
    ]
