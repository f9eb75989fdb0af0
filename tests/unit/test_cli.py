"""The ``netns-kit`` command: argument handling, exit codes and output, on a fake executor."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from netns_kit import RecordingExecutor, ShellExecutor, cli
from netns_kit.command import ip
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Entry
from netns_kit.record.registry import Record, Registry
from netns_kit.spec import BridgeSpec, LinkSpec, RouteSpec

from .conftest import ctrl_c

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "scripts" / "labs"
BRIDGE = str(LABS / "bridge.toml")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Run:
    """One invocation: exit code, stdout, stderr, and what the fake executor saw."""

    def __init__(self, code: int, out: str, err: str, ex: RecordingExecutor) -> None:
        self.code, self.out, self.err, self.ex = code, out, err, ex

    @property
    def lines(self) -> list[str]:
        return [" ".join(argv) for argv in self.ex.commands]


Invoke = Callable[..., Run]


@pytest.fixture
def run(state: Path) -> Invoke:
    def invoke(
        *argv: str, ex: RecordingExecutor | None = None, err: io.StringIO | None = None
    ) -> Run:
        ex = ex or RecordingExecutor()
        out, err = io.StringIO(), err or io.StringIO()
        code = cli.main(["--state-dir", str(state), *argv], executor=ex, stdout=out, stderr=err)
        return Run(code, out.getvalue(), err.getvalue(), ex)

    return invoke


def namespaces_answer(ex: RecordingExecutor, *names: str) -> None:
    ex.answer(["ip", "-j", "netns", "list"], stdout=json.dumps([{"name": n} for n in names]))


def tagged_lo(ex: RecordingExecutor, lab: str, *names: str) -> None:
    """Make each namespace look like the lab's own (lo carries the lab's alias)."""
    lo = json.dumps([{"ifindex": 1, "ifname": "lo", "ifalias": f"netns-kit:{lab}"}])
    for name in names:
        ex.answer(["ip", "-n", name, "-j", "link", "show"], stdout=lo)


# -- usage ---------------------------------------------------------------------------


def test_no_command_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: netns-kit" in capsys.readouterr().err


def test_unknown_command_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deploy", "x.toml"]) == 2
    assert "invalid choice: 'deploy'" in capsys.readouterr().err


def test_missing_argument_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["up"]) == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    help_text = capsys.readouterr().out
    for command in ("up", "down", "ls", "show", "exec", "script", "graph", "cleanup", "validate"):
        assert f"    {command} " in help_text
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("netns-kit 0.")


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "netns_kit", "validate", BRIDGE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "OK: isolated lab 'bridge'" in done.stdout


# -- validate, script, graph -----------------------------------------------------------


def test_validate_ok(run: Invoke) -> None:
    result = run("validate", BRIDGE)
    assert result.code == 0
    assert result.out == (
        f"{BRIDGE}: OK: isolated lab 'bridge': 2 namespaces, 1 bridge, 2 links, 0 routes\n"
    )
    assert result.ex.commands == []


def test_validate_bad_file_exits_2_with_every_problem(run: Invoke, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nnamespaces = ["a"]\n[[links]]\na = "a"\nb = "b"\nmut = 1\n')
    result = run("validate", str(bad))
    assert result.code == 2
    assert result.err == (
        f"netns-kit: {bad}: 2 problems:\n"
        "  links[0].mut: unknown key (did you mean 'mtu'?)\n"
        "  links[0].b: 'b' is not a namespace or bridge of this lab (defined: a)\n"
    )
    assert "Traceback" not in result.err


def test_validate_missing_file(run: Invoke, tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.toml"))
    assert result.code == 2
    assert result.err == f"netns-kit: {tmp_path / 'nope.toml'}: no such file\n"


@pytest.mark.parametrize("command", ["validate", "up", "script", "graph"])
@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("digits.toml", "name = " + "9" * 5000 + "\n", "more than 4,300 digits"),
        ("deep.toml", "namespaces = " + "[" * 600 + "]" * 600 + "\n", "nested too deeply"),
        ("deep.yaml", "namespaces: " + "[" * 600 + "]" * 600 + "\n", "nested too deeply"),
        ("long.toml", "name = '" + "x" * 10**6 + "'\n", "is longer than 64 bytes"),
    ],
    ids=["digits", "deep-toml", "deep-yaml", "long-name"],
)
def test_a_hostile_file_exits_2_with_a_short_message_and_runs_nothing(
    run: Invoke, state: Path, tmp_path: Path, command: str, name: str, text: str, said: str
) -> None:
    hostile = tmp_path / name
    hostile.write_text(text)
    result = run(command, str(hostile))
    assert result.code == 2
    assert result.err.startswith(f"netns-kit: {hostile}: ")
    assert said in result.err
    assert len(result.err) < 500
    assert "Traceback" not in result.err
    assert result.ex.commands == []
    assert not state.exists() or not list(state.iterdir())


def test_script_prints_what_up_would_run(run: Invoke, state: Path) -> None:
    result = run("script", BRIDGE)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[:3] == ["#!/usr/bin/env bash", "set -euo pipefail", "ip netns add bridge-host"]
    assert "ip netns add red" in lines
    assert (
        "ip link add name veth-red netns red index 1000001 type veth "
        "peer name veth-red-br netns bridge-host" in lines
    )
    assert "ip -n bridge-host link set dev veth-red-br master v-net-0" in lines
    assert "ip -n red addr add 192.168.15.1/24 dev veth-red" in lines
    assert result.ex.commands == [], "a dry run runs nothing"
    assert not state.exists() or not list(state.iterdir()), "a dry run records no lab"


def test_script_teardown(run: Invoke) -> None:
    result = run("script", "--teardown", str(LABS / "router-nat.toml"))
    assert result.code == 0
    assert result.out.splitlines() == [
        "#!/usr/bin/env bash",
        "set -uo pipefail",
        "ip netns delete outside",
        "ip netns delete blue",
        "ip netns delete red",
        "ip netns delete router-nat-host",
    ]


def test_script_of_a_lab_on_two_machines_says_which_line_is_for_which(run: Invoke) -> None:
    result = run("script", str(LABS / "two-machines.toml"))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines.count("ip netns add two-machines-host") == 2  # a host side on each
    machine, made = None, {}
    for line in lines:
        if line.startswith("# on machine "):
            machine = line.split()[-1]
        elif "type vxlan" in line:
            made[machine] = line
    assert set(made) == {"a", "b"}
    assert " local 10.0.0.1 remote 10.0.0.2 " in made["a"]
    assert " local 10.0.0.2 remote 10.0.0.1 " in made["b"]
    assert result.ex.commands == [], "a dry run runs nothing"


@pytest.mark.parametrize(("fmt", "start"), [("mermaid", "flowchart"), ("dot", "graph ")])
def test_graph_of_a_file(run: Invoke, fmt: str, start: str) -> None:
    result = run("graph", "--format", fmt, BRIDGE)
    assert result.code == 0
    assert result.out.startswith(start)
    assert "v-net-0" in result.out and "veth-red" in result.out


def test_graph_bad_format_is_usage(run: Invoke) -> None:
    assert run("graph", "--format", "svgz", BRIDGE).code == 2


# -- up / ls / down ----------------------------------------------------------------------


def test_up_builds_keeps_and_prints_a_table(run: Invoke, state: Path) -> None:
    result = run("up", BRIDGE)
    assert result.code == 0, result.err
    assert "ip netns add red" in result.lines
    assert "ip -n bridge-host addr add 192.168.15.5/24 dev v-net-0" in result.lines
    record = Registry(state).read("bridge")
    assert record is not None and record.state == "kept"
    rows = [line.split(maxsplit=3) for line in result.out.splitlines()]
    assert ["bridge-host", "v-net-0", "192.168.15.5/24", "bridge"] in rows
    assert ["bridge-host", "veth-red-br", "port", "of v-net-0"] in rows
    assert ["red", "veth-red", "192.168.15.1/24", "veth to v-net-0 (veth-red-br)"] in rows
    assert result.out.rstrip().endswith("Tear it down with: netns-kit down bridge")
    assert result.err == "", "no progress when stderr is not a terminal"


class InterruptedWhilePrinting(io.StringIO):
    """Stdout that gets a Ctrl-C (a real SIGINT to this process) as the table prints."""

    def write(self, text: str) -> int:
        if "NAMESPACE" in text:
            ctrl_c()
        return super().write(text)


@pytest.mark.usefixtures("interruptible")
def test_a_ctrl_c_while_up_prints_its_table_still_finishes_up(state: Path) -> None:
    """Issue 9: it used to exit 130 ("interrupted") and leave the lab standing."""
    ex, out, err = RecordingExecutor(), InterruptedWhilePrinting(), io.StringIO()
    code = cli.main(["--state-dir", str(state), "up", BRIDGE], executor=ex, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert "is up.  Tear it down with" in out.getvalue()
    assert "interrupted after the lab was built: it is up" in err.getvalue()
    record = Registry(state).read("bridge")
    assert record is not None and record.state == "kept"


@pytest.mark.real_executor  # the default executor's own behaviour
def test_the_command_releases_its_executors_threads_before_exit(
    mocker: MockerFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 9: a pool left for the interpreter to join at exit turned a Ctrl-C at that
    moment into "Exception ignored ... KeyboardInterrupt"."""
    close = mocker.patch.object(ShellExecutor, "close")
    assert cli.main(["validate", BRIDGE]) == 0
    close.assert_called_once_with()


def test_up_of_a_lab_across_machines_reaches_them_over_ssh(
    mocker: MockerFixture, state: Path
) -> None:
    """The file's [machines] table says how to reach each machine: `up` must not hand the
    lab this machine's executor (which the lab would use for every machine)."""

    class Stop(Exception):
        pass

    built = mocker.patch("netns_kit.cli.Lab.from_topology", side_effect=Stop)
    with pytest.raises(Stop):
        cli.main(["--state-dir", str(state), "up", str(LABS / "two-machines.toml")])
    options = built.call_args.kwargs
    assert options["executor"] is None and options["rootless"] is None


def test_up_twice_is_refused(run: Invoke) -> None:
    assert run("up", BRIDGE).code == 0
    again = run("up", BRIDGE)
    assert again.code == 1
    assert "lab 'bridge' is already up; `netns-kit down bridge` first" in again.err
    assert again.ex.commands == []


def test_up_with_another_name(run: Invoke, state: Path) -> None:
    result = run("up", "--name", "b2", BRIDGE)
    assert result.code == 0, result.err
    assert "ip netns add b2-host" in result.lines
    assert Registry(state).read("b2") is not None


def test_up_with_a_bad_name_changes_nothing(run: Invoke) -> None:
    result = run("up", "--name", "no way", BRIDGE)
    assert result.code == 2
    assert "name: 'no way' holds ' '" in result.err
    assert result.ex.commands == []


def test_a_failing_command_exits_1_names_it_and_undoes_the_lab(run: Invoke, state: Path) -> None:
    ex = RecordingExecutor()
    ex.answer(
        ["ip", "link", "add", "name", "veth-blue"],
        stderr="RTNETLINK answers: File exists",
        returncode=2,
    )
    result = run("up", BRIDGE, ex=ex)
    assert result.code == 1
    assert "ip link add name veth-blue netns blue index 1000002 type veth" in result.err
    assert "File exists" in result.err
    assert "Traceback" not in result.err
    assert "ip netns delete bridge-host" in result.lines, "the half-built lab is torn down"
    assert Registry(state).read("bridge") is None


def test_verbose_prints_every_command(run: Invoke) -> None:
    result = run("-v", "up", BRIDGE)
    assert result.code == 0
    echoed = [line[2:] for line in result.err.splitlines() if line.startswith("+ ")]
    assert echoed == result.lines


def test_progress_on_a_terminal(run: Invoke, tmp_path: Path) -> None:
    many = tmp_path / "many.toml"
    body = 'name = "many"\nnamespaces = [' + ", ".join(f'"n{i}"' for i in range(30)) + "]\n"
    body += '[[bridges]]\nname = "br0"\n'
    body += "".join(f'[[links]]\na = "n{i}"\nb = "br0"\n' for i in range(30))
    many.write_text(body)
    terminal = Terminal()
    result = run("up", str(many), err=terminal)
    assert result.code == 0, result.err
    parts = [part.removesuffix("\033[K") for part in result.err.split("\r")]
    shown = [part for part in parts if part]
    assert all(line.startswith(f"lab {many.stem}: ") for line in shown), shown
    phases = [line.split(": ")[1].split(" ")[0] for line in shown]
    assert {"namespaces", "links", "settings"} <= set(phases)
    # each phase ends counted whole: "links 31/31 (0.0 s)"
    ends = [line for line in shown if "links" in line]
    done, total = ends[-1].split("links ")[1].split(" ")[0].split("/")
    assert done == total
    assert result.err.endswith("\r\033[K")  # the line is cleared when the build ends
    assert quiet_run(run, many) == ""


def quiet_run(run: Invoke, path: Path) -> str:
    """``--quiet`` on a terminal: nothing on stderr."""
    run("down", path.stem)
    return run("--quiet", "up", str(path), err=Terminal()).err


def test_ls_down_and_ls_again(run: Invoke, state: Path) -> None:
    assert run("up", BRIDGE).code == 0
    ex = RecordingExecutor()
    namespaces_answer(ex, "bridge-host", "red", "blue")
    listed = run("ls", ex=ex)
    assert listed.code == 0
    assert listed.out.splitlines()[0].split() == ["NAME", "STATE", "ISOLATED", "NAMESPACES", "PID"]
    assert listed.out.splitlines()[1].split()[:4] == ["bridge", "up", "yes", "2"]

    ex = RecordingExecutor()
    namespaces_answer(ex, "bridge-host", "red")  # blue went missing
    as_json = json.loads(run("ls", "--json", ex=ex).out)
    assert as_json[0]["name"] == "bridge" and as_json[0]["state"] == "partial"

    ex = RecordingExecutor()
    namespaces_answer(ex, "bridge-host", "red", "blue")
    tagged_lo(ex, "bridge", "bridge-host", "red", "blue")
    down = run("down", "bridge", ex=ex)
    assert down.code == 0, down.err
    assert down.out == "lab 'bridge' is down (3 resources removed)\n"
    assert {"ip netns delete red", "ip netns delete blue", "ip netns delete bridge-host"} <= set(
        down.lines
    )
    assert Registry(state).read("bridge") is None
    assert run("ls").out.startswith("no labs")


def test_down_leaves_what_is_not_the_labs(run: Invoke) -> None:
    assert run("up", BRIDGE).code == 0
    ex = RecordingExecutor()
    namespaces_answer(ex, "bridge-host", "red", "blue")
    tagged_lo(ex, "bridge", "bridge-host", "blue")  # red is somebody else's now
    ex.answer(
        ["ip", "-n", "red", "-j", "link", "show"],
        stdout=json.dumps([{"ifname": "lo", "ifalias": "someone-else", "flags": ["UP"]}]),
    )
    assert run("down", "bridge", ex=ex).code == 0
    deleted = [line for line in (" ".join(a) for a in ex.commands) if "netns delete" in line]
    assert deleted == ["ip netns delete blue", "ip netns delete bridge-host"]


def test_down_unknown_lab(run: Invoke) -> None:
    result = run("down", "nope")
    assert result.code == 1
    assert "no lab named 'nope'" in result.err


def test_down_bad_name_is_usage(run: Invoke) -> None:
    result = run("down", "../etc")
    assert result.code == 2
    assert "forbidden character '/'" in result.err


def test_cleanup_removes_stale_labs_only(run: Invoke, state: Path) -> None:
    registry = Registry(state)
    registry.write(
        Record(
            "crashed",
            pid=999_999,
            state="building",
            resources=[Entry("namespace", "c-red")],
        )
    )
    registry.write(
        Record("kept", pid=999_998, state="kept", resources=[Entry("namespace", "k-red")])
    )
    ex = RecordingExecutor()
    namespaces_answer(ex, "c-red", "k-red")
    tagged_lo(ex, "crashed", "c-red")
    result = run("cleanup", ex=ex)
    assert result.code == 0, result.err
    assert result.out == "lab 'crashed': removed 1 resource\n"
    assert "ip netns delete c-red" in result.lines
    assert not any("k-red" in line and "delete" in line for line in result.lines)
    assert registry.read("crashed") is None
    assert registry.read("kept") is not None
    assert run("cleanup").out == "no stale labs\n"


def test_ls_states(run: Invoke, state: Path) -> None:
    registry = Registry(state)
    registry.write(Record("dead", pid=999_999, state="up"))
    with registry.held("alive"):
        registry.write(Record("alive", pid=os.getpid(), state="up"))
        result = run("ls", "--json")
    states = {lab["name"]: lab["state"] for lab in json.loads(result.out)}
    assert states == {"alive": "open", "dead": "stale"}


# -- show / exec ------------------------------------------------------------------------


def lab_with_record(state: Path) -> None:
    Registry(state).write(
        Record(
            "demo",
            pid=999_999,
            isolated=True,
            host_side="demo-host",
            state="kept",
            resources=[
                Entry("namespace", "demo-host"),
                Entry("namespace", "red"),
            ],
        )
    )


def test_show_json(run: Invoke, state: Path) -> None:
    lab_with_record(state)
    ex = RecordingExecutor()
    namespaces_answer(ex, "demo-host", "red")
    links = [
        {
            "ifindex": 1,
            "ifname": "lo",
            "operstate": "UNKNOWN",
            "mtu": 65536,
            "link_type": "loopback",
        },
        {
            "ifindex": 2,
            "ifname": "veth-red",
            "operstate": "UP",
            "mtu": 1500,
            "linkinfo": {"info_kind": "veth"},
        },
    ]
    addresses = [
        {
            "ifname": "veth-red",
            "addr_info": [
                {"family": "inet", "local": "192.168.15.1", "prefixlen": 24, "scope": "global"}
            ],
        }
    ]
    # one process reads the namespace: a JSON list per batch line (links, addresses,
    # IPv4 routes, IPv6 routes)
    read = "\n".join([json.dumps(links), json.dumps(addresses), "[]", "[]"]) + "\n"
    ex.answer(["ip", "-n", "red", "-d", "-j", "-force", "-batch", "-"], stdout=read)
    result = run("show", "--json", "demo", ex=ex)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["name"] == "demo" and data["host_side"] == "demo-host" and data["missing"] == []
    assert [ns["name"] for ns in data["namespaces"]] == ["demo-host", "red"]
    red = data["namespaces"][1]
    assert [link["name"] for link in red["links"]] == ["lo", "veth-red"]
    assert red["addresses"][0]["address"] == "192.168.15.1/24"


def test_show_names_missing_namespaces(run: Invoke, state: Path) -> None:
    lab_with_record(state)
    ex = RecordingExecutor()
    namespaces_answer(ex, "demo-host")
    result = run("show", "demo", ex=ex)
    assert result.code == 0
    assert result.out.rstrip().endswith("missing namespaces: red")
    assert not any(" red " in f" {line} " and "-n red" in line for line in result.lines)


def test_exec_runs_in_the_namespace_and_passes_the_exit_code(run: Invoke, state: Path) -> None:
    """exec runs attached to the terminal (the executor's interact), so its output goes
    straight to the caller's stdout, not through the command's streams."""
    lab_with_record(state)
    ex = RecordingExecutor()
    result = run("exec", "demo", "red", "--", "ping", "-c1", "192.168.15.2", ex=ex)
    assert result.code == 0
    assert ex.commands == [("ip", "netns", "exec", "red", "ping", "-c1", "192.168.15.2")]
    assert [command.argv for command, _ in ex.interacted] == ex.commands

    ex = RecordingExecutor()
    ex.answer(["ip", "netns", "exec", "red", "false"], stderr="oops\n", returncode=3)
    failed = run("exec", "demo", "red", "--", "false", ex=ex)
    assert failed.code == 3


def test_exec_refuses_a_namespace_of_no_lab(run: Invoke, state: Path) -> None:
    lab_with_record(state)
    result = run("exec", "demo", "blue", "--", "true")
    assert result.code == 2
    assert "'blue' is not a namespace of lab 'demo' (it has: demo-host, red)" in result.err
    assert result.ex.commands == []


def test_exec_needs_a_command(run: Invoke, state: Path) -> None:
    lab_with_record(state)
    result = run("exec", "demo", "red", "--")
    assert result.code == 2
    assert "no command given" in result.err


# -- executors -----------------------------------------------------------------------


def test_sudo_uses_a_sudo_executor(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["--state-dir", str(tmp_path), "--sudo", "ls"])
    ctx = cli._Context(args, None, io.StringIO(), io.StringIO())
    assert isinstance(ctx.base, ShellExecutor) and ctx.base.sudo is True
    plain = cli.build_parser().parse_args(["--state-dir", str(tmp_path), "ls"])
    assert not getattr(cli._Context(plain, None, io.StringIO(), io.StringIO()).base, "sudo", False)


def test_sudo_user_gets_a_state_dir_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("NETNS_KIT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    args = cli.build_parser().parse_args(["--sudo", "ls"])
    ctx = cli._Context(args, None, io.StringIO(), io.StringIO())
    assert ctx.state_dir == tmp_path / "netns-kit-1000"
    assert not ctx.rootless  # --sudo: the machine's namespaces, through sudo


def test_watched_prints_every_command_of_a_batch_and_hands_it_on() -> None:
    inner, echo = RecordingExecutor(), io.StringIO()
    watched = cli.Watched(inner, echo=echo)
    report = Runner(watched).run_all([ip("netns", "add", "a"), ip("netns", "add", "b")])
    assert report.ok
    assert echo.getvalue() == "+ ip netns add a\n+ ip netns add b\n"
    assert [r.argv for r in inner.runs] == [("ip", "-batch", "-")]


def test_graph_of_a_running_lab_is_rebuilt_from_the_kernel() -> None:
    from netns_kit.readback.reader import (
        AddressInfo,
        LinkInfo,
        NamespaceState,
        PeerInfo,
        RouteInfo,
        Snapshot,
    )
    from netns_kit.topology.observed import topology_of

    host = NamespaceState(
        "demo-host",
        (
            LinkInfo("lo", "loopback", "UNKNOWN", 65536),
            LinkInfo("v-net-0", "bridge", "UP", 1500),
            LinkInfo(
                "veth-red-br",
                "veth",
                "UP",
                1500,
                master="v-net-0",
                peer=PeerInfo("veth-red", "red", 2, 1),
            ),
        ),
        (AddressInfo("v-net-0", "192.168.15.5/24", "inet", "global"),),
    )
    red = NamespaceState(
        "red",
        (
            LinkInfo("veth-red", "veth", "UP", 1500, peer=PeerInfo("veth-red-br", "demo-host")),
            LinkInfo("red-blue", "veth", "UP", 1500, peer=PeerInfo("blue-red", "blue")),
        ),
        (
            AddressInfo("veth-red", "192.168.15.1/24", "inet", "global"),
            AddressInfo("veth-red", "fe80::1/64", "inet6", "link"),
        ),
        (
            RouteInfo("default", "192.168.15.5", "veth-red", "boot", "global", "inet"),
            RouteInfo("192.168.15.0/24", None, "veth-red", "kernel", "link", "inet"),
        ),
    )
    blue = NamespaceState(
        "blue", (LinkInfo("blue-red", "veth", "UP", 1500, peer=PeerInfo("red-blue", "red")),)
    )
    topo = topology_of(
        Snapshot((host, red, blue)), name="demo", isolated=True, host_side="demo-host"
    )
    assert topo.namespaces == ("red", "blue")
    assert topo.bridges == (BridgeSpec("v-net-0", "192.168.15.5/24"),)
    assert topo.links == (
        LinkSpec("red", "v-net-0", ("veth-red", "veth-red-br"), ("192.168.15.1/24", None)),
        LinkSpec("red", "blue", ("red-blue", "blue-red")),
    )
    assert topo.routes == (RouteSpec("default", "192.168.15.5", "veth-red", "red"),)
