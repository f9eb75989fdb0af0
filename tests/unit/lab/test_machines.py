"""Labs across machines (issue 15): where each step runs, the exact argv of the VXLAN
steps, the record, recovery and validation.  A fake executor per machine, no root."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import attrs
import pytest
from pytest_mock import MockerFixture

from netns_kit import (
    Lab,
    NetnsKitError,
    RecordingExecutor,
    SSHExecutor,
    ValidationError,
    VxlanPair,
    recover,
)
from netns_kit.command import Command, ip
from netns_kit.engine.plan import in_order, schedule
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Phase, Step, on_machine
from netns_kit.executors.batch import Batch
from netns_kit.executors.dispatch import RoutingExecutor
from netns_kit.lab.machines import underlay_command, vni_start
from netns_kit.record.registry import Registry, undo_record
from netns_kit.result import Result

from ..conftest import TAG, lines

UNDERLAY = {"a": "10.0.0.1", "b": "10.0.0.2"}


def machine(device: str | None, address: str) -> RecordingExecutor:
    """A fake machine whose underlay address is on ``device`` (``None``: a dry run,
    which answers nothing)."""
    ex = RecordingExecutor()
    if device is not None:
        found = [{"ifname": device, "mtu": 1500, "addr_info": [{"local": address}]}]
        ex.answer(underlay_command(address).argv, stdout=json.dumps(found))
    return ex


@pytest.fixture
def pair() -> dict[str, RecordingExecutor]:
    return {"a": machine("eth0", "10.0.0.1"), "b": machine("ens3", "10.0.0.2")}


def spread_lab(
    machines: dict[str, Any], state: Path, *, isolated: bool = True, name: str = "t"
) -> Lab:
    return Lab(name, machines=machines, underlay=UNDERLAY, isolated=isolated, state_dir=state)


def changes(ex: RecordingExecutor) -> list[str]:
    """What a machine was asked to change (not the reads)."""
    return lines(c.argv for c in ex.calls if not c.read)


# -- placement ------------------------------------------------------------------------------
def test_each_machine_gets_its_host_side_and_only_its_own_namespaces(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        red = lab.namespace("red", machine="a")
        blue = lab.namespace("blue", machine="b")
        assert red.executor is pair["a"] and blue.executor is pair["b"]
        assert changes(pair["a"]) == [
            "ip netns add t-host",
            f"ip -n t-host link set dev lo up alias {TAG}",
            "ip netns add red",
            f"ip -n red link set dev lo up alias {TAG}",
        ]
        assert changes(pair["b"]) == [
            "ip netns add t-host",
            f"ip -n t-host link set dev lo up alias {TAG}",
            "ip netns add blue",
            f"ip -n blue link set dev lo up alias {TAG}",
        ]
        # each machine was reached, and its underlay device found, before anything
        assert pair["a"].calls[0].argv == ("ip", "-j", "addr", "show", "to", "10.0.0.1")
        assert pair["b"].calls[0].argv == ("ip", "-j", "addr", "show", "to", "10.0.0.2")
        assert all(c.machine == "b" for c in pair["b"].calls[1:])


def test_the_default_machine_is_the_first(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path, isolated=False) as lab:
        lab.namespace("red")
        lab.bridge("br0", "10.9.0.1/24")
        assert "ip netns add red" in changes(pair["a"])
        assert "ip link add name br0 type bridge mcast_snooping 0" in changes(pair["a"])
        assert changes(pair["b"]) == []


# -- links across machines ------------------------------------------------------------------
def test_a_link_across_machines_is_a_vxlan_tunnel_end_on_each(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        red = lab.namespace("red", machine="a")
        blue = lab.namespace("blue", machine="b")
        before = {h: len(ex.calls) for h, ex in pair.items()}
        made = lab.link(red, blue, addresses=("192.168.5.1/24", "192.168.5.2/24"))
        assert isinstance(made, VxlanPair)
        vni = vni_start("t")
        assert made.vni == vni and made.machines == ("a", "b")
        near = lines(c.argv for c in pair["a"].calls[before["a"] :])
        far = lines(c.argv for c in pair["b"].calls[before["b"] :])
        # made on the underlay device in place in its namespace: the kernel gives it
        # the underlay's MTU less 50, so none is set
        assert near == [
            f"ip link add name veth-red netns red type vxlan id {vni} local 10.0.0.1 "
            "remote 10.0.0.2 dev eth0 dstport 4789",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red addr add 192.168.5.1/24 dev veth-red",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
        ]
        assert far == [
            f"ip link add name veth-blue netns blue type vxlan id {vni} local 10.0.0.2 "
            "remote 10.0.0.1 dev ens3 dstport 4789",
            f"ip -n blue link set dev veth-blue alias {TAG}",
            "ip -n blue addr add 192.168.5.2/24 dev veth-blue",
            "ip -n blue link set dev veth-blue addrgenmode none",
            "ip -n blue link set dev veth-blue up",
        ]
        # deleting the namespaces deletes the tunnel ends: nothing else to undo
        teardown = [(c.machine, " ".join(c.argv)) for c in lab.teardown_commands()]
        assert sorted(teardown) == [
            ("a", "ip netns delete red"),
            ("a", "ip netns delete t-host"),
            ("b", "ip netns delete blue"),
            ("b", "ip netns delete t-host"),
        ]


def test_vnis_are_one_more_each_link_and_the_record_keeps_them(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        red, blue = lab.namespace("red", machine="a"), lab.namespace("blue", machine="b")
        first = lab.link(red, blue)
        second = lab.link(red, blue)
        assert second.vni == first.vni + 1  # type: ignore[union-attr]
        record = Registry(tmp_path).read("t")
        assert record is not None
        tunnels = [e for e in record.resources if e.kind == "link"]
        assert [(e.machine, e.namespace, e.value) for e in tunnels] == [
            ("a", "red", str(first.vni)),  # type: ignore[union-attr]
            ("b", "blue", str(first.vni)),  # type: ignore[union-attr]
            ("a", "red", str(second.vni)),  # type: ignore[union-attr]
            ("b", "blue", str(second.vni)),  # type: ignore[union-attr]
        ]


def test_a_dry_run_knows_no_underlay_device_and_lowers_the_mtu_by_50(tmp_path: Path) -> None:
    machines = {"a": machine(None, "10.0.0.1"), "b": machine(None, "10.0.0.2")}
    with spread_lab(machines, tmp_path) as lab:
        red, blue = lab.namespace("red", machine="a"), lab.namespace("blue", machine="b")
        lab.link(red, blue)
        made = changes(machines["a"])
        assert any(" dev " not in m and "type vxlan" in m for m in made)
        assert "ip -n red link set dev veth-red mtu 1450" in made
        lab.link(red, blue, mtu=1400)  # a user's MTU wins
        assert "ip -n red link set dev red-blue mtu 1400" in changes(machines["a"])


def test_bridges_joined_across_machines_are_one_segment(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        sw_a = lab.bridge("sw-a", machine="a")
        sw_b = lab.bridge("sw-b", machine="b")
        assert sw_b.executor is pair["b"]
        joined = lab.link(sw_a, sw_b)
        vni = joined.vni  # type: ignore[union-attr]
        assert (
            f"ip link add name sw-a-sw-b netns t-host type vxlan id {vni} local 10.0.0.1 "
            "remote 10.0.0.2 dev eth0 dstport 4789"
        ) in changes(pair["a"])
        assert "ip -n t-host link set dev sw-a-sw-b master sw-a" in changes(pair["a"])
        assert "ip -n t-host link set dev sw-b-sw-a master sw-b" in changes(pair["b"])
        assert "ip -n t-host link add name sw-b type bridge mcast_snooping 0" in changes(pair["b"])


def test_a_link_on_one_machine_stays_a_veth_there(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        sw = lab.bridge("sw-b", machine="b")
        blue = lab.namespace("blue", machine="b")
        lab.link(blue, sw, addresses=("10.1.0.2/24", None))
        assert any("type veth" in m for m in changes(pair["b"]))
        assert not any("type veth" in m for m in changes(pair["a"]))


# -- validation: nothing runs ---------------------------------------------------------------
def test_builders_refuse_unknown_machines_and_disagreeing_ones(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    with spread_lab(pair, tmp_path) as lab:
        red = lab.namespace("red", machine="a")
        made = {h: len(ex.calls) for h, ex in pair.items()}
        with pytest.raises(ValidationError, match="machine"):
            lab.namespace("blue", machine="c")
        with pytest.raises(ValidationError, match="is not where namespace 'red' is"):
            lab.bridge("br0", namespace=red, machine="b")
        blue = lab.namespace("blue", machine="b")
        made = {h: len(ex.calls) for h, ex in pair.items()}
        with pytest.raises(ValidationError, match="not a link across machines"):
            lab.link(red, blue, rate="10mbit")
        assert {h: len(ex.calls) for h, ex in pair.items()} == made


def test_machines_need_underlay_addresses_and_exclude_executor(tmp_path: Path) -> None:
    a, b = RecordingExecutor(), RecordingExecutor()
    with pytest.raises(ValidationError, match="underlay"):
        Lab("t", machines={"a": a, "b": b}, state_dir=tmp_path)
    with pytest.raises(ValidationError, match="not one of the lab's machines"):
        Lab("t", machines={"a": a, "b": b}, underlay={**UNDERLAY, "c": "10.0.0.3"})
    with pytest.raises(ValidationError, match="exclude"):
        Lab("t", machines={"a": a}, executor=a)
    with pytest.raises(ValidationError, match="one address to two machines"):
        Lab("t", machines={"a": a, "b": b}, underlay={"a": "10.0.0.1", "b": "10.0.0.1"})
    with pytest.raises(ValidationError, match="is not an executor"):
        Lab("t", machines={"a": a, "b": "ssh://b"}, underlay=UNDERLAY)  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="machines="):
        Lab("t").namespace("red", machine="a")
    assert a.calls == [] and b.calls == []
    # an ssh executor's address is its underlay address unless told otherwise
    lab = Lab("t", machines={"a": SSHExecutor("10.0.0.1"), "b": SSHExecutor("10.0.0.2")})
    assert lab.machines is not None
    assert [m.underlay for m in lab.machines.machines.values()] == ["10.0.0.1", "10.0.0.2"]


def test_the_keywords_of_0_2_are_refused_naming_their_new_names(tmp_path: Path) -> None:
    a, b = RecordingExecutor(), RecordingExecutor()
    with pytest.raises(
        ValidationError, match=r"hosts: .* was renamed to machines= in netns_kit 0\.3"
    ):
        Lab("t", hosts={"a": a, "b": b}, underlay=UNDERLAY)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"renamed to machine= in netns_kit 0\.3"):
        Lab("t", state_dir=tmp_path).namespace("red", host="a")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"renamed to machine= in netns_kit 0\.3"):
        Lab("t", state_dir=tmp_path).bridge("br0", host="a")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"renamed to machines= in netns_kit 0\.3"):
        recover("t", state_dir=tmp_path, hosts={"a": a})  # type: ignore[call-arg]
    assert a.calls == [] and b.calls == []


def test_an_underlay_address_the_machine_lacks_stops_the_lab_first(tmp_path: Path) -> None:
    machines = {"a": machine("eth0", "10.0.0.1"), "b": RecordingExecutor()}
    machines["b"].answer(underlay_command("10.0.0.2").argv, stdout="[]")
    lab = spread_lab(machines, tmp_path)
    with pytest.raises(ValidationError, match="is not an address of machine 'b'"):
        lab.open()
    assert all(c.read for ex in machines.values() for c in ex.calls)  # only the checks ran
    assert not (tmp_path / "t.json").exists()


# -- the record and recovery ----------------------------------------------------------------
def test_the_record_says_how_to_reach_each_machine_and_recovery_cleans_each(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    ssh = SSHExecutor("10.0.0.2", user="lab", port=2222, ssh_options=("-o", "X=1"))
    lab = spread_lab({"a": pair["a"], "b": ssh}, tmp_path)
    lab.machines.check = lambda: None  # type: ignore[method-assign,union-attr]
    lab.journal.runner.executor.executors["b"] = pair["b"]  # type: ignore[attr-defined]
    lab.open()
    lab.namespace("red", machine="a")
    lab.namespace("blue", machine="b")
    record = Registry(tmp_path).read("t")
    assert record is not None
    assert record.machines["b"] == {
        "executor": {
            "ssh": {
                "host": "10.0.0.2",
                "user": "lab",
                "port": 2222,
                "identity_file": None,
                "sudo": False,
                "ssh_options": ["-o", "X=1"],
                "local_namespace": None,
            }
        },
        "underlay": "10.0.0.2",
    }
    assert record.machines["a"]["executor"] == {"other": repr(pair["a"])}
    assert [(e.machine, e.name) for e in record.resources if e.kind == "namespace"] == [
        ("a", "t-host"),
        ("b", "t-host"),
        ("a", "red"),
        ("b", "blue"),
    ]
    # a machine the record cannot reach by itself must be given
    with pytest.raises(NetnsKitError, match="machines="):
        undo_record(record, RecordingExecutor(), {"b": RecordingExecutor()})
    fa, fb = RecordingExecutor(), RecordingExecutor()
    for ex, names in ((fa, ("t-host", "red")), (fb, ("t-host", "blue"))):
        ex.answer(("ip", "-j", "netns", "list"), stdout=json.dumps([{"name": n} for n in names]))
        for n in names:
            lo = [{"ifname": "lo", "ifalias": TAG, "flags": ["UP"]}]
            ex.answer(("ip", "-n", n, "-j", "link", "show", "dev", "lo"), stdout=json.dumps(lo))
    removed = undo_record(record, RecordingExecutor(), {"a": fa, "b": fb})
    assert sorted(removed) == [
        "namespace blue on b",
        "namespace red on a",
        "namespace t-host on a",
        "namespace t-host on b",
    ]
    assert changes(fa) == ["ip netns delete red", "ip netns delete t-host"]
    assert changes(fb) == ["ip netns delete blue", "ip netns delete t-host"]
    lab.journal.forget_undo()
    lab.close()


# -- routing, planning, running -------------------------------------------------------------
def test_the_routing_executor_sends_each_command_to_its_machine() -> None:
    a, b = RecordingExecutor(), RecordingExecutor()
    route = RoutingExecutor({"a": a, "b": b})
    route.execute(Command(("true",), machine="b"))
    route.execute(Command(("false",)))  # no machine: the first one
    route.execute_batch(Batch("ip", "red", (ip("link", "set", "dev", "lo", "up"),), machine="b"))
    assert a.commands == [("false",)]
    assert b.commands == [("true",), ("ip", "link", "set", "dev", "lo", "up")]
    assert b.runs[-1].argv == ("ip", "-n", "red", "-batch", "-")
    with pytest.raises(NetnsKitError, match="no machine 'c'"):
        route.route("c")


def test_the_same_namespace_name_on_two_machines_is_two_lanes() -> None:
    steps = [Step(ip("link", "set", "dev", "lo", "up", namespace="t-host"))]
    placed = on_machine(steps, "a") + on_machine(steps, "b")
    (wave,) = schedule(placed)
    assert sorted((lane[0].machine, lane[0].namespace) for lane in wave.lanes) == [
        ("a", "t-host"),
        ("b", "t-host"),
    ]
    assert all(c.machine == "a" for c in placed[0].undo) and placed[1].command.machine == "b"


def test_in_order_keeps_each_machines_order_side_by_side() -> None:
    commands = [
        attrs.evolve(ip("netns", "delete", n), machine=h)
        for n, h in (("r", "a"), ("b1", "b"), ("r2", "a"), ("b2", "b"))
    ]
    waves = in_order(commands)
    # a's two deletes are one batch, b's two another, and the two machines overlap
    assert [[run.indexes for (run,) in wave.lanes] for wave in waves] == [[(0, 2), (1, 3)]]


class ManyAtOnce(RecordingExecutor):
    """A fake remote machine: takes a group of runs in one call."""

    parallel = 2

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[list[tuple[str, ...]]] = []

    def execute_many(self, commands: list[Command], *, keep_going: bool = False) -> list[Any]:
        self.groups.append([c.argv for c in commands])
        return [self.execute(c) for c in commands]


def test_a_remote_machine_takes_a_waves_lanes_in_one_call_per_session() -> None:
    ex = ManyAtOnce()
    steps = [
        Step(ip("link", "set", "dev", "lo", "up", namespace=f"n{i}"), phase=p)
        for i in range(6)
        for p in (Phase.CONFIGURE,)
    ]
    report = Runner(ex).run_steps(steps)
    assert report.ok
    assert [len(group) for group in ex.groups] == [3, 3]  # 6 namespaces, 2 sessions
    assert ex.groups[0][0] == ("ip", "-n", "n0", "-batch", "-")


# -- execute_many over ssh: a real sh plays the far side ------------------------------------
def test_execute_many_frames_each_command_and_stops_at_the_first_failure(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    scripts: list[str] = []

    def ssh(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        if "-N" in argv:  # the master: make its socket
            Path(argv[argv.index("-S") + 1]).touch()
            return subprocess.CompletedProcess(argv, 0)
        if "-O" in argv:
            return subprocess.CompletedProcess(argv, 0, b"", b"")
        assert argv[-1] == "sh -s"
        scripts.append(kwargs["input"])
        # subprocess.run itself is the fake here: the real sh starts through Popen
        with subprocess.Popen(
            ["sh", "-s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        ) as sh:
            out, err = sh.communicate(kwargs["input"])
        return subprocess.CompletedProcess(argv, sh.returncode, out, err)

    mocker.patch("netns_kit.executors.ssh.subprocess.run", side_effect=ssh)
    hostile = "a b;touch pwned'\"$(touch pwned2)`touch pwned3`"
    commands = [
        Command(("printf", "%s", hostile)),
        Command(("cat",), stdin="line 1\nline 2\n"),
        Command(("sh", "-c", "echo said >&2; exit 3")),
        Command(("echo", "never")),
    ]
    with SSHExecutor("10.0.0.2") as ex:
        results = ex.execute_many(commands)
        assert [r if r is None else (r.returncode, r.stdout, r.stderr) for r in results] == [
            (0, hostile, ""),
            (0, "line 1\nline 2\n", ""),
            (3, "", "said\n"),
            None,  # never ran: the script stopped at the failure
        ]
        assert all(r is None or r.machine == "10.0.0.2" for r in results)
        going = ex.execute_many(commands, keep_going=True)
        assert going[3] is not None and going[3].stdout == "never\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing reached a shell unquoted
    # a command in a namespace enters it as the local executor does, without ip -n
    text = SSHExecutor("h").script([ip("link", "show", namespace="red")], "M", keep_going=True)
    assert "nsenter --net=/run/netns/red -- ip link show </dev/null" in text
    assert isinstance(results[0], Result)


def test_hosts_files_on_each_machine_name_every_namespace(
    pair: dict[str, RecordingExecutor], tmp_path: Path
) -> None:
    for ex in pair.values():  # no /etc/netns yet
        ex.answer(("ls", "-1", "-A", "/etc/netns"), returncode=2)
    with spread_lab(pair, tmp_path) as lab:
        red, blue = lab.namespace("red", machine="a"), lab.namespace("blue", machine="b")
        lab.link(red, blue, addresses=("192.168.5.1/24", "192.168.5.2/24"))
        files = lab.hosts()
        for machine_name, mine in (("a", "red"), ("b", "blue")):
            made = [c for c in pair[machine_name].calls if c.argv[0] in ("mkdir", "tee")]
            assert [c.argv for c in made] == [
                ("mkdir", "-p", "/etc/netns"),
                ("mkdir", "-p", f"/etc/netns/{mine}", "/etc/netns/t-host"),
                ("tee", f"/etc/netns/{mine}/hosts", "/etc/netns/t-host/hosts"),
            ]
            # names resolve across machines: the same text everywhere
            assert made[-1].stdin == files.text()
            assert "192.168.5.1\tred" in files.text() and "192.168.5.2\tblue" in files.text()
