"""Command values and the executors: the fake, the dry run, the default, the shell."""

from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path

import attrs
import pytest

from netns_kit import (
    Bridge,
    CommandError,
    CommandTimeoutError,
    Masquerade,
    Namespace,
    NotFoundError,
    RecordingExecutor,
    Result,
    ScriptExecutor,
    ShellExecutor,
    ToolMissingError,
    VethPair,
    default_executor,
    use_executor,
)
from netns_kit.command import Command, in_namespace, ip

HEADER = "#!/usr/bin/env bash\nset -euo pipefail\n"


# -- Command ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ("ip", "link", "add", "name", "up", "type", "bridge"),
        ("ip", "link", "set", "dev", "v0", "alias", "netns-kit:lab one"),
        ("iptables", "-m", "comment", "--comment", "it's"),
        ("sh", "-c", "echo $HOME; rm -rf /"),
        ("x", ""),
    ],
)
def test_str_is_shlex_join(argv: tuple[str, ...]) -> None:
    command = Command(argv)
    assert str(command) == shlex.join(argv)
    assert shlex.split(str(command)) == list(argv)


def test_command_is_an_immutable_value() -> None:
    command = Command(["ip", "link"])
    assert command.argv == ("ip", "link")
    assert command == Command(("ip", "link"))
    assert hash(command) == hash(Command(("ip", "link")))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        command.argv = ("rm",)  # type: ignore[misc]


def test_command_needs_argv() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Command(())


def test_command_tool() -> None:
    assert Command(("iptables", "-L")).tool == "iptables"


def test_ip_builder_uses_ip_n_for_namespaces() -> None:
    assert ip("link", "show").argv == ("ip", "link", "show")
    command = ip("link", "show", namespace="red", read=True)
    assert command.argv == ("ip", "-n", "red", "link", "show")
    assert command.namespace == "red"
    assert command.read is True


def test_in_namespace_uses_netns_exec() -> None:
    assert in_namespace(("sysctl", "-n", "k"), None).argv == ("sysctl", "-n", "k")
    command = in_namespace(("sysctl", "-n", "k"), "red")
    assert command.argv == ("ip", "netns", "exec", "red", "sysctl", "-n", "k")
    assert command.namespace == "red"


# -- Result -----------------------------------------------------------------------------
def test_result_truthiness_follows_the_exit_code() -> None:
    assert Result(("true",), 0)
    assert not Result(("false",), 1)
    assert not Result(("x",), 255)
    assert not Result(("x",), -9)


# -- RecordingExecutor ------------------------------------------------------------------
def test_recording_unanswered_commands_succeed_empty() -> None:
    ex = RecordingExecutor()
    result = ex.run(Command(("ip", "-j", "netns", "list"), read=True))
    assert result == Result(("ip", "-j", "netns", "list"), 0, "", "")
    assert ex.commands == [("ip", "-j", "netns", "list")]


def test_recording_answers_by_longest_prefix_whatever_the_order() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "-n", "red", "link", "show", "dev", "v0"), stdout="longest")
    ex.answer(("ip",), stdout="shortest")
    ex.answer("ip -n red", stdout="middle")  # a string prefix is split like a shell
    assert ex.run(Command(("ip", "-n", "red", "link", "show", "dev", "v0"))).stdout == "longest"
    assert ex.run(Command(("ip", "-n", "red", "addr"))).stdout == "middle"
    assert ex.run(Command(("ip", "-n", "blue", "addr"))).stdout == "shortest"
    assert ex.run(Command(("iptables", "-L"))).stdout == ""


def test_recording_prefix_matches_whole_elements_only() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "-n", "re"), stdout="wrong")
    assert ex.run(Command(("ip", "-n", "red", "addr"))).stdout == ""


def test_recording_canned_failure_raises_with_check() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "link", "del"), stderr='Cannot find device "v0"', returncode=1)
    with pytest.raises(NotFoundError) as caught:
        ex.run(Command(("ip", "link", "del", "dev", "v0")))
    assert caught.value.argv == ("ip", "link", "del", "dev", "v0")
    result = ex.run(Command(("ip", "link", "del", "dev", "v0")), check=False)
    assert not result
    assert result.returncode == 1
    assert result.stderr == 'Cannot find device "v0"'


def test_recording_fail_at_injects_a_failure_at_that_index() -> None:
    ex = RecordingExecutor()
    ex.fail_at(1, stderr="RTNETLINK answers: File exists", returncode=2)
    commands = [Command(("a",)), Command(("b",)), Command(("c",))]
    with pytest.raises(CommandError) as caught:
        ex.run_all(commands)
    assert caught.value.completed == 1
    assert caught.value.returncode == 2
    assert caught.value.argv == ("b",)
    assert ex.commands == [("a",), ("b",)]  # stopped at the failure


def test_recording_fail_at_beats_an_answer() -> None:
    ex = RecordingExecutor()
    ex.answer(("x",), stdout="fine")
    ex.fail_at(0)
    assert not ex.run(Command(("x",)), check=False)
    assert ex.run(Command(("x",))).stdout == "fine"


def test_run_all_returns_every_result_in_order() -> None:
    ex = RecordingExecutor()
    ex.answer(("b",), stdout="B")
    results = ex.run_all([Command(("a",)), Command(("b",))])
    assert [r.argv for r in results] == [("a",), ("b",)]
    assert [r.stdout for r in results] == ["", "B"]


def test_guard_skips_the_command_when_it_holds() -> None:
    ex = RecordingExecutor()
    guarded = Command(("do",), unless=Command(("check",), read=True))
    ex.run(guarded)
    assert ex.commands == [("check",)]


def test_guard_runs_the_command_when_it_fails() -> None:
    ex = RecordingExecutor()
    ex.answer(("check",), returncode=1)
    ex.run(Command(("do",), unless=Command(("check",), read=True)))
    assert ex.commands == [("check",), ("do",)]


# -- ScriptExecutor ---------------------------------------------------------------------
def test_script_header_and_quoted_lines() -> None:
    ex = ScriptExecutor()
    ex.run(Command(("ip", "link", "set", "dev", "v0", "alias", "netns-kit:my lab")))
    ex.run(Command(("ip", "link", "add", "name", "up", "type", "bridge")))
    assert ex.script() == (
        HEADER + "ip link set dev v0 alias 'netns-kit:my lab'\nip link add name up type bridge\n"
    )


def test_script_of_nothing_is_just_the_header() -> None:
    assert ScriptExecutor().script() == HEADER


def test_script_omits_reads_and_answers_them_as_a_fresh_machine() -> None:
    ex = ScriptExecutor()
    result = ex.run(Command(("ip", "-j", "netns", "list"), read=True))
    assert result
    assert result.stdout == ""
    assert ex.script() == HEADER
    assert Namespace("red", executor=ex).exists() is False


def test_script_guard_becomes_or() -> None:
    ex = ScriptExecutor()
    ex.run(Command(("iptables", "-A", "X"), unless=Command(("iptables", "-C", "X"), read=True)))
    assert ex.script() == HEADER + "iptables -C X || iptables -A X\n"


def test_script_stdin_becomes_a_quoted_heredoc() -> None:
    ex = ScriptExecutor()
    ex.run(Command(("ip", "-batch", "-"), stdin="link add name a type dummy\nlink del dev a"))
    assert ex.script() == (
        HEADER + "ip -batch - <<'NETNS_KIT_EOF'\n"
        "link add name a type dummy\nlink del dev a\nNETNS_KIT_EOF\n"
    )


def test_script_heredoc_tag_never_collides_with_the_text() -> None:
    ex = ScriptExecutor()
    ex.run(Command(("cat",), stdin="NETNS_KIT_EOF\n"))
    assert ex.script() == HEADER + "cat <<'NETNS_KIT_EOF_'\nNETNS_KIT_EOF\nNETNS_KIT_EOF_\n"


def test_script_of_a_masquerade_guards_the_append() -> None:
    ex = ScriptExecutor()
    Masquerade("10.0.0.0/24", "eth0", namespace="h", executor=ex).enable()
    rule = "-s 10.0.0.0/24 '!' -d 10.0.0.0/24 -o eth0 -m comment --comment netns-kit -j MASQUERADE"
    ipt = "ip netns exec h iptables -w -t nat"
    assert ex.script() == (
        HEADER
        + "ip netns exec h sysctl -q -w net.ipv4.ip_forward=1\n"
        + f"{ipt} -C POSTROUTING {rule} || {ipt} -A POSTROUTING {rule}\n"
    )


def test_script_is_valid_bash(tmp_path: Path) -> None:
    ex = ScriptExecutor()
    with use_executor(ex):
        Namespace("red").create()
        VethPair("a", "b", namespace="red", peer_namespace="blue").create()
        Bridge("up", namespace="red").create()
        Masquerade("10.0.0.0/24", namespace="red", comment="netns-kit: my lab").enable()
        ex.run(Command(("ip", "-batch", "-"), stdin="link add name x type dummy\n"))
    script = tmp_path / "lab.sh"
    script.write_text(ex.script())
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- the default executor ---------------------------------------------------------------
def test_default_executor_is_a_shell() -> None:
    assert isinstance(default_executor(), ShellExecutor)


def test_use_executor_swaps_the_default_for_a_block() -> None:
    before = default_executor()
    recording = RecordingExecutor()
    with use_executor(recording) as active:
        assert active is recording
        assert default_executor() is recording
        Namespace("red").create()
        Bridge("br0").create()
    assert default_executor() is before
    assert recording.commands == [
        ("ip", "netns", "add", "red"),
        ("ip", "-n", "red", "link", "set", "dev", "lo", "up"),
        ("ip", "link", "add", "name", "br0", "type", "bridge"),
    ]


def test_use_executor_nests_and_restores_after_an_error() -> None:
    outer, inner = RecordingExecutor(), ScriptExecutor()
    with use_executor(outer):
        with pytest.raises(RuntimeError), use_executor(inner):
            assert default_executor() is inner
            raise RuntimeError("boom")
        assert default_executor() is outer


def test_an_explicit_executor_wins_over_the_default() -> None:
    mine, other = RecordingExecutor(), RecordingExecutor()
    with use_executor(other):
        Namespace("red", executor=mine).delete()
    assert mine.commands == [("ip", "netns", "delete", "red")]
    assert other.commands == []


# -- ShellExecutor (harmless programs only, no root needed) ----------------------------
def test_shell_runs_argv_without_a_shell() -> None:
    result = ShellExecutor().run(Command(("echo", "$HOME", "a b", "*")))
    assert result
    assert result.stdout == "$HOME a b *\n"
    assert result.argv == ("echo", "$HOME", "a b", "*")


def test_shell_passes_stdin() -> None:
    assert ShellExecutor().run(Command(("cat",), stdin="hello\n")).stdout == "hello\n"


def test_shell_reports_a_failure_as_a_falsy_result_or_an_error() -> None:
    command = Command(("sh", "-c", "echo out; echo 'it broke' >&2; exit 3"))
    result = ShellExecutor().run(command, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "it broke\n")
    with pytest.raises(CommandError) as caught:
        ShellExecutor().run(command)
    assert caught.value.returncode == 3
    assert "it broke" in str(caught.value)


def test_shell_times_out() -> None:
    with pytest.raises(CommandTimeoutError):
        ShellExecutor().run(Command(("sleep", "30")), timeout=0.3)


def test_shell_missing_program_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent-netns-kit")
    with pytest.raises(ToolMissingError) as caught:
        ShellExecutor().run(Command(("sysctl", "-n", "net.ipv4.ip_forward")))
    assert caught.value.tool == "sysctl"
    assert "procps" in str(caught.value)


def test_shell_unknown_missing_program() -> None:
    with pytest.raises(ToolMissingError, match="netns-kit-no-such-tool"):
        ShellExecutor().run(Command(("netns-kit-no-such-tool",)))


def test_shell_sudo_prefixes_sudo_n() -> None:
    command = Command(("ip", "netns", "add", "red"))
    assert ShellExecutor(sudo=True).argv(command) == ("sudo", "-n", "ip", "netns", "add", "red")
    assert ShellExecutor().argv(command) == command.argv


def test_shell_logs_every_command_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="netns_kit"):
        ShellExecutor().run(Command(("echo", "a b")))
    assert any(
        r.name == "netns_kit" and r.levelno == logging.DEBUG and "echo 'a b'" in r.getMessage()
        for r in caplog.records
    )
