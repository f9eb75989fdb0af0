"""Ready means ready: a build waits for its spanning-tree bridges to settle (no root:
the executor answers ``bridge -j link show`` from a script, the clock is fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netns_kit import Bridge, NetnsKitError, RecordingExecutor, Runner
from netns_kit.command import Command
from netns_kit.lab.ready import ports_command, unsettled_ports, wait_settled
from netns_kit.result import Result

from ..conftest import fresh, lines, make_lab


def _ports(*states: tuple[str, str, str]) -> str:
    return json.dumps([{"ifname": n, "master": m, "state": s} for n, m, s in states])


class Scripted(RecordingExecutor):
    """Answers each `bridge -j link show` with the next of ``answers`` (the last one
    for ever after)."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers = answers

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        result = super().execute(command, timeout)
        if "bridge" in command.argv:
            stdout = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
            return Result(command.argv, 0, stdout)
        return result


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_ports_command_reads_from_inside_the_namespace() -> None:
    assert ports_command("s1").argv == ("ip", "netns", "exec", "s1", "bridge", "-j", "link", "show")
    assert ports_command("s1").inside == ("bridge", "-j", "link", "show")  # setns, no mounts
    assert ports_command(None).argv == ("bridge", "-j", "link", "show")
    assert ports_command("s1").read


def test_only_the_ports_of_the_bridges_asked_about_count() -> None:
    said = _ports(("a", "br0", "forwarding"), ("b", "br0", "listening"), ("c", "br9", "learning"))
    assert unsettled_ports(said, {"br0"}) == ["b (listening)"]
    assert unsettled_ports(_ports(("a", "br0", "blocking")), {"br0"}) == []
    assert unsettled_ports("", {"br0"}) == []


def test_waiting_polls_until_every_port_forwards_or_blocks() -> None:
    ex = Scripted(
        [
            _ports(("p1", "br0", "listening"), ("p2", "br0", "listening")),
            _ports(("p1", "br0", "learning"), ("p2", "br0", "blocking")),
            _ports(("p1", "br0", "forwarding"), ("p2", "br0", "blocking")),
        ]
    )
    clock = Clock()
    wait_settled(Runner(ex), [Bridge("br0", "s1")], clock=clock, sleep=clock.sleep)
    assert len(ex.commands) == 3
    assert clock.slept == [0.1, 0.1]


def test_a_namespace_that_settled_is_not_read_again() -> None:
    ex = Scripted([_ports(("p1", "br0", "forwarding"))])
    clock = Clock()
    wait_settled(Runner(ex), [Bridge("br0", "s1"), Bridge("br1", "s1")], clock=clock)
    assert len(ex.commands) == 1  # one read covers both bridges of s1


def test_ports_that_never_settle_are_named_in_the_error() -> None:
    ex = Scripted([_ports(("p1", "br0", "listening"))])
    clock = Clock()
    with pytest.raises(NetnsKitError, match=r"within 30 s in 's1': p1 \(listening\)"):
        wait_settled(Runner(ex), [Bridge("br0", "s1")], clock=clock, sleep=clock.sleep)
    assert clock.now >= 30


def test_a_lab_waits_for_stp_once_per_builder_or_once_per_batch(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        s1, s2 = lab.namespace("s1"), lab.namespace("s2")
        b1 = lab.bridge("br0", namespace=s1, stp=True)
        b2 = lab.bridge("br0", namespace=s2, stp=True)
        plain = lab.bridge("plain", namespace=s1)
        start = len(ex.commands)
        lab.link(b1, b2)
        reads = [c for c in lines(ex.commands[start:]) if "bridge -j" in c]
        assert reads == [  # the fake answers [], which is settled
            "ip netns exec s1 bridge -j link show",
            "ip netns exec s2 bridge -j link show",
        ]
        start = len(ex.commands)
        lab.link(plain, b2)
        assert [c for c in lines(ex.commands[start:]) if "bridge -j" in c] == [
            "ip netns exec s2 bridge -j link show"
        ]
        start = len(ex.commands)
        with lab.batch():
            lab.link(b1, b2)
            lab.link(b2, b1)
            assert not any("bridge -j" in c for c in lines(ex.commands[start:]))
        assert sum("bridge -j" in c for c in lines(ex.commands[start:])) == 2
        start = len(ex.commands)
        lab.link(plain, "s2/br0")  # plain, in s1, needs no wait; br0 in s2 does
        assert sum("bridge -j" in c for c in lines(ex.commands[start:])) == 1
