"""Rootless labs without the kernel: the sandbox executor's argv, the choice of mode, the
record of a sandbox, recovery and the CLI's view of it (the real ones run as nobody in
tests/integration/test_rootless.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from netns_kit import (
    Lab,
    RecordingExecutor,
    RootlessUnavailableError,
    Sandbox,
    SandboxExecutor,
    SandboxGoneError,
    ScriptExecutor,
    ShellExecutor,
    ToolMissingError,
    ValidationError,
    cli,
    use_executor,
)
from netns_kit.command import in_namespace, ip
from netns_kit.engine.step import Entry
from netns_kit.errors import LabBusyError, NetnsKitError, command_error
from netns_kit.executors import sandbox
from netns_kit.executors.batch import Batch
from netns_kit.executors.sandbox import (
    HolderRef,
    enter_argv,
    holder_argv,
    lab_sandbox,
    userns_refusal,
)
from netns_kit.lab.kept import KeptLab
from netns_kit.record.registry import Record, Registry, recover, state_dir, undo_record

HOLDER = 4242
ENTER = ("nsenter", "--target", "4242", "--user", "--mount", "--net", "--pid")
RED = "--net=/proc/4242/root/run/netns/red"


def running(pid: int = HOLDER) -> Sandbox:
    """A sandbox that looks started, with no process behind it."""
    made = Sandbox()
    made.ref = HolderRef(pid, 1)
    return made


def own_start_time() -> int:
    return int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])


# -- argv (pure) ----------------------------------------------------------------------
def test_the_holder_is_unshare_without_an_orphan_and_with_its_own_pid_namespace() -> None:
    argv = holder_argv()
    assert argv[:8] == (
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",  # a SIGKILL to unshare reaches the holder too
    )
    assert argv[8:10] == ("sh", "-c")
    script = argv[10]
    assert "mount -t tmpfs -o mode=0755 netns-kit /run/netns" in script
    assert "netns-kit /etc/netns" in script  # the machine's own /etc/netns is covered
    assert 'echo "ready $me"' in script and "exec sleep infinity" in script


def test_nsenter_keeps_credentials_for_a_user_and_not_for_root() -> None:
    assert enter_argv(HOLDER) == (*ENTER, "--preserve-credentials", "--")
    assert enter_argv(HOLDER, root=True) == (*ENTER, "--")
    assert enter_argv(HOLDER, namespace="red", root=True, wd="/srv") == (
        *ENTER[:5],
        RED,
        "--pid",
        "--wd=/srv",
        "--",
    )


def test_the_executor_enters_a_namespace_directly_when_the_command_allows(
    mocker: MockerFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    monkeypatch.chdir(tmp_path)
    ex = SandboxExecutor(running())
    tail = ("--preserve-credentials", f"--wd={tmp_path}", "--")
    # ip -n would copy the sandbox's mount table: the namespace's file is entered instead
    assert ex.argv(ip("link", "show", namespace="red")) == (
        *ENTER[:5],
        RED,
        "--pid",
        *tail,
        "ip",
        "link",
        "show",
    )
    assert ex.argv(ip("netns", "add", "red")) == (*ENTER, *tail, "ip", "netns", "add", "red")
    # a program that needs ip netns exec's mounts keeps its argv
    assert ex.argv(in_namespace(["ping", "-c1", "10.0.0.1"], "red")) == (
        *ENTER,
        *tail,
        *("ip", "netns", "exec", "red", "ping", "-c1", "10.0.0.1"),
    )
    batch = Batch("ip", "red", (ip("link", "set", "dev", "lo", "up", namespace="red"),))
    assert ex.argv(batch.process())[-3:] == ("ip", "-batch", "-")
    assert RED in ex.argv(batch.process())


def test_the_executor_refuses_before_its_sandbox_runs() -> None:
    with pytest.raises(NetnsKitError, match="sandbox is not running"):
        SandboxExecutor().argv(ip("link"))


def test_a_result_carries_the_commands_own_argv(mocker: MockerFixture) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    popen = mocker.patch("netns_kit.executors.sandbox.subprocess.Popen")
    popen.return_value.communicate.return_value = (b"out", b"")
    popen.return_value.returncode = 0
    popen.return_value.poll.return_value = 0
    command = ip("link", "show", namespace="red")
    result = SandboxExecutor(running()).execute(command)
    assert result.argv == command.argv and result.stdout == "out"
    assert popen.call_args.args[0][:2] == ("nsenter", "--target")


def test_a_missing_nsenter_names_its_package(mocker: MockerFixture) -> None:
    mocker.patch("netns_kit.executors.sandbox.subprocess.Popen", side_effect=FileNotFoundError)
    with pytest.raises(ToolMissingError, match="util-linux"):
        SandboxExecutor(running()).execute(ip("link"))


def test_nsenter_saying_a_program_is_missing_is_a_missing_tool() -> None:
    said = "nsenter: failed to execute fping: No such file or directory\n"
    error = command_error(("fping",), 127, "", said)
    assert isinstance(error, ToolMissingError) and error.tool == "fping"


# -- the choice of mode -----------------------------------------------------------------
def test_root_keeps_the_machines_namespaces(mocker: MockerFixture) -> None:
    mocker.patch("os.geteuid", return_value=0)
    assert lab_sandbox(None, None, "x") is None
    assert Lab("x").rootless is False


@pytest.mark.real_executor  # the default executor's own behaviour
def test_a_user_gets_a_sandbox_and_one_info_line(
    mocker: MockerFixture, caplog: pytest.LogCaptureFixture
) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    with caplog.at_level(logging.INFO, logger="netns_kit"):
        lab = Lab("x")
    assert lab.rootless and isinstance(lab.executor, SandboxExecutor)
    assert lab.executor.sandbox is lab.sandbox
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert said == [
        "lab 'x': not root, so it runs in a rootless sandbox "
        "(its own namespaces, no way out to the machine's network)"
    ]


def test_a_user_with_an_executor_of_their_own_keeps_it(mocker: MockerFixture) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    rec = RecordingExecutor()
    assert Lab("x", executor=rec).rootless is False
    with use_executor(ScriptExecutor()):  # a dry run stays a dry run
        assert Lab("x").rootless is False
    with use_executor(ShellExecutor(sudo=True)):
        assert Lab("x").rootless is False


def test_rootless_false_as_a_user_is_the_machines_namespaces(mocker: MockerFixture) -> None:
    mocker.patch("os.geteuid", return_value=1000)
    lab = Lab("x", rootless=False)
    assert lab.sandbox is None and lab.executor is None


def test_rootless_true_takes_no_executor_but_one_that_runs_in_a_sandbox(
    mocker: MockerFixture,
) -> None:
    mocker.patch("os.geteuid", return_value=0)
    assert Lab("x", rootless=True).rootless  # root may ask for one too
    with pytest.raises(ValidationError, match="executor"):
        Lab("x", executor=RecordingExecutor(), rootless=True)
    inner = SandboxExecutor()
    watched = cli.Watched(inner, echo=io.StringIO())  # a wrapper: found through .inner
    assert Lab("x", executor=watched, rootless=True).sandbox is inner.sandbox
    with pytest.raises(ValidationError, match="rootless"):
        Lab("x", executor=inner, rootless=False)


# -- a lab with a sandbox (the sandbox faked) ----------------------------------------------
class FakeSandbox(Sandbox):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def start(self) -> HolderRef:
        self.calls.append("start")
        self.ref = HolderRef(HOLDER, 77)
        return self.ref

    def stop(self) -> None:
        self.calls.append("stop")
        self.ref = None

    def keep(self) -> None:
        self.calls.append("keep")


def sandboxed(tmp_path: Path) -> tuple[Lab, FakeSandbox, RecordingExecutor]:
    fake = FakeSandbox()
    rec = RecordingExecutor()
    rec.inner = SandboxExecutor(fake)  # type: ignore[attr-defined]
    return Lab("t", executor=rec, rootless=True, state_dir=tmp_path), fake, rec


def test_a_rootless_lab_starts_its_sandbox_records_it_and_ends_it_without_teardown(
    tmp_path: Path,
) -> None:
    lab, fake, rec = sandboxed(tmp_path)
    with lab:
        lab.namespace("red")
        record = json.loads((tmp_path / "t.json").read_text())
        assert record["sandbox"] == {"pid": HOLDER, "started": 77}
        assert fake.calls == ["start"]
        made = len(rec.commands)
    assert fake.calls == ["start", "stop"]
    assert len(rec.commands) == made  # nothing undone one by one: the sandbox took it
    assert not (tmp_path / "t.json").exists()


def test_a_kept_rootless_lab_keeps_its_sandbox(tmp_path: Path) -> None:
    lab, fake, _ = sandboxed(tmp_path)
    lab.open()
    lab.keep()
    lab.close()  # a kept lab's close does nothing
    assert fake.calls == ["start", "keep"]
    record = Registry(tmp_path).read("t")
    assert record is not None and record.state == "kept"
    assert record.sandbox == HolderRef(HOLDER, 77)  # what netns-kit down will end


def test_a_failed_open_ends_the_sandbox(tmp_path: Path) -> None:
    Registry(tmp_path).write(Record("t", 1, state="kept"))
    lab, fake, _ = sandboxed(tmp_path)
    with pytest.raises(LabBusyError, match="kept up"):
        lab.open()
    assert fake.calls == ["start", "stop"]


# -- records, recovery, kept labs ----------------------------------------------------------
def test_a_record_keeps_its_sandbox(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    record = Record("r", 5, sandbox=HolderRef(99, 12345), resources=[Entry("namespace", "a")])
    registry.write(record)
    assert registry.read("r") == record
    assert json.loads(registry.record_path("r").read_text())["sandbox"] == {
        "pid": 99,
        "started": 12345,
    }
    assert "sandbox" not in json.loads(Record("x", 1).to_json())  # a machine lab's


def test_recovering_a_rootless_lab_kills_its_holder_and_runs_nothing(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    stop = mocker.patch("netns_kit.record.registry.stop_holder", return_value=True)
    ex = RecordingExecutor()
    record = Record(
        "r", 5, sandbox=HolderRef(99, 1), resources=[Entry("namespace", "a"), Entry("link", "l")]
    )
    assert undo_record(record, ex) == ["namespace a", "sandbox holder 99"]
    assert ex.commands == []
    stop.assert_called_once_with(HolderRef(99, 1))
    Registry(tmp_path).write(record)
    assert recover("r", executor=ex, state_dir=tmp_path) == ["namespace a", "sandbox holder 99"]
    assert Registry(tmp_path).read("r") is None and ex.commands == []


def test_a_holder_is_only_signalled_while_it_is_the_same_process() -> None:
    """Our own PID with another start time stands for a reused PID: never signalled."""
    me = os.getpid()
    assert sandbox.holder_alive(HolderRef(me, own_start_time()))
    reused = HolderRef(me, own_start_time() + 1)
    assert not sandbox.holder_alive(reused)
    assert sandbox.stop_holder(reused) is False  # we are still here
    with pytest.raises(SandboxGoneError, match=str(me)):
        Sandbox.attach(reused)
    attached = Sandbox.attach(HolderRef(me, own_start_time()))
    assert attached.pid == me and attached.running


def test_a_kept_rootless_lab_is_up_while_its_holder_runs(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    registry = Registry(tmp_path)
    record = Record("k", 1, state="kept", sandbox=HolderRef(99, 1))
    alive = mocker.patch("netns_kit.lab.kept.holder_alive", return_value=True)
    lab = KeptLab(record, registry)
    assert lab.rootless and lab.status(set()) == "up"  # its namespaces are not the machine's
    alive.return_value = False
    assert lab.status(set()) == "stale"
    ex = RecordingExecutor()
    assert KeptLab(Record("m", 1), registry).executor(ex) is ex
    mocker.patch("netns_kit.executors.sandbox.holder_alive", return_value=True)
    reach = lab.executor(ex)
    assert isinstance(reach, SandboxExecutor) and reach.sandbox.pid == 99


# -- the state directory of a user ----------------------------------------------------------
USER = 1000


@pytest.fixture
def user_registry(
    mocker: MockerFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    """The default registry of user 1000, whose files /proc says are theirs."""
    monkeypatch.delenv("NETNS_KIT_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    mocker.patch("os.geteuid", return_value=USER)
    real = os.lstat

    def owned(path: Any) -> os.stat_result:
        found = list(real(path))
        found[4] = USER  # st_uid
        return os.stat_result(found)

    mocker.patch("netns_kit.record.registry.os.lstat", side_effect=owned)
    return Registry()


def test_a_user_keeps_records_in_a_private_directory_of_their_own(
    user_registry: Registry, tmp_path: Path
) -> None:
    assert user_registry.directory == tmp_path / f"netns-kit-{USER}"
    assert user_registry.private
    user_registry.write(Record("a", 1))
    assert user_registry.directory.stat().st_mode & 0o777 == 0o700
    assert user_registry.read("a") == Record("a", 1)


def test_a_private_directory_open_to_others_is_refused(user_registry: Registry) -> None:
    user_registry.directory.mkdir()
    os.chmod(user_registry.directory, 0o755)  # made by someone else, or left open
    with pytest.raises(NetnsKitError, match="closed to others"):
        user_registry.write(Record("a", 1))
    assert not user_registry.record_path("a").exists()


def test_a_state_directory_chosen_by_the_user_is_taken_as_it_is(
    mocker: MockerFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NETNS_KIT_STATE_DIR", raising=False)
    mocker.patch("os.geteuid", return_value=USER)
    assert not Registry(tmp_path / "mine").private
    mocker.patch("os.geteuid", return_value=0)
    assert state_dir() == Path("/run/netns-kit") and not Registry().private


# -- the kernel's refusal --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "value", "allow"),
    [
        ("kernel.unprivileged_userns_clone", "0", "1"),
        ("user.max_user_namespaces", "0", "15000"),
        ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
    ],
)
def test_a_refusing_setting_is_named_with_the_fix(setting: str, value: str, allow: str) -> None:
    settings = {
        "kernel.unprivileged_userns_clone": "1",
        "user.max_user_namespaces": "15000",
        "kernel.apparmor_restrict_unprivileged_userns": "0",
        setting: value,
    }
    error = userns_refusal(settings.get)
    assert isinstance(error, RootlessUnavailableError)
    assert (error.setting, error.value) == (setting, value)
    assert f"{setting} is {value}" in str(error)
    assert f"sysctl -w {setting}={allow}" in str(error)


def test_no_refusing_setting_still_says_what_failed() -> None:
    nothing: dict[str, str] = {}
    error = userns_refusal(nothing.get)
    assert error.setting is None and "user namespace" in str(error)


def test_a_holder_that_fails_is_reported_with_the_setting(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    """The real holder argv, with ``unshare`` replaced by a script that fails as a
    kernel with max_user_namespaces=0 makes it fail."""
    fake = tmp_path / "unshare"
    fake.write_text("#!/bin/sh\necho 'unshare: unshare failed: No space left on device' >&2\n")
    fake.chmod(0o755)
    mocker.patch("netns_kit.executors.sandbox.holder_argv", return_value=(str(fake),))
    mocker.patch(
        "netns_kit.executors.sandbox.read_setting",
        side_effect=lambda key: "0" if key == "user.max_user_namespaces" else None,
    )
    made = Sandbox()
    with pytest.raises(RootlessUnavailableError, match=r"user\.max_user_namespaces is 0") as got:
        made.start()
    assert "No space left on device" in " ".join(got.value.__notes__)
    assert made.ref is None and not made.running


def test_a_holder_that_never_says_ready_is_ended(mocker: MockerFixture) -> None:
    mocker.patch("netns_kit.executors.sandbox.START_WAIT", 0.2)
    mocker.patch("netns_kit.executors.sandbox.holder_argv", return_value=("sleep", "30"))
    made = Sandbox()
    started = time.monotonic()
    with pytest.raises(NetnsKitError, match=r"not ready after 0\.2 s"):
        made.start()
    assert time.monotonic() - started < 5 and made.ref is None


# -- signals reach the program, not nsenter --------------------------------------------------
def test_a_signal_goes_to_what_nsenter_started(tmp_path: Path) -> None:
    """nsenter --pid forks and passes no signal on: the child is signalled instead.
    Here ``sh`` stands for nsenter and its ``sleep`` for the program."""
    parent = subprocess.Popen(["sh", "-c", "sleep 30; echo survived"], stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while not sandbox._children(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        (child,) = sandbox._children(parent.pid)
        sandbox._signal_inside(parent.pid, 15)
        out, _ = parent.communicate(timeout=10)
        assert out == b"survived\n"  # the parent was left alone; its child ended
        assert not os.path.exists(f"/proc/{child}") or sandbox._stat(child) is None
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# -- the command line ------------------------------------------------------------------------
def context(argv: list[str], executor: Any = None) -> cli._Context:
    args = cli.build_parser().parse_args(argv)
    return cli._Context(args, executor, io.StringIO(), io.StringIO())


def test_the_command_line_is_rootless_when_asked_or_when_not_root(
    mocker: MockerFixture, tmp_path: Path
) -> None:
    state = ["--state-dir", str(tmp_path)]
    mocker.patch("os.geteuid", return_value=0)
    assert not context([*state, "ls"]).rootless
    assert context([*state, "--rootless", "ls"]).rootless
    mocker.patch("os.geteuid", return_value=1000)
    assert context([*state, "ls"]).rootless
    assert not context([*state, "--sudo", "ls"]).rootless
    assert not context([*state, "ls"], RecordingExecutor()).rootless  # tests inject theirs
    err = io.StringIO()
    code = cli.main([*state, "--rootless", "--sudo", "ls"], stderr=err)
    assert code == 2 and "--rootless and --sudo" in err.getvalue()


def test_ls_and_cleanup_know_a_rootless_lab(mocker: MockerFixture, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    registry.write(Record("gone", 1, state="kept", sandbox=HolderRef(99, 1)))
    registry.write(Record("live", 1, state="kept", sandbox=HolderRef(98, 1)))
    mocker.patch("netns_kit.lab.kept.holder_alive", side_effect=lambda ref: ref.pid == 98)
    stop = mocker.patch("netns_kit.record.registry.stop_holder", return_value=False)
    ex = RecordingExecutor()
    out = io.StringIO()
    assert cli.main(["--state-dir", str(tmp_path), "ls"], executor=ex, stdout=out) == 0
    rows = [line.split() for line in out.getvalue().splitlines()[1:]]
    assert [row[:3] for row in rows] == [["gone", "stale", "sandbox"], ["live", "up", "sandbox"]]
    out = io.StringIO()
    assert cli.main(["--state-dir", str(tmp_path), "cleanup"], executor=ex, stdout=out) == 0
    assert "lab 'gone': removed" in out.getvalue()
    assert registry.read("gone") is None and registry.read("live") is not None
    stop.assert_called_once_with(HolderRef(99, 1))
    assert [c for c in ex.commands if c[:3] != ("ip", "-j", "netns")] == []
