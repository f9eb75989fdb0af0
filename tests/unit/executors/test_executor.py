"""Command values and the executors: the fake, the dry run, the default, the shell.

Executors only start processes; what the outcome means is the runner's business
(tests/unit/test_runner.py), so the tests of a failure's error go through a Runner.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path

import attrs
import pytest
from pytest_mock import MockerFixture

from netns_kit import (
    Bridge,
    CommandError,
    CommandTimeoutError,
    Masquerade,
    Namespace,
    NotFoundError,
    RecordingExecutor,
    Result,
    Runner,
    ScriptExecutor,
    ShellExecutor,
    ToolMissingError,
    VethPair,
    default_executor,
    use_executor,
)
from netns_kit.command import Command, in_namespace, ip, tc
from netns_kit.executors.batch import Batch

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
    # a user's program needs what ip netns exec mounts: it has no other way to run
    assert command.inside is None and not command.batchable


def test_commands_say_how_else_they_may_run() -> None:
    link = ip("link", "set", "dev", "x", "up", namespace="red")
    assert link.inside == ("ip", "link", "set", "dev", "x", "up")
    assert (link.family, link.line) == ("ip", ("link", "set", "dev", "x", "up"))
    setting = in_namespace(("sysctl", "-q", "-w", "k=1"), "red", mounts=False)
    assert setting.inside == ("sysctl", "-q", "-w", "k=1")
    assert setting.line == ("netns", "exec", "red", "sysctl", "-q", "-w", "k=1")
    shaping = tc("qdisc", "del", "dev", "x", "root", namespace="red")
    assert shaping.argv[:3] == ("tc", "-n", "red") and shaping.family == "tc"
    assert ip("-j", "link", "show", read=True).family is None  # a global option


def test_shell_text_of_a_command() -> None:
    assert Command(("ip", "link", "set", "dev", "x", "alias", "a b")).shell() == (
        "ip link set dev x alias 'a b'"
    )


# -- Result -----------------------------------------------------------------------------
def test_result_truthiness_follows_the_exit_code() -> None:
    assert Result(("true",), 0)
    assert not Result(("false",), 1)
    assert not Result(("x",), 255)
    assert not Result(("x",), -9)


# -- RecordingExecutor ------------------------------------------------------------------
def test_recording_unanswered_commands_succeed_empty() -> None:
    ex = RecordingExecutor()
    result = ex.execute(Command(("ip", "-j", "netns", "list"), read=True))
    assert result == Result(("ip", "-j", "netns", "list"), 0, "", "")
    assert ex.commands == [("ip", "-j", "netns", "list")]


def test_recording_answers_by_longest_prefix_whatever_the_order() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "-n", "red", "link", "show", "dev", "v0"), stdout="longest")
    ex.answer(("ip",), stdout="shortest")
    ex.answer("ip -n red", stdout="middle")  # a string prefix is split like a shell
    assert ex.execute(Command(("ip", "-n", "red", "link", "show", "dev", "v0"))).stdout == "longest"
    assert ex.execute(Command(("ip", "-n", "red", "addr"))).stdout == "middle"
    assert ex.execute(Command(("ip", "-n", "blue", "addr"))).stdout == "shortest"
    assert ex.execute(Command(("iptables", "-L"))).stdout == ""


def test_recording_prefix_matches_whole_elements_only() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "-n", "re"), stdout="wrong")
    assert ex.execute(Command(("ip", "-n", "red", "addr"))).stdout == ""


def test_recording_canned_failure_raises_with_check() -> None:
    ex = RecordingExecutor()
    ex.answer(("ip", "link", "del"), stderr='Cannot find device "v0"', returncode=1)
    with pytest.raises(NotFoundError) as caught:
        Runner(ex).run(Command(("ip", "link", "del", "dev", "v0")))
    assert caught.value.argv == ("ip", "link", "del", "dev", "v0")
    result = ex.execute(Command(("ip", "link", "del", "dev", "v0")))
    assert not result
    assert result.returncode == 1
    assert result.stderr == 'Cannot find device "v0"'


def test_recording_fail_at_injects_a_failure_at_that_index() -> None:
    ex = RecordingExecutor()
    ex.fail_at(1, stderr="RTNETLINK answers: File exists", returncode=2)
    report = Runner(ex).run_all([Command(("a",)), Command(("b",)), Command(("c",))])
    assert isinstance(report.error, CommandError) and report.failed == 1
    assert report.error.returncode == 2 and report.error.argv == ("b",)
    assert ex.commands == [("a",), ("b",)]  # stopped at the failure


def test_recording_fail_at_beats_an_answer() -> None:
    ex = RecordingExecutor()
    ex.answer(("x",), stdout="fine")
    ex.fail_at(0)
    assert not ex.execute(Command(("x",)))
    assert ex.execute(Command(("x",))).stdout == "fine"


def test_a_recorded_batch_is_one_run_and_answers_like_ip() -> None:
    ex = RecordingExecutor()
    ex.fail_at(1, stderr="RTNETLINK answers: File exists", returncode=2)
    batch = Batch("ip", "a", (ip("x", namespace="a"), ip("y", namespace="a"), ip("z")))
    result = ex.execute_batch(batch)
    assert ex.runs == [batch.process()]
    assert ex.commands == [("ip", "-n", "a", "x"), ("ip", "-n", "a", "y")]  # stopped
    assert result.returncode == 2
    assert result.stderr == "RTNETLINK answers: File exists\nCommand failed -:2"


def test_a_forced_recorded_batch_goes_on() -> None:
    ex = RecordingExecutor()
    ex.fail_at(0)
    forced = Batch("ip", None, (ip("x"), ip("y")), force=True)
    assert not ex.execute_batch(forced)
    assert ex.commands == [("ip", "x"), ("ip", "y")]


# -- ScriptExecutor ---------------------------------------------------------------------
def test_script_header_and_quoted_lines() -> None:
    ex = ScriptExecutor()
    ex.execute(Command(("ip", "link", "set", "dev", "v0", "alias", "netns-kit:my lab")))
    ex.execute(Command(("ip", "link", "add", "name", "up", "type", "bridge")))
    assert ex.script() == (
        HEADER + "ip link set dev v0 alias 'netns-kit:my lab'\nip link add name up type bridge\n"
    )


def test_script_of_nothing_is_just_the_header() -> None:
    assert ScriptExecutor().script() == HEADER


def test_script_omits_reads_and_answers_them_as_a_fresh_machine() -> None:
    ex = ScriptExecutor()
    result = ex.execute(Command(("ip", "-j", "netns", "list"), read=True))
    assert result
    assert result.stdout == ""
    assert ex.script() == HEADER
    assert Namespace("red", executor=ex).exists() is False


def test_script_guard_becomes_or() -> None:
    ex = ScriptExecutor()
    guarded = Command(("iptables", "-A", "X"), unless=Command(("iptables", "-C", "X"), read=True))
    Runner(ex).run(guarded)  # the dry run takes the guard whole
    assert ex.script() == HEADER + "iptables -C X || iptables -A X\n"


def test_script_stdin_becomes_a_quoted_heredoc() -> None:
    ex = ScriptExecutor()
    ex.execute(Command(("ip", "-batch", "-"), stdin="link add name a type dummy\nlink del dev a"))
    assert ex.script() == (
        HEADER + "ip -batch - <<'NETNS_KIT_EOF'\n"
        "link add name a type dummy\nlink del dev a\nNETNS_KIT_EOF\n"
    )


def test_script_heredoc_tag_never_collides_with_the_text() -> None:
    ex = ScriptExecutor()
    ex.execute(Command(("cat",), stdin="NETNS_KIT_EOF\n"))
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
        ex.execute(Command(("ip", "-batch", "-"), stdin="link add name x type dummy\n"))
    script = tmp_path / "lab.sh"
    script.write_text(ex.script())
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- the default executor ---------------------------------------------------------------
@pytest.mark.real_executor  # the default executor's own behaviour
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
        ("ip", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0"),
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
    result = ShellExecutor().execute(Command(("echo", "$HOME", "a b", "*")))
    assert result
    assert result.stdout == "$HOME a b *\n"
    assert result.argv == ("echo", "$HOME", "a b", "*")


def test_shell_passes_stdin() -> None:
    assert ShellExecutor().execute(Command(("cat",), stdin="hello\n")).stdout == "hello\n"


def test_shell_reports_a_failure_as_a_falsy_result_or_an_error() -> None:
    command = Command(("sh", "-c", "echo out; echo 'it broke' >&2; exit 3"))
    result = ShellExecutor().execute(command)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "it broke\n")
    with pytest.raises(CommandError) as caught:
        Runner(ShellExecutor()).run(command)
    assert caught.value.returncode == 3
    assert "it broke" in str(caught.value)


def test_shell_times_out() -> None:
    with pytest.raises(CommandTimeoutError):
        ShellExecutor().execute(Command(("sleep", "30")), timeout=0.3)


def test_shell_missing_program_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent-netns-kit")
    with pytest.raises(ToolMissingError) as caught:
        ShellExecutor().execute(Command(("sysctl", "-n", "net.ipv4.ip_forward")))
    assert caught.value.tool == "sysctl"
    assert "procps" in str(caught.value)


def test_shell_unknown_missing_program() -> None:
    with pytest.raises(ToolMissingError, match="netns-kit-no-such-tool"):
        ShellExecutor().execute(Command(("netns-kit-no-such-tool",)))


def test_shell_sudo_prefixes_sudo_n() -> None:
    command = Command(("ip", "netns", "add", "red"))
    assert ShellExecutor(sudo=True).argv(command) == ("sudo", "-n", "ip", "netns", "add", "red")
    assert ShellExecutor().argv(command) == command.argv


def test_shell_logs_every_command_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="netns_kit"):
        Runner(ShellExecutor()).run(Command(("echo", "a b")))
    assert any(
        r.name == "netns_kit" and r.levelno == logging.DEBUG and "echo 'a b'" in r.getMessage()
        for r in caplog.records
    )


# -- ShellExecutor's namespace path, with what it calls patched (pytest-mock) ------------
def test_a_command_that_can_run_inside_its_namespace_starts_from_setns(
    mocker: MockerFixture,
) -> None:
    """Not through ip -n (which copies the mount table on every call): the calling
    thread enters the namespace, starts the command's ``inside`` argv, comes back."""
    mocker.patch("os.geteuid", return_value=0)
    mocker.patch("netns_kit.executors.shell.os.path.exists", return_value=True)
    enter = mocker.patch("netns_kit.executors.shell._Setns._enter")
    opened = mocker.patch("netns_kit.executors.shell.os.open", return_value=99)
    mocker.patch("netns_kit.executors.shell.os.close")
    done = subprocess.CompletedProcess(["ip"], 0, "out", "")
    run = mocker.patch("netns_kit.executors.shell.subprocess.run", return_value=done)
    mocker.patch("netns_kit.executors.shell.shutil.which", return_value="/usr/sbin/ip")
    ex = ShellExecutor()
    assert ex.parallel == 2
    result = ex.execute(ip("link", "set", "dev", "x", "up", namespace="red"))
    assert result == Result(("ip", "-n", "red", "link", "set", "dev", "x", "up"), 0, "out", "")
    assert run.call_args.args[0] == ("ip", "link", "set", "dev", "x", "up")
    assert mocker.call("/run/netns/red", mocker.ANY) in opened.call_args_list
    assert enter.call_count == 2  # into the namespace, and back home


def test_without_root_or_with_sudo_namespaced_commands_go_through_ip_n(
    mocker: MockerFixture,
) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    program = mocker.MagicMock()
    program.return_value.exit_code = 0
    program.return_value.stdout = b""
    program.return_value.stderr = b""
    mocker.patch("netns_kit.executors.shell.sh.Command", return_value=program)
    ex = ShellExecutor()
    assert ex.parallel == 1
    ex.execute(ip("link", "show", namespace="red"))
    assert program.call_args.args == ("-n", "red", "link", "show")
    sudo = ShellExecutor(sudo=True)
    mocker.patch("os.geteuid", return_value=0)
    assert sudo.parallel == 1
    sudo.execute(ip("link", "show", namespace="red"))
    assert program.call_args.args == ("-n", "ip", "-n", "red", "link", "show")
