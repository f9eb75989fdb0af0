"""netns-kit exec / shell / capture on the fake executor, and the argv of each form:
this machine, a rootless lab's sandbox (nsenter) and another machine (ssh -t)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from netns_kit import RecordingExecutor, SSHExecutor, cli
from netns_kit.capture.cli import capture_command, kept_tap, shell_argv
from netns_kit.capture.where import Tap
from netns_kit.command import in_namespace
from netns_kit.engine.step import Entry
from netns_kit.executors.dispatch import RoutingExecutor
from netns_kit.executors.sandbox import HolderRef, Sandbox, SandboxExecutor
from netns_kit.record.registry import Record, Registry


def kept(state: Path) -> None:
    record = Record("demo", 1, True, "demo-host", state="kept")
    record.resources = [Entry("namespace", "demo-host"), Entry("namespace", "red")]
    Registry(state).write(record)


def main(state: Path, *argv: str, ex: RecordingExecutor) -> tuple[int, str]:
    err = io.StringIO()
    code = cli.main(
        ["--state-dir", str(state), *argv], executor=ex, stdout=io.StringIO(), stderr=err
    )
    return code, err.getvalue()


def test_shell_argv_puts_the_namespace_in_the_prompt() -> None:
    assert shell_argv("/bin/sh", "demo", "red") == (
        "env", "PS1=(demo:red) $ ", "NETNS_KIT_LAB=demo", "NETNS_KIT_NAMESPACE=red",
        "/bin/sh", "-i",
    )  # fmt: skip
    bash = shell_argv("/usr/bin/bash", "demo", "red")
    assert bash[1] == "PS1=(demo:red) \\u@\\h:\\w\\$ " and bash[-2:] == ("--norc", "-i")
    assert shell_argv("/bin/zsh", "d", "r")[-2:] == ("-f", "-i")


def test_shell_uses_SHELL(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kept(tmp_path)
    ex = RecordingExecutor()
    ex.answer(("ip", "netns", "exec", "red", "env"), returncode=4)
    monkeypatch.setenv("SHELL", "/bin/dash")
    code, _ = main(tmp_path, "shell", "demo", "red", ex=ex)
    assert code == 4
    ((command, tty),) = ex.interacted
    assert command.argv == ("ip", "netns", "exec", "red", *shell_argv("/bin/dash", "demo", "red"))
    assert tty is False  # pytest's stdin is no terminal
    monkeypatch.delenv("SHELL")
    main(tmp_path, "shell", "demo", "red", ex=ex)
    assert ex.interacted[-1][0].argv[-2:] == ("/bin/sh", "-i")


def test_shell_refuses_a_namespace_of_no_lab(tmp_path: Path) -> None:
    kept(tmp_path)
    ex = RecordingExecutor()
    code, err = main(tmp_path, "shell", "demo", "blue", ex=ex)
    assert code == 2 and "'blue' is not a namespace of lab 'demo'" in err
    assert ex.commands == []


@pytest.mark.parametrize(
    ("args", "tail"),
    [
        ([], ("-l", "--immediate-mode", "-i", "veth0")),
        (["icmp", "or", "arp"], ("-l", "--immediate-mode", "-i", "veth0", "--", "icmp or arp")),
        (["-w", "-"], ("-U", "--immediate-mode", "-i", "veth0", "-w", "-")),
        (["-w", "-", "icmp"], ("-U", "--immediate-mode", "-i", "veth0", "-w", "-", "--", "icmp")),
        (["icmp", "--write=-"], ("-U", "--immediate-mode", "-i", "veth0", "-w", "-", "--", "icmp")),
    ],
)
def test_capture_forms(tmp_path: Path, args: list[str], tail: tuple[str, ...]) -> None:
    kept(tmp_path)
    ex = RecordingExecutor()
    code, err = main(tmp_path, "capture", "demo", "red:veth0", *args, ex=ex)
    assert code == 0, err
    assert ex.commands == [("ip", "netns", "exec", "red", "tcpdump", "-n", *tail)]


def test_capture_to_a_file_and_a_whole_namespace(tmp_path: Path) -> None:
    kept(tmp_path)
    ex = RecordingExecutor()
    main(tmp_path, "capture", "demo", "red", "-w", str(tmp_path / "x.pcap"), ex=ex)
    assert ex.commands[0][-4:] == ("-i", "any", "-w", str(tmp_path / "x.pcap"))
    code, err = main(tmp_path, "capture", "demo", "red", "-w", str(tmp_path / "x.txt"), ex=ex)
    assert code == 2 and "file" in err and ".pcap" in err
    code, err = main(tmp_path, "capture", "demo", "blue:veth0", ex=ex)
    assert code == 2 and "where" in err
    assert len(ex.commands) == 1


def test_kept_tap_and_capture_command() -> None:
    assert kept_tap(["red"], "red:v0") == Tap("red", "v0")
    assert kept_tap(["red"], "red") == Tap("red", "any")
    with pytest.raises(ValueError, match="where"):
        kept_tap(["red"], "red:bad/name")
    assert capture_command(Tap("red", "v0"), "-", None).argv[-2:] == ("-w", "-")


def test_the_sandbox_form(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = Sandbox()
    sandbox.ref = HolderRef(4242, 1)
    ex = SandboxExecutor(sandbox)
    argv = ex.argv(in_namespace(("sh", "-i"), "red"))
    assert argv[:3] == ("nsenter", "--target", "4242")
    assert argv[-6:] == ("ip", "netns", "exec", "red", "sh", "-i")
    seen: list[tuple[str, ...]] = []

    def fake(argv: tuple[str, ...], *, forward: object = None) -> int:
        seen.append(tuple(argv))
        assert forward is not None  # signals go to nsenter's child
        return 3

    monkeypatch.setattr("netns_kit.executors.sandbox.run_attached", fake)
    assert ex.interact(in_namespace(("sh", "-i"), "red"), tty=True) == 3
    assert seen == [argv]


def test_the_ssh_form_asks_for_a_terminal() -> None:
    ex = SSHExecutor("lab.example", user="root")
    command = in_namespace(("sh", "-i"), "red")
    with_tty = ex.attached_argv(command, tty=True, control=Path("/c/cm"))
    without = ex.attached_argv(command, tty=False, control=Path("/c/cm"))
    assert with_tty[0] == "ssh" and "-t" in with_tty and "-T" not in with_tty
    assert "-T" in without and "-t" not in without
    assert with_tty[-3:] == ("--", "lab.example", "ip netns exec red sh -i")
    assert "ControlMaster=no" in with_tty


def test_routing_sends_interact_to_the_machine() -> None:
    a, b = RecordingExecutor(), RecordingExecutor()
    routing = RoutingExecutor({"a": a, "b": b})
    import attrs

    command = attrs.evolve(in_namespace(("true",), "red"), machine="b")
    assert routing.interact(command, tty=False) == 0
    assert b.interacted and not a.interacted


def test_an_executor_without_interact_says_so() -> None:
    from netns_kit.errors import NetnsKitError
    from netns_kit.executors import interact

    class Old:
        def __repr__(self) -> str:
            return "Old()"

    with pytest.raises(NetnsKitError, match="cannot run a program attached"):
        interact(Old(), in_namespace(("true",), "red"))  # type: ignore[arg-type]


def test_exec_verbose_echoes(tmp_path: Path) -> None:
    kept(tmp_path)
    ex = RecordingExecutor()
    err = io.StringIO()
    code = cli.main(
        ["--state-dir", str(tmp_path), "-v", "exec", "demo", "red", "--", "true"],
        executor=ex,
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 0 and "+ ip netns exec red true" in err.getvalue()
    assert json.loads((tmp_path / "demo.json").read_text())["state"] == "kept"
