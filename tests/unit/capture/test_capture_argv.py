"""lab.capture with the recording executor: exact argv of every form, validation
before anything runs, the lab's record, and teardown."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs
import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.capture.capture import (
    CaptureError,
    Leg,
    _bring_back,
    record_entry,
    tcpdump_argv,
    tcpdump_command,
)
from netns_kit.capture.where import Tap
from netns_kit.capture.writer import writer_argv
from netns_kit.command import Command
from netns_kit.executors import Process
from netns_kit.executors.base import FinishedProcess
from netns_kit.executors.sandbox import SandboxExecutor
from netns_kit.result import Result

LISTENING = (
    "tcpdump: listening on veth, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
)


def ready(ex: RecordingExecutor) -> RecordingExecutor:
    ex.answer(("ip", "netns", "exec"), stderr=LISTENING)
    return ex


@pytest.fixture
def lab(tmp_path: Path) -> Any:
    ex = ready(RecordingExecutor())
    lab = Lab("t", executor=ex, state_dir=tmp_path / "state")
    lab.open()
    red, blue = lab.namespace("red"), lab.namespace("blue")
    lab.pair = lab.link(  # type: ignore[attr-defined]
        red, blue, addresses=("10.0.0.1/24", "10.0.0.2/24"), names=("vr", "vb")
    )
    lab.br = lab.bridge("br0", namespace="blue")  # type: ignore[attr-defined]
    yield lab
    lab.close()


def started(lab: Any) -> list[tuple[str, ...]]:
    return [p.command.argv for p in lab.ex.started]


def tcpdump(ns: str, interface: str, file: str, *extra: str) -> tuple[str, ...]:
    return (
        "ip", "netns", "exec", ns,
        "tcpdump", "-n", "-U", "--immediate-mode", "-i", interface, "-w", file, *extra,
    )  # fmt: skip


def test_argv_forms() -> None:
    assert tcpdump_argv("vr", file="/x/a.pcap") == (
        "tcpdump", "-n", "-U", "--immediate-mode", "-i", "vr", "-w", "/x/a.pcap",
    )  # fmt: skip
    full = tcpdump_argv("any", file="-", filter="icmp or arp", snaplen=96, count=5)
    assert full == (
        "tcpdump", "-n", "-U", "--immediate-mode", "-i", "any", "-w", "-",
        "-s", "96", "-c", "5", "--", "icmp or arp",
    )  # fmt: skip
    assert tcpdump_argv("vr", file=None, filter="-x") == (
        "tcpdump", "-n", "-l", "--immediate-mode", "-i", "vr", "--", "-x",
    )  # fmt: skip
    command = tcpdump_command(Tap("red", "vr", "a"), file="/f.pcap")
    assert command.argv == tcpdump("red", "vr", "/f.pcap")
    assert command.machine == "a" and command.namespace == "red"
    assert tcpdump_command(Tap(None, "vr"), file="/f.pcap").argv[:2] == ("tcpdump", "-n")


def test_one_end(lab: Any, tmp_path: Path) -> None:
    cap = lab.capture(lab.pair.end, file=tmp_path / "a.pcap", filter="icmp", count=3, snaplen=128)
    assert started(lab) == [
        tcpdump("red", "vr", str(tmp_path / "a.pcap"), "-s", "128", "-c", "3", "--", "icmp")
    ]
    assert cap.path == tmp_path / "a.pcap"
    cap.stop()


def test_a_link_is_both_ends_in_two_files(lab: Any, tmp_path: Path) -> None:
    cap = lab.capture(lab.pair, file=tmp_path / "l.pcap")
    assert started(lab) == [
        tcpdump("red", "vr", str(tmp_path / "l-red-vr.pcap")),
        tcpdump("blue", "vb", str(tmp_path / "l-blue-vb.pcap")),
    ]
    assert cap.paths == [tmp_path / "l-red-vr.pcap", tmp_path / "l-blue-vb.pcap"]


@pytest.mark.parametrize(
    ("where", "ns", "interface"),
    [
        ("red:vr", "red", "vr"),
        ("blue:vb", "blue", "vb"),
        ("red", "red", "any"),
        ("red:any", "red", "any"),
        ("red:lo", "red", "lo"),
    ],
)
def test_text_and_namespaces(lab: Any, where: str, ns: str, interface: str) -> None:
    cap = lab.capture(where)
    (argv,) = started(lab)
    assert argv[:4] == ("ip", "netns", "exec", ns) and argv[9] == interface
    assert cap.path.name == "capture.pcap" and cap.path.parent.is_dir()


def test_objects(lab: Any) -> None:
    lab.capture(lab.pair.peer_end)
    lab.capture(lab.br)
    lab.capture(lab.held.namespaces["red"])
    assert [(a[3], a[9]) for a in started(lab)] == [("blue", "vb"), ("blue", "br0"), ("red", "any")]


def test_a_topology_link(lab: Any) -> None:
    (spec,) = lab.held.links()
    lab.capture(spec)
    assert [(a[3], a[9]) for a in started(lab)] == [("red", "vr"), ("blue", "vb")]


@pytest.mark.parametrize(
    ("where", "options", "field"),
    [
        ("red:nope", {}, "where"),
        ("green", {}, "where"),
        ("green:vr", {}, "where"),
        ("red:bad/name", {}, "where"),
        (42, {}, "where"),
        ("red", {"filter": ""}, "filter"),
        ("red", {"filter": "icmp\n"}, "filter"),
        ("red", {"file": "/tmp/x.txt"}, "file"),
        ("red", {"file": "/no/such/dir/x.pcap"}, "file"),
        ("red", {"snaplen": 0}, "snaplen"),
        ("red", {"snaplen": 10**6}, "snaplen"),
        ("red", {"count": -1}, "count"),
        ("red", {"count": True}, "count"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    lab: Any, where: object, options: dict[str, Any], field: str
) -> None:
    before = list(lab.ex.commands)
    with pytest.raises(ValidationError) as error:
        lab.capture(where, **options)
    assert error.value.field == field
    assert lab.ex.commands == before and not lab.ex.started


def test_recorded_while_it_runs_and_forgotten_after(lab: Any) -> None:
    cap = lab.capture("red:vr")
    record = json.loads(lab.registry.record_path("t").read_text())
    (entry,) = [e for e in record["resources"] if e["kind"] == "process"]
    pid = lab.ex.started[0].pid
    assert entry["undo"] == ["kill", "-TERM", str(pid)]
    assert entry["check"][:2] == ["sh", "-c"] and entry["check"][-2] == str(pid)
    assert entry["name"] == "tcpdump red:vr"
    cap.stop()
    record = json.loads(lab.registry.record_path("t").read_text())
    assert not [e for e in record["resources"] if e["kind"] == "process"]


def test_the_lab_stops_captures_and_removes_its_own_files(tmp_path: Path) -> None:
    ex = ready(RecordingExecutor())
    with Lab("t", executor=ex, state_dir=tmp_path / "state") as lab:
        lab.namespace("red")
        mine = lab.capture("red")
        theirs = lab.capture("red", file=tmp_path / "keep.pcap")
        (tmp_path / "keep.pcap").write_bytes(b"x")
        assert mine.path.parent.is_dir()
    assert not mine.path.parent.exists()
    assert (tmp_path / "keep.pcap").exists()
    assert repr(theirs).startswith("<Capture stopped")


def test_a_tcpdump_that_fails_says_why(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    said = "tcpdump: can't parse filter expression: syntax error\n"
    ex.answer(("ip", "netns", "exec"), stderr=said, returncode=1)
    with Lab("t", executor=ex, state_dir=tmp_path / "state") as lab:
        lab.namespace("red")
        with pytest.raises(CaptureError, match="syntax error"):
            lab.capture("red", filter="icmp and and")
        assert not lab.captures


BPF = "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n"


def test_a_packet_socket_filter_is_compiled_by_tcpdump_first(tmp_path: Path) -> None:
    ex = ready(RecordingExecutor())
    ex.captures_with_packet_socket = True  # type: ignore[attr-defined]
    ex.answer(("tcpdump", "-ddd"), stdout=BPF)
    with Lab("t", executor=ex, state_dir=tmp_path / "state") as lab:
        lab.namespace("red")
        before = len(ex.commands)
        lab.capture("red:lo", filter="ip")
        assert ex.commands[before] == ("tcpdump", "-ddd", "-y", "EN10MB", "--", "ip")
        (started,) = ex.started
        assert started.command.inside is not None and started.command.inside[-1] == BPF


def test_a_filter_tcpdump_cannot_compile_is_refused(tmp_path: Path) -> None:
    ex = ready(RecordingExecutor())
    ex.captures_with_packet_socket = True  # type: ignore[attr-defined]
    said = "tcpdump: can't parse filter expression: syntax error\n"
    ex.answer(("tcpdump", "-ddd"), stderr=said, returncode=1)
    with Lab("t", executor=ex, state_dir=tmp_path / "state") as lab:
        lab.namespace("red")
        made = set(Path(tempfile.gettempdir()).glob("netns-kit-t-capture-*"))
        with pytest.raises(ValidationError) as error:
            lab.capture("red", filter="ip and and")
        assert error.value.field == "filter" and "syntax error" in str(error.value)
        assert not ex.started
        assert set(Path(tempfile.gettempdir()).glob("netns-kit-t-capture-*")) == made


def test_an_executor_that_captures_with_packet_sockets_gets_the_writer(tmp_path: Path) -> None:
    ex = ready(RecordingExecutor())
    ex.captures_with_packet_socket = True  # type: ignore[attr-defined]
    with Lab("t", executor=ex, state_dir=tmp_path / "state") as lab:
        lab.namespace("red")
        lab.capture("red:lo", file=tmp_path / "w.pcap", count=5, snaplen=100)
        (command,) = [p.command for p in ex.started]
    assert command.argv[:4] == ("ip", "netns", "exec", "red")
    assert command.inside is not None
    python, flag, program, *args = command.inside
    assert (python, flag) == (sys.executable, "-c") and "AF_PACKET" in program
    assert args == ["lo", str(tmp_path / "w.pcap"), "100", "5"]
    assert writer_argv("any", "/f.pcap", None, None)[3:] == ("any", "/f.pcap", "262144", "0")


def test_the_sandbox_executor_captures_with_packet_sockets() -> None:
    assert SandboxExecutor.captures_with_packet_socket is True
    assert not getattr(RecordingExecutor(), "captures_with_packet_socket", False)


def test_record_entry_check_compares_start_time() -> None:
    entry = record_entry(Tap("red", "vr", "b"), 123, 456)
    assert entry.kind == "process" and entry.machine == "b" and entry.namespace is None
    assert entry.check is not None and entry.check[-2:] == ("123", "456")
    assert entry.value == "456"


def test_a_remote_file_is_brought_back(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    ex.answer(("base64",), stdout="AQID\n")

    @attrs.define
    class Journal:
        runner: Any

    from netns_kit.engine.runner import Runner

    fake = attrs.make_class("FakeLab", ["journal"])(Journal(Runner(ex)))
    process = Process(Command(("x",)), FinishedProcess(Result(("x",), 0), pid=1))
    leg = Leg(Tap("red", "vr", "b"), tmp_path / "a.pcap", process, remote="/tmp/r.pcap")
    _bring_back(fake, leg)
    assert (tmp_path / "a.pcap").read_bytes() == b"\x01\x02\x03"
    assert ex.commands == [("base64", "--", "/tmp/r.pcap"), ("rm", "-f", "--", "/tmp/r.pcap")]
    assert [c.machine for c in ex.calls] == ["b", "b"]


def test_stop_sends_sigint() -> None:
    sent: list[int] = []

    class Handle:
        pid = 7

        def alive(self) -> bool:
            return True

        def signal(self, signum: int) -> None:
            sent.append(signum)

        def wait(self, timeout: float | None) -> Result:
            return Result(("tcpdump",), 0)

        def said(self) -> tuple[str, str]:
            return "", ""

    Process(Command(("tcpdump",)), Handle()).stop(1.0, signum=signal.SIGINT)
    assert sent == [signal.SIGINT]


def test_across_machines_tcpdump_writes_on_the_ends_machine_and_the_file_comes_back(
    tmp_path: Path,
) -> None:
    from ..lab.test_machines import UNDERLAY, machine

    a, b = machine("eth0", "10.0.0.1"), machine("ens3", "10.0.0.2")
    for ex in (a, b):
        ready(ex)
    b.answer(("base64",), stdout="1MOyoQ==\n")  # the pcap magic, as base64 carries it
    lab = Lab("t", machines={"a": a, "b": b}, underlay=UNDERLAY, state_dir=tmp_path / "s")
    with lab:
        lab.namespace("red", machine="a")
        lab.namespace("blue", machine="b")
        cap = lab.capture("blue", file=tmp_path / "blue.pcap")
        (started,) = b.started
        assert not a.started
        argv = started.command.argv
        assert argv[:4] == ("ip", "netns", "exec", "blue") and argv[9] == "any"
        remote = argv[11]
        assert remote.startswith("/tmp/netns-kit-t-") and remote.endswith("-blue-any.pcap")
        record = json.loads(lab.registry.record_path("t").read_text())
        (entry,) = [e for e in record["resources"] if e["kind"] == "process"]
        assert entry["machine"] == "b"
        cap.stop()
        assert b.commands[-2:] == [("base64", "--", remote), ("rm", "-f", "--", remote)]
        assert (tmp_path / "blue.pcap").read_bytes() == b"\xd4\xc3\xb2\xa1"


def test_stop_sends_one_sigint_then_kills_a_capture_that_ignores_it(tmp_path: Path) -> None:
    from netns_kit.capture.capture import Capture
    from netns_kit.errors import CommandTimeoutError

    sent: list[int] = []

    class Deaf:
        pid = 9

        def alive(self) -> bool:
            return signal.SIGKILL not in sent

        def signal(self, signum: int) -> None:
            sent.append(signum)

        def wait(self, timeout: float | None) -> Result:
            if self.alive():
                raise CommandTimeoutError(("tcpdump",), -9, "", "still running")
            return Result(("tcpdump",), -9, "", "")

        def said(self) -> tuple[str, str]:
            return "", ""

    process = Process(Command(("tcpdump",)), Deaf())
    leg = Leg(Tap("red", "vr"), tmp_path / "a.pcap", process)
    capture = Capture(object(), [leg], None)
    with pytest.raises(CaptureError, match="ignored SIGINT and was killed"):
        capture.stop()
    assert sent == [signal.SIGINT, signal.SIGKILL]
    capture.stop()  # a second stop does nothing
    assert sent == [signal.SIGINT, signal.SIGKILL]
