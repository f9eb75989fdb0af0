"""Vxlan: the argv of its steps, its checks, and its record (no root needed)."""

from __future__ import annotations

import pytest

from netns_kit import (
    Bridge,
    RecordingExecutor,
    ScriptExecutor,
    ValidationError,
    Vxlan,
    use_executor,
)
from netns_kit.engine.plan import schedule
from netns_kit.engine.step import Entry, Phase
from netns_kit.errors import CommandError

from ..conftest import lines

TAG = "netns-kit:t"


def tunnel(**changes: object) -> Vxlan:
    fields: dict[str, object] = {
        "name": "vx0",
        "vni": 42,
        "local": "10.0.0.1",
        "remote": "10.0.0.2",
        "underlay": "eth0",
        "namespace": "red",
    }
    fields.update(changes)
    return Vxlan(**fields)  # type: ignore[arg-type]


# -- commands ---------------------------------------------------------------------------
def test_made_in_place_in_its_namespace_from_the_underlay() -> None:
    (command,) = tunnel().create_commands()
    assert command.argv == (
        "ip",
        "link",
        "add",
        "name",
        "vx0",
        "netns",
        "red",
        "type",
        "vxlan",
        "id",
        "42",
        "local",
        "10.0.0.1",
        "remote",
        "10.0.0.2",
        "dev",
        "eth0",
        "dstport",
        "4789",
    )
    assert command.namespace is None  # runs where the underlay is: the root here


def test_underlay_in_a_namespace_runs_there() -> None:
    (command,) = tunnel(underlay_namespace="under").create_commands()
    assert command.argv[:3] == ("ip", "-n", "under")
    assert command.argv[6:9] == ("vx0", "netns", "red")
    assert command.namespace == "under"


def test_without_a_namespace_it_stays_with_the_underlay() -> None:
    vx = tunnel(namespace=None, underlay_namespace="under")
    (command,) = vx.create_commands()
    assert "netns" not in command.argv[3:]
    assert vx.home == "under"
    assert vx.delete_commands()[0].argv == ("ip", "-n", "under", "link", "delete", "dev", "vx0")


def test_ipv6_underlay_and_another_port() -> None:
    vx = tunnel(local="fd00::1", remote="fd00::2", port=8472)
    argv = vx.create_commands()[0].argv
    assert argv[argv.index("local") + 1] == "fd00::1"
    assert argv[argv.index("remote") + 1] == "fd00::2"
    assert argv[argv.index("dstport") + 1] == "8472"
    assert vx.overhead == 70
    assert tunnel().overhead == 50


def test_twin_swaps_the_addresses_and_keeps_the_vni() -> None:
    far = tunnel(port=4790).twin(namespace="blue", underlay="ens3")
    assert (far.name, far.vni, far.local, far.remote) == ("vx0", 42, "10.0.0.2", "10.0.0.1")
    assert (far.namespace, far.underlay, far.port) == ("blue", "ens3", 4790)
    assert tunnel().twin("vx9").name == "vx9"


# -- steps ------------------------------------------------------------------------------
def test_steps_create_recorded_then_settings() -> None:
    steps = tunnel().steps(tag=TAG, addresses=["192.168.5.1/24"], link_local=False)
    create = steps[0]
    assert create.phase is Phase.CREATE
    assert create.entry == Entry(
        "link",
        "vx0",
        "red",
        undo=("ip", "-n", "red", "link", "delete", "dev", "vx0"),
        value="42",  # the VNI, for the record
    )
    assert [u.argv for u in create.undo] == [("ip", "-n", "red", "link", "delete", "dev", "vx0")]
    assert create.lives_in == frozenset({"red"})  # goes with red: no undo when red goes
    assert lines(s.command.argv for s in steps[1:]) == [
        "ip -n red link set dev vx0 alias netns-kit:t",
        "ip -n red addr add 192.168.5.1/24 dev vx0",
        "ip -n red link set dev vx0 addrgenmode none",
        "ip -n red link set dev vx0 up",
    ]
    assert all(s.phase is Phase.CONFIGURE for s in steps[1:])


def test_steps_with_an_mtu_and_a_bridge() -> None:
    bridge = Bridge("br0", "sw")
    steps = tunnel(namespace="sw").steps(tag=None, mtu=1400, bridge=bridge)
    assert steps[1].port
    assert lines(s.command.argv for s in steps[1:]) == [
        "ip -n sw link set dev vx0 master br0",
        "ip -n sw link set dev vx0 mtu 1400",
        "ip -n sw link set dev vx0 up",
    ]


def test_a_bridge_elsewhere_is_refused() -> None:
    with pytest.raises(ValidationError, match="bridge"):
        tunnel().steps(tag=None, bridge=Bridge("br0", "other"))


def test_ipv6_address_waits_for_its_phase() -> None:
    steps = tunnel().steps(tag=None, addresses=["fd01::1/64"])
    assert [s.phase for s in steps] == [Phase.CREATE, Phase.ADDRESS6, Phase.CONFIGURE]
    assert steps[1].command.argv[-4:] == ("fd01::1/64", "dev", "vx0", "nodad")


def test_planned_the_create_joins_the_underlays_batch() -> None:
    steps = tunnel().steps(tag=TAG, addresses=["192.168.5.1/24"])
    waves = schedule(steps)
    runs = [run for wave in waves for run in wave.runs()]
    assert [(r.family, r.namespace, len(r.indexes)) for r in runs] == [
        ("ip", None, 1),
        ("ip", "red", 3),
    ]


# -- checks -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("vni", {"vni": 0}),
        ("vni", {"vni": 2**24}),
        ("vni", {"vni": "42"}),
        ("local", {"local": "10.0.0.1/24"}),
        ("remote", {"remote": "host-b"}),
        ("remote", {"remote": "fd00::2"}),  # not the local address's version
        ("remote", {"remote": "10.0.0.1"}),  # the local address itself
        ("name", {"name": "-vx"}),
        ("name", {"name": "vx 0"}),
        ("underlay", {"underlay": "eth 0"}),
        ("underlay", {"underlay": "a" * 16}),
        ("namespace", {"namespace": "a/b"}),
        ("underlay_namespace", {"underlay_namespace": "x y"}),
        ("port", {"port": 0}),
    ],
)
def test_bad_values_are_refused(field: str, changes: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        tunnel(**changes)
    assert caught.value.field == field


def test_bad_mtu_is_refused_before_anything_runs(ex: RecordingExecutor) -> None:
    with pytest.raises(ValidationError, match="mtu"):
        tunnel(executor=ex).create(mtu=20)
    assert ex.commands == []


# -- actions ----------------------------------------------------------------------------
def test_create_runs_two_batches(ex: RecordingExecutor) -> None:
    tunnel(executor=ex).create(addresses=["192.168.5.1/24"])
    assert [r.argv for r in ex.runs] == [("ip", "-batch", "-"), ("ip", "-n", "red", "-batch", "-")]
    assert ex.commands[0][:5] == ("ip", "link", "add", "name", "vx0")


def test_create_failing_half_way_deletes_the_device(ex: RecordingExecutor) -> None:
    ex.fail_at(2, stderr="Error: something\n")  # the address
    with pytest.raises(CommandError, match="something"):
        tunnel(executor=ex).create(addresses=["192.168.5.1/24"], tag=TAG)
    assert ex.commands[-1] == ("ip", "-n", "red", "link", "delete", "dev", "vx0")


def test_delete(ex: RecordingExecutor) -> None:
    tunnel(executor=ex).delete()
    assert ex.commands == [("ip", "-n", "red", "link", "delete", "dev", "vx0")]


def test_dry_run_writes_both_commands() -> None:
    dry = ScriptExecutor()
    with use_executor(dry):
        tunnel().create(addresses=["192.168.5.1/24"])
    script = dry.script()
    assert (
        "ip link add name vx0 netns red type vxlan id 42 local 10.0.0.1 remote 10.0.0.2 "
        "dev eth0 dstport 4789" in script
    )
    assert "ip -n red addr add 192.168.5.1/24 dev vx0" in script
