"""Fault injection on a lab spread over two machines (issue 19, section 3).

Two fake machines (a recording executor each, answering as a machine with its underlay
device) stand in for ssh machines.  A step fails on machine b while machine a has
built its side, a VXLAN tunnel end included: both machines are rolled back, and the
lab's name is free again.  Then every command of the two-machines example
(scripts/labs/two-machines.toml) fails once, on each machine, as the home-router fault
test does on one machine: whatever ran on either machine is undone, and nothing is
left for recover() either.  No root needed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import attrs
import pytest

from netns_kit import CommandError, Lab, NetnsKitError, RecordingExecutor, TeardownError
from netns_kit.objects.vxlan import VxlanPair
from netns_kit.record.registry import Registry

from ..conftest import Argv, lines
from .test_machines import UNDERLAY, machine

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"
Hosts = dict[str, RecordingExecutor]


def two_machines() -> Hosts:
    return {"a": machine("eth0", "10.0.0.1"), "b": machine("ens3", "10.0.0.2")}


def made_and_removed(commands: list[Argv], failed: int | None) -> tuple[Counter[str], Counter[str]]:
    """The namespaces a machine made (the failed command aside) and those it deleted
    afterwards.  Everything a lab makes lives in a namespace it made (an isolated lab:
    a veth or a VXLAN end is made in place with ``netns N``), so this is all of it."""
    made: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    for i, argv in enumerate(commands):
        if i == failed:
            continue
        if argv[:3] == ("ip", "netns", "add"):
            assert not removed[argv[3]], f"{argv[3]} made again after its delete"
            made[argv[3]] += 1
        elif argv[:3] == ("ip", "netns", "delete"):
            assert made[argv[3]] > removed[argv[3]], f"{argv[3]} deleted, never made"
            removed[argv[3]] += 1
    return made, removed


def assert_name_is_free(state: Path, name: str) -> None:
    """No record, no lock held: a new lab of the same name opens."""
    assert Registry(state).read(name) is None
    fresh = two_machines()
    with Lab(name, machines=fresh, underlay=UNDERLAY, isolated=True, state_dir=state) as again:
        again.namespace("red", machine="a")
    assert list(state.iterdir()) == []


# -- a failure on b after a has built its side -----------------------------------------
def test_a_failure_on_b_rolls_back_both_machines_vxlan_end_included(tmp_path: Path) -> None:
    hosts = two_machines()
    lab = Lab("t", machines=hosts, underlay=UNDERLAY, isolated=True, state_dir=tmp_path)
    with pytest.raises(CommandError, match="injected failure") as raised, lab:
        red = lab.namespace("red", machine="a")
        blue = lab.namespace("blue", machine="b")
        start = {h: len(ex.commands) for h, ex in hosts.items()}
        # b's address on its tunnel end is the third command of b's side of the link
        hosts["b"].fail_at(start["b"] + 2)
        lab.link(red, blue, addresses=("192.168.5.1/24", "192.168.5.2/24"))
    assert raised.value.argv == (
        "ip",
        "-n",
        "blue",
        "addr",
        "add",
        "192.168.5.2/24",
        "dev",
        "veth-blue",
    )
    assert raised.value.argv in [tuple(c) for c in hosts["b"].commands]  # it ran on b
    a_side = lines(hosts["a"].commands[start["a"] :])
    # a had built its side: its tunnel end, addressed and up ...
    assert any(" type vxlan " in line and "netns red" in line for line in a_side)
    assert "ip -n red addr add 192.168.5.1/24 dev veth-red" in a_side
    # ... and then both machines were rolled back: the link at once, the lab after it
    for host in ("a", "b"):
        made, removed = made_and_removed(
            hosts[host].commands, start["b"] + 2 if host == "b" else None
        )
        assert made == removed == Counter({"t-host": 1, "red" if host == "a" else "blue": 1})
    assert "ip -n red link delete dev veth-red" in a_side  # the failed link's own undo
    assert lab.state == "closed"
    assert_name_is_free(tmp_path, "t")


def test_the_tunnel_object_is_the_one_a_successful_link_returns(tmp_path: Path) -> None:
    """The scenario above without the failure: the same builder makes a VXLAN pair."""
    hosts = two_machines()
    with Lab("t", machines=hosts, underlay=UNDERLAY, isolated=True, state_dir=tmp_path) as lab:
        made = lab.link(lab.namespace("red", machine="a"), lab.namespace("blue", machine="b"))
        assert isinstance(made, VxlanPair)
    assert list(tmp_path.iterdir()) == []


# -- every failure point of the two-machines example ------------------------------------
@attrs.define
class Outcome:
    hosts: Hosts
    built: dict[str, int]
    raised: BaseException | None


def build(state: Path, fail: tuple[str, int] | None = None) -> Outcome:
    hosts = two_machines()
    if fail is not None:
        hosts[fail[0]].fail_at(fail[1])
    built = {h: -1 for h in hosts}
    raised: BaseException | None = None
    lab = Lab.from_file(LABS / "two-machines.toml", machines=hosts, state_dir=state)
    try:
        with lab:
            built = {h: len(ex.commands) for h, ex in hosts.items()}
    except NetnsKitError as error:
        raised = error
    assert lab.state in ("closed", "new")  # new: a machine failed its check, before open
    return Outcome(hosts, built, raised)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = build(tmp_path_factory.mktemp("state"))
    assert outcome.raised is None
    return outcome


def test_the_reference_build_makes_a_tunnel_end_on_each_machine(reference: Outcome) -> None:
    for host, device in (("a", "eth0"), ("b", "ens3")):
        commands = lines(reference.hosts[host].commands)
        tunnels = [line for line in commands if " type vxlan " in line]
        assert len(tunnels) == 2 and all(f" dev {device} " in t for t in tunnels)
        made, removed = made_and_removed(reference.hosts[host].commands, None)
        assert made == removed and len(made) == 2
        undone = commands[reference.built[host] :]
        assert undone == [
            f"ip netns delete {'red' if host == 'a' else 'blue'}",
            "ip netns delete two-machines-host",
        ]


def _read(argv: Argv) -> bool:
    return argv[:2] == ("ip", "-j")


@pytest.mark.parametrize("host", ["a", "b"])
def test_every_failure_of_the_two_hosts_build_is_rolled_back_on_both_machines(
    reference: Outcome, host: str, tmp_path: Path
) -> None:
    commands = reference.hosts[host].commands
    checked = 0
    for k in range(len(commands)):
        state = tmp_path / f"state-{k}"
        outcome = build(state, fail=(host, k))
        raised = outcome.raised
        assert raised is not None, k  # nothing it runs may fail unnoticed
        assert outcome.hosts[host].commands[:k] == commands[:k], k  # deterministic
        if k >= reference.built[host]:  # an undo failed: the rest is undone, then said
            assert isinstance(raised, TeardownError), (k, raised)
            for other, ex in outcome.hosts.items():
                made, removed = made_and_removed(ex.commands, k if other == host else None)
                if other == host:
                    (failed,) = set(made) - set(removed)
                    assert commands[k] == ("ip", "netns", "delete", failed), k
                else:
                    assert made == removed, (k, other)
            continue
        if k == 0:  # a machine's underlay could not be read: nothing is built anywhere
            assert type(raised) is CommandError and raised.argv == commands[k], (k, raised)
            assert _read(commands[k]), k
            for ex in outcome.hosts.values():
                assert not any(c[:3] == ("ip", "netns", "add") for c in ex.commands), k
        else:
            assert type(raised) is CommandError, (k, raised)
            assert raised.argv == commands[k], k
        for other, ex in outcome.hosts.items():
            made, removed = made_and_removed(ex.commands, k if other == host else None)
            assert made == removed, (k, other, made, removed)
        assert list(state.iterdir()) == [], k  # nothing left for recover() either
        checked += 1
    assert checked >= 24, checked
