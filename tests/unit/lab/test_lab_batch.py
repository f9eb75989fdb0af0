"""Lab.batch() and Lab.apply() with a fake executor: few processes, every dependency
kept, names refused before anything changes.  No root needed."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from netns_kit import (
    AlreadyExistsError,
    Lab,
    RecordingExecutor,
    Result,
    topology,
)
from netns_kit.command import Command
from netns_kit.executors.batch import Batch
from netns_kit.spec import LinkSpec, Topology
from netns_kit.topology import TopologyError

from ..conftest import TAG, Argv, fresh, lines, make_lab
from .test_lab_builders import MASQ

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"


# -- batch --------------------------------------------------------------------------------
def bridge_lab(lab: Lab, names: tuple[str, ...] = ("red", "green", "blue")) -> None:
    """The README's lab: a bridge with the host address, each namespace on it."""
    bridge = lab.bridge("br0", "10.0.0.254/24")
    for i, name in enumerate(names, 1):
        ns = lab.namespace(name)
        lab.link(ns, bridge, addresses=(f"10.0.0.{i}/24", None))
        lab.route("default", via="10.0.0.254", namespace=ns)


def _first(commands: list[Argv], prefix: Argv) -> int:
    return next(i for i, argv in enumerate(commands) if argv[: len(prefix)] == prefix)


def test_batch_runs_nothing_inside_the_block_then_few_processes(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        runs = len(ex.runs)
        with lab.batch():
            bridge_lab(lab)
            assert len(ex.commands) == opened  # queued, not run
            assert [type(r).__name__ for r in lab.resources][:3] == [
                "Bridge",
                "Namespace",
                "VethPair",
            ]
        built = ex.commands[opened:]
        processes = ex.runs[runs:]
        # one `ip -j netns list` to refuse taken names, then the build
        assert built[0] == ("ip", "-j", "netns", "list")
        assert len(built) == 1 + 1 + 3 * 2 + 5 + 3 * 9 + 3  # the switch setting too
        # the host side's switch settings are a run of their own (the real kernel's
        # executor writes them without a process), between the namespaces and links
        assert len(processes) == 8, [str(p) for p in processes]
        # each lab namespace is configured by exactly one process
        for name in ("red", "green", "blue"):
            assert sum(p.namespace == name for p in processes) == 1
        assert sum(p.namespace == "t-host" for p in processes) <= 2
        assert sum(p.namespace is None for p in processes) <= 3
    assert list(state.iterdir()) == []


def test_batch_keeps_every_dependency(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        with lab.batch():
            bridge_lab(lab)
        built = ex.commands[opened:]
    for name in ("red", "green", "blue"):
        added = built.index(("ip", "netns", "add", name))
        users = [
            i
            for i, argv in enumerate(built)
            if argv[:3] == ("ip", "-n", name) or ("netns", name) in itertools.pairwise(argv)
        ]
        assert users and min(users) > added, name
        veth = _first(built, ("ip", "link", "add", "name", f"veth-{name}"))
        assert min(i for i in users if i != veth) > veth
        assert _first(built, ("ip", "-n", name, "addr", "add")) < _first(
            built, ("ip", "-n", name, "route", "add")
        )
        port = ("ip", "-n", "t-host", "link", "set", "dev", f"veth-{name}-br")
        master = built.index((*port, "master", "br0"))
        up = built.index(("ip", "-n", name, "link", "set", "dev", f"veth-{name}", "up"))
        assert master < up  # the bridge port is ready before its far end comes up
    bridge = built.index(
        (
            "ip",
            "-n",
            "t-host",
            "link",
            "add",
            "name",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        )
    )
    assert all(bridge < i for i, argv in enumerate(built) if "master" in argv)


def test_batch_orders_by_phase_whatever_order_the_builders_came_in(state: Path) -> None:
    """Namespaces, then links, then each namespace's settings (kernel settings of a
    lab namespace follow its batch, in its lane), then firewall rules; a root sysctl
    is read when the builder is called."""
    ex = fresh()
    with make_lab(ex, state) as lab:
        with lab.batch():
            lab.namespace("red")
            lab.sysctl("net.ipv4.ip_forward", 1, namespace="red")
            lab.masquerade("10.0.0.0/24")
            lab.namespace("blue")
            lab.link("red", "blue")
        assert lines(ex.commands) == [
            "sysctl -n net.ipv4.ip_forward",
            "ip -j netns list",
            "ip netns add red",
            "ip netns add blue",
            "ip link add name veth-red netns red type veth peer name veth-blue netns blue",
            f"ip -n red link set dev lo up alias {TAG}",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
            "ip netns exec red sysctl -q -w net.ipv4.ip_forward=1",
            "sysctl -q -w net.ipv4.ip_forward=1",
            f"ip -n blue link set dev lo up alias {TAG}",
            f"ip -n blue link set dev veth-blue alias {TAG}",
            "ip -n blue link set dev veth-blue addrgenmode none",
            "ip -n blue link set dev veth-blue up",
            "iptables -w " + MASQ.format(op="-C"),
            "iptables -w " + MASQ.format(op="-A"),
        ]
        assert [(r.argv[:2], r.namespace) for r in ex.runs[2:]] == [
            (("ip", "-batch"), None),
            (("ip", "-n"), "red"),
            (("ip", "netns"), "red"),  # red's setting: its own run, in its lane
            (("sysctl", "-q"), None),
            (("ip", "-n"), "blue"),
            (("iptables", "-w"), None),
            (("iptables", "-w"), None),
        ]


def test_ipv6_addresses_and_routes_come_once_every_link_is_up(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        with lab.batch():
            a, r = lab.namespace("a"), lab.namespace("r")
            lab.link(a, r, addresses=("fd00:1::1/64", "fd00:1::2/64"))
            lab.route("default", via="fd00:1::2", namespace=a)
        built = lines(ex.commands[opened:])
    no_dad = "sysctl -q -w net.ipv6.conf.default.accept_dad=0"
    assert built[1:6] == [
        "ip netns add a",
        "ip netns add r",
        f"ip netns exec a {no_dad}",  # before the links, which take the default
        f"ip netns exec r {no_dad}",
        "ip link add name veth-a netns a type veth peer name veth-r netns r",
    ]
    ups = [built.index(f"ip -n {n} link set dev veth-{n} up") for n in "ar"]
    six = [
        built.index(f"ip -n {n} addr add fd00:1::{i}/64 dev veth-{n} nodad")
        for i, n in ((1, "a"), (2, "r"))
    ]
    assert max(ups) < min(six)
    route = built.index("ip -n a -6 route add default via fd00:1::2")
    assert route > six[0]  # after the address that makes its gateway reachable


def test_a_batch_block_that_raises_runs_nothing(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        with pytest.raises(RuntimeError), lab.batch():
            bridge_lab(lab)
            raise RuntimeError("changed my mind")
        assert len(ex.commands) == opened
    assert lines(ex.commands[opened:]) == ["ip netns delete t-host"]


def test_batch_refuses_taken_namespace_names_before_changing_anything(state: Path) -> None:
    ex = fresh()
    ex.answer(("ip", "-j", "netns", "list"), stdout='[{"name":"green"}]')
    with make_lab(ex, state) as lab:
        with pytest.raises(AlreadyExistsError) as caught, lab.batch():
            bridge_lab(lab)
        assert caught.value.argv == ("ip", "netns", "add", "green")
        assert "not made by a netns_kit lab" in "".join(caught.value.__notes__)
        assert lines(ex.commands) == ["ip -j netns list"]


class CannedBatchFailure(RecordingExecutor):
    """Fails the ``nth`` batch with the kernel's own words for ``line``."""

    def __init__(self, nth: int, line: int, said: str) -> None:
        super().__init__()
        self.nth, self.line, self.said = nth, line, said
        self.batches: list[Command] = []

    def execute_batch(self, batch: Batch) -> Result:
        process = batch.process()
        self.runs.append(process)
        self.batches.append(process)
        if len(self.batches) == self.nth:
            return Result(process.argv, 1, "", f"{self.said}\nCommand failed -:{self.line}\n")
        return Result(process.argv, 0)


def test_a_failed_batch_line_raises_the_error_of_that_command(state: Path) -> None:
    ex = CannedBatchFailure(nth=3, line=3, said="RTNETLINK answers: File exists")
    lab = Lab("t", executor=ex, isolated=True, state_dir=state)
    with pytest.raises(AlreadyExistsError) as caught, lab, lab.batch():
        bridge_lab(lab)
    failed = ex.batches[2]
    assert failed.stdin is not None
    line = failed.stdin.splitlines()[2]
    prefix = ("ip", "-n", failed.namespace) if failed.namespace else ("ip",)
    assert caught.value.argv == (*prefix, *line.split())
    assert "RTNETLINK answers: File exists" in str(caught.value)
    # torn down all the same: the last process deletes every namespace made
    assert ex.runs[-1].argv == ("ip", "-force", "-batch", "-")
    assert ex.runs[-1].stdin is not None and "netns delete t-host" in ex.runs[-1].stdin
    assert list(state.iterdir()) == []


# -- whole topologies -------------------------------------------------------------------
def test_apply_builds_a_file_in_a_handful_of_processes(state: Path) -> None:
    ex = fresh(namespace="router-nat-host")
    blueprint = topology.load(LABS / "router-nat.toml")
    with Lab.from_topology(blueprint, executor=ex, state_dir=state) as lab:
        assert lab.topology() == blueprint.with_link_names()
        names = [type(r).__name__ for r in lab.resources]
        assert names == ["Namespace"] * 3 + ["Bridge"] * 2 + ["VethPair"] * 3 + [
            "Route",
            "Route",
            "Sysctl",
            "Masquerade",
        ]
        assert len(ex.runs) < len(ex.commands) / 3


def test_apply_checks_the_whole_topology_before_anything_runs(state: Path) -> None:
    ex = fresh()
    bad = Topology(name="x", namespaces=("red",), links=(LinkSpec("red", "blue"),))
    lab = Lab("x", executor=ex, state_dir=state)
    with pytest.raises(TopologyError, match=r"links\[0\]\.b: 'blue' is not a namespace"):
        lab.apply(bad)
    assert ex.commands == []
    lab.close()
