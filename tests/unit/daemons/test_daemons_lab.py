"""Daemons as lab resources, with the fake executor: what starts (exact argv), what
the record says, what teardown and recovery run.  No root needed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from netns_kit import Lab, NetnsKitError, RecordingExecutor, ValidationError, recover
from netns_kit.command import Command
from netns_kit.daemons import bird, examples, frr, resources
from netns_kit.daemons.builders import daemon_base
from netns_kit.daemons.converge import NotConvergedError
from netns_kit.engine.step import Entry
from netns_kit.executors.detached import launch_argv
from netns_kit.record.registry import Record, Registry
from netns_kit.result import Result

from ..conftest import fresh

START = "4242"
DIR = "/run/netns-kit-t.daemons"  # the start time every fake process has


def stat_line(pid: int, start: str = START, state: str = "S") -> str:
    return f"{pid} (zebra d) {state} " + " ".join(["0"] * 18) + f" {start} 0 0\n"


def routed_executor(routes: dict[str, list[str]]) -> RecordingExecutor:
    """A fake machine whose daemons run (their /proc/PID/stat is there, with the
    start time the launcher said), whose sockets appear (the wait prints no missing
    path), and whose routers' tables hold ``routes``."""
    ex = fresh()
    ex.start_time = START
    ex.answer(("cat",), stdout="".join(stat_line(100_000 + i) for i in range(20)))
    for router, prefixes in routes.items():
        table = json.dumps([{"dst": p, "gateway": "10.0.0.1", "flags": []} for p in prefixes])
        ex.answer(("ip", "-n", router, "-j", "route", "show"), stdout=table)
    return ex


TRIANGLE = {
    "r1": ["10.255.0.2", "10.255.0.3", "10.0.23.0/24"],
    "r2": ["10.255.0.1", "10.255.0.3", "10.0.13.0/24"],
    "r3": ["10.255.0.1", "10.255.0.2", "10.0.12.0/24"],
}


def test_triangle_starts_zebra_then_ospfd_records_and_stops_them(state: Path) -> None:
    ex = routed_executor(TRIANGLE)
    base = daemon_base("t", state, False)
    with Lab("t", executor=ex, state_dir=state) as lab:
        examples.triangle(lab, "")
        [shlex.join(p.command.argv) for p in ex.started]
        record = Record.from_json((state / "t.json").read_text())
        made = [shlex.join(c) for c in ex.commands]
    d = f"{base}/r1"
    assert ex.started[0].command.argv == (
        *("ip", "netns", "exec", "r1", "sh", "-c", frr._BIND, "sh", d, f"{d}/zebra.log"),
        *("/usr/lib/frr/zebra", "-P", "0", "-i", f"{d}/zebra.pid", "-z", f"{d}/zserv.api"),
        *("--vty_socket", d, "-f", f"{d}/zebra.conf"),
    )
    programs = [p.command.argv[10] for p in ex.started]
    assert programs == ["/usr/lib/frr/zebra"] * 3 + ["/usr/lib/frr/ospfd"] * 3
    # one process makes the directories (the router's owned by frr) and writes the
    # files, each file's text an argv element of its own, before any start
    (write,) = [c for c in ex.calls if c.argv[:3] == ("sh", "-c", resources._WRITE)]
    words = write.argv[4:]
    assert words[:6] == (d, "frr:frr", f"{base}/r2", "frr:frr", f"{base}/r3", "frr:frr")
    files = dict(zip(words[7::2], words[8::2], strict=True))
    assert files[f"{d}/ospfd.conf"].startswith("! ospfd of r1, written by netns_kit\n")
    assert sorted(files) == sorted(
        f"{base}/r{i}/{f}" for i in (1, 2, 3) for f in ("zebra.conf", "ospfd.conf")
    )
    # one launcher a wave: the three zebras, then (their sockets there) the ospfds
    launchers = [
        c for c in ex.calls if c.argv[:2] == ("sh", "-c") and c.argv[2].startswith("exec 3")
    ]
    logs = [[f"{base}/r{i}/{p}.log" for i in (1, 2, 3)] for p in ("zebra", "ospfd")]
    assert [c.argv for c in launchers] == [
        launch_argv([p.command for p in ex.started[:3]], logs[0]),
        launch_argv([p.command for p in ex.started[3:]], logs[1]),
    ]
    (wait,) = [c for c in ex.calls if c.argv[:3] == ("sh", "-c", resources._WAIT)]
    assert wait.argv[3:] == ("sh", "10000", *(f"{base}/r{i}/zserv.api" for i in (1, 2, 3)))
    assert ex.calls.index(write) < ex.calls.index(launchers[0])
    assert ex.calls.index(launchers[0]) < ex.calls.index(wait) < ex.calls.index(launchers[1])
    daemons = [e for e in record.resources if e.kind == "daemon"]
    assert [(e.name, e.value, e.undo) for e in daemons[:1]] == [
        ("r1/zebra", f"100000 {START}", ("kill", "-KILL", "100000"))
    ]
    assert len(daemons) == 6
    dirs = [e.name for e in record.resources if e.kind == "directory"]
    assert dirs == [str(base)]  # the routers' directories are inside it
    # teardown removes the directories; the namespaces go after the daemons stopped
    after = [shlex.join(c) for c in ex.commands[len(made) :]]
    assert f"rm -rf -- {base}" in after
    assert not (state / "t.json").exists()


def test_build_waits_for_the_kernel_tables_and_names_what_is_missing(state: Path) -> None:
    ex = routed_executor({**TRIANGLE, "r3": ["10.255.0.1"]})
    lab = Lab("t", executor=ex, state_dir=state)
    with pytest.raises(NotConvergedError) as caught, lab, lab.batch():
        r = [lab.router(f"r{i}", loopback=f"10.255.0.{i}/32") for i in (1, 2, 3)]
        lab.link(r[0], r[1], addresses=("10.0.12.1/24", "10.0.12.2/24"))
        lab.link(r[1], r[2], addresses=("10.0.23.2/24", "10.0.23.3/24"))
        lab.link(r[2], r[0], addresses=("10.0.13.3/24", "10.0.13.1/24"))
        lab.ospf()
        builders_timeout(0.2)
    assert caught.value.missing == {"r3": ["10.0.12.0/24", "10.255.0.2/32"]}


def builders_timeout(seconds: float) -> None:
    from netns_kit.daemons import builders

    builders.BUILD_TIMEOUT = seconds


@pytest.fixture(autouse=True)
def _restore_timeout() -> object:
    from netns_kit.daemons import builders

    before = builders.BUILD_TIMEOUT
    yield
    builders.BUILD_TIMEOUT = before


def test_a_daemon_that_refuses_its_config_is_reported(state: Path) -> None:
    ex = routed_executor(TRIANGLE)
    ex.answer(("cat",), stdout=stat_line(100_000, state="Z"))  # it ended at once
    with (
        Lab("t", executor=ex, state_dir=state) as lab,
        pytest.raises(NetnsKitError, match="ended at once"),
    ):
        examples.triangle(lab, "", suite="bird")


@pytest.mark.parametrize(("start", "killed"), [(START, True), ("1", False)])
def test_recover_kills_a_daemon_only_if_it_is_the_same_process(
    state: Path, start: str, killed: bool
) -> None:
    registry = Registry(state)
    record = Record("t", 999_999_999)
    record.resources = [
        Entry("directory", DIR, undo=["rm", "-rf", "--", DIR]),
        Entry("namespace", "r1", undo=["ip", "netns", "delete", "r1"]),
        Entry("daemon", "r1/zebra", "r1", undo=["kill", "-KILL", "5000"], value=f"5000 {start}"),
    ]  # fmt: skip
    registry.write(record)
    ex = RecordingExecutor()
    ex.answer(("cat", "/proc/5000/stat"), stdout=stat_line(5000))
    removed = recover("t", executor=ex, state_dir=state)
    ran = [shlex.join(c) for c in ex.commands]
    assert ("kill -KILL 5000" in ran) is killed
    assert ("daemon r1/zebra" in removed) is killed
    assert "rm -rf -- /run/netns-kit-t.daemons" in ran
    if killed:  # the daemon dies before its directory goes
        assert ran.index("kill -KILL 5000") < ran.index("rm -rf -- /run/netns-kit-t.daemons")


def test_checks_before_anything_runs(state: Path) -> None:
    ex = fresh()
    with Lab("t", executor=ex, state_dir=state) as lab:
        r1 = lab.router("r1", loopback="10.255.0.1/32")
        h = lab.namespace("h")
        count = len(ex.commands)
        with pytest.raises(ValidationError, match="suite"):
            lab.ospf(suite="quagga")
        with pytest.raises(ValidationError, match="not a router"):
            lab.ospf([h])
        with pytest.raises(ValidationError, match="not a router"):
            lab.bgp(r1, asn=65001, neighbors=["h"])
        with pytest.raises(ValidationError, match="own neighbour"):
            lab.bgp(r1, asn=65001, neighbors=[r1])
        with pytest.raises(ValidationError, match="asn"):
            lab.bgp(r1, asn=-1, neighbors=[])
        with pytest.raises(ValidationError, match="networks"):
            lab.bgp(r1, asn=65001, neighbors=[], networks=["10.0.0.0/33"])
        lab.ospf([r1], suite="bird")
        with pytest.raises(ValidationError, match="already runs bird"):
            lab.bgp(r1, asn=65001, neighbors=[], suite="frr")
        with pytest.raises(ValidationError, match="loopback"):
            lab.router("r2", loopback="nope")
        with pytest.raises(ValidationError, match="not a namespace of this lab"):
            lab.daemon("elsewhere", "bird", config="router id 1.1.1.1;")
        assert len(ex.commands) == count


def test_bgp_neighbour_without_a_link_is_refused(state: Path) -> None:
    ex = fresh()
    with Lab("t", executor=ex, state_dir=state) as lab:
        a = lab.router("a", loopback="10.255.0.1/32")
        b = lab.router("b", loopback="10.255.0.2/32")
        lab.bgp(a, asn=65001, neighbors=[b])
        lab.bgp(b, asn=65002, neighbors=[a])
        with pytest.raises(ValidationError, match="has no link with a"):
            lab.converge(1)


def test_rootless_refuses_frr_and_names_bird(state: Path) -> None:
    ex = fresh()
    with Lab("t", executor=ex, state_dir=state) as lab:
        lab.sandbox = object()  # type: ignore[assignment]  # as a rootless lab has: its sandbox
        try:
            r1 = lab.router("r1", loopback="10.255.0.1/32")
            lab.ospf([r1])
            with pytest.raises(NetnsKitError, match="suite='bird'"):
                lab.converge(1)
        finally:
            lab.sandbox = None


def test_hand_written_bird_config(state: Path) -> None:
    ex = routed_executor({})
    with Lab("t", executor=ex, state_dir=state) as lab:
        r1 = lab.namespace("r1")
        lab.daemon(r1, "bird", config="router id 10.0.0.1;\nprotocol device {}\n")
        assert lab.converge(1) >= 0
        d = daemon_base("t", state, False) / "r1"
        assert [p.command.argv[9:] for p in ex.started] == [
            ("bird", "-f", "-c", f"{d}/bird.conf", "-s", f"{d}/bird.ctl", "-P", f"{d}/bird.pid")
        ]
        assert ex.started[0].command.argv[4:9] == ("sh", "-c", bird._LOGGED, "sh", f"{d}/bird.log")
        (write,) = [c for c in ex.calls if c.argv[:3] == ("sh", "-c", resources._WRITE)]
        assert write.argv[4:] == (
            *(str(d), "", "--"),
            *(f"{d}/bird.conf", "router id 10.0.0.1;\nprotocol device {}\n"),
        )


def test_across_machines_each_router_runs_on_its_own(state: Path) -> None:
    """Two routers on two machines (a VXLAN link between them): each machine makes
    its router's directory, starts its daemons and reads its table; the record says
    where each daemon runs, so that recovery kills it there."""
    from netns_kit.lab.machines import underlay_command

    machines = {}
    for host, address, router, seen in (
        ("a", "10.0.0.1", "r1", ["10.255.0.2"]),
        ("b", "10.0.0.2", "r2", ["10.255.0.1"]),
    ):
        ex = routed_executor({router: seen})
        found = [{"ifname": "eth0", "mtu": 1500, "addr_info": [{"local": address}]}]
        ex.answer(underlay_command(address).argv, stdout=json.dumps(found))
        machines[host] = ex
    underlay = {"a": "10.0.0.1", "b": "10.0.0.2"}
    with Lab("t", machines=machines, underlay=underlay, state_dir=state) as lab:
        with lab.batch():
            r1 = lab.router("r1", loopback="10.255.0.1/32", machine="a")
            r2 = lab.router("r2", loopback="10.255.0.2/32", machine="b")
            lab.link(r1, r2, addresses=("10.0.12.1/24", "10.0.12.2/24"))
            lab.ospf(suite="bird")
        record = Record.from_json((state / "t.json").read_text())
    d = daemon_base("t", state, False)
    for host, router in (("a", "r1"), ("b", "r2")):
        ex = machines[host]
        assert [p.command.argv[3] for p in ex.started] == [router]
        assert ("ip", "-n", router, "-j", "route", "show") in ex.commands
        writes = [c for c in ex.commands if c[:3] == ("sh", "-c", resources._WRITE)]
        assert [w[4:6] for w in writes] == [(f"{d}/{router}", "")]
        assert ("rm", "-rf", "--", str(d)) in ex.commands  # the lab's directory, gone
    daemons = {e.name: e.machine for e in record.resources if e.kind == "daemon"}
    assert daemons == {"r1/bird": "a", "r2/bird": "b"}


def test_a_router_reconfigured_later_is_restarted_and_its_nexthops_flushed(state: Path) -> None:
    ex = routed_executor(TRIANGLE)
    with Lab("t", executor=ex, state_dir=state) as lab:
        r = examples.triangle(lab, "")
        before = len(ex.started)
        lab.bgp(r[0], asn=65001, neighbors=[])
        assert len(ex.started) == before  # nothing runs until it is needed
        lab.converge(1)
        again = [p.command.argv[10] for p in ex.started[before:]]
        assert again == ["/usr/lib/frr/zebra", "/usr/lib/frr/ospfd", "/usr/lib/frr/bgpd"]
        assert ("ip", "-n", "r1", "nexthop", "flush") in ex.commands
        assert ("ip", "-n", "r2", "nexthop", "flush") not in ex.commands  # unchanged
        record = Record.from_json((state / "t.json").read_text())
        mine = sorted(
            e.name for e in record.resources if e.kind == "daemon" and e.namespace == "r1"
        )
        assert mine == ["r1/bgpd", "r1/ospfd", "r1/zebra"]  # the stopped ones forgotten


def test_a_router_stopped_and_started_again_as_timeline_actions(state: Path) -> None:
    """``stop``/``start`` are named actions of a timeline (and of files): the router's
    daemons end, its nexthops are flushed and its record entries go; started again,
    zebra and ospfd run anew and are recorded."""
    from netns_kit.timeline import actions

    ex = routed_executor(TRIANGLE)
    with Lab("t", executor=ex, state_dir=state) as lab:
        examples.triangle(lab, "")
        before = len(ex.started)
        stop, start = actions.named("stop"), actions.named("start")
        stop.run(lab, actions.target(lab, stop, "r2"), {})
        assert ("ip", "-n", "r2", "nexthop", "flush") in ex.commands
        record = Record.from_json((state / "t.json").read_text())
        assert not [e for e in record.resources if e.kind == "daemon" and e.namespace == "r2"]
        with pytest.raises(ValidationError, match="whose daemons run"):
            lab.stop_router("r2")  # already stopped
        start.run(lab, actions.target(lab, start, "r2"), {})
        again = [p.command.argv[10] for p in ex.started[before:]]
        assert again == ["/usr/lib/frr/zebra", "/usr/lib/frr/ospfd"]
        assert all(p.command.argv[3] == "r2" for p in ex.started[before:])
        record = Record.from_json((state / "t.json").read_text())
        mine = sorted(
            e.name for e in record.resources if e.kind == "daemon" and e.namespace == "r2"
        )
        assert mine == ["r2/ospfd", "r2/zebra"]
    with pytest.raises(ValidationError, match="not a router"):
        Lab("u", executor=fresh(), state_dir=state).start_router("nobody")


def test_a_dual_stack_build_waits_for_the_ipv6_tables_too(state: Path) -> None:
    """Routers that should route IPv6 prefixes have their IPv6 table read as well
    (``ip -6 -j route``); what is missing is named with its family's prefix."""
    ex = routed_executor(TRIANGLE)
    six = {
        "r1": ["fd00:255::2", "fd00:255::3"],
        "r2": ["fd00:255::1", "fd00:255::3"],
        "r3": ["fd00:255::1"],  # lacks r2's loopback
    }
    for router, prefixes in six.items():
        table = json.dumps([{"dst": p, "gateway": "fe80::1", "flags": []} for p in prefixes])
        ex.answer(("ip", "-n", router, "-6", "-j", "route", "show"), stdout=table)
    lab = Lab("t", executor=ex, state_dir=state)
    with pytest.raises(NotConvergedError) as caught, lab, lab.batch():
        r = [
            lab.router(f"r{i}", loopback=[f"10.255.0.{i}/32", f"fd00:255::{i}/128"])
            for i in (1, 2, 3)
        ]
        lab.link(r[0], r[1], addresses=("10.0.12.1/24", "10.0.12.2/24"))
        lab.link(r[1], r[2], addresses=("10.0.23.2/24", "10.0.23.3/24"))
        lab.link(r[2], r[0], addresses=("10.0.13.3/24", "10.0.13.1/24"))
        for x, y in ((0, 1), (1, 2), (2, 0)):  # IPv6 links: OSPFv3, no subnets to route
            lab.link(r[x], r[y], addresses=(f"fe80::{x + 1}/64", f"fe80::{y + 1}/64"))
        lab.ospf()
        builders_timeout(0.2)
    assert caught.value.missing == {"r3": ["fd00:255::2/128"]}
    reads = {c for c in ex.commands if c[3:] == ("-6", "-j", "route", "show")}
    assert reads == {("ip", "-n", r, "-6", "-j", "route", "show") for r in ("r1", "r2", "r3")}
    started = [p.command.argv for p in ex.started]
    assert sum(1 for argv in started if f"{frr.BIN}/ospf6d" in argv) == 3


def test_an_ipv4_lab_never_reads_ipv6_tables(state: Path) -> None:
    ex = routed_executor(TRIANGLE)
    with Lab("t", executor=ex, state_dir=state) as lab:
        examples.triangle(lab, "")
    assert not [c for c in ex.commands if "-6" in c]
    assert not [p for p in ex.started if f"{frr.BIN}/ospf6d" in p.command.argv]


def test_the_directories_of_one_machine_have_one_owner() -> None:
    """One ``chown`` makes every owned directory FRR's: two owners are refused."""
    with pytest.raises(ValueError, match="one owner"):
        resources.write_step([("/a", "frr:frr"), ("/b", "bird:bird")], [])
    step = resources.write_step([("/a", "frr:frr"), ("/b", None)], [("/a/f", "x")])
    assert step.command.argv[3:] == ("sh", "/a", "frr:frr", "/b", "", "--", "/a/f", "x")


def test_the_record_holds_each_pid_and_start_time_before_anything_else_runs(
    state: Path,
) -> None:
    """The launcher's answer (PID, start time) is in the record on disk before the
    next command runs: a crash right after a start still lets recovery kill it."""
    seen: list[list[str | None]] = []
    ex = routed_executor(TRIANGLE)
    execute = ex.execute

    def watching(command: Command, timeout: float | None = None) -> Result:
        if command.argv[0] == "cat" and command.argv[1].startswith("/proc/"):
            record = Record.from_json((state / "t.json").read_text())
            seen.append([e.value for e in record.resources if e.kind == "daemon"])
        return execute(command, timeout)

    setattr(ex, "execute", watching)  # noqa: B010  (a method of this one fake)
    with Lab("t", executor=ex, state_dir=state) as lab:
        examples.triangle(lab, "", suite="bird")
    assert seen[0] == [f"{100_000 + i} {START}" for i in range(3)]
