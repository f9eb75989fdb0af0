"""A namespace's kernel settings without ``ip netns exec`` in the root batch (issue 23):
each namespace's own command, in its own lane, after ``netns add`` and before any
link; the real kernel's executor writes ``/proc/sys`` from a thread inside.  No root."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor, Sysctl
from netns_kit.command import sysctl_command
from netns_kit.engine.plan import schedule
from netns_kit.engine.step import Phase
from netns_kit.executors import shell
from netns_kit.objects.namespace import Namespace

SWITCH = (
    "ip netns exec s1 sysctl -e -q -w net.bridge.bridge-nf-call-iptables=0 "
    "net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0"
)


def test_a_setting_step_is_its_namespaces_own_command_never_a_batch_line() -> None:
    step = Namespace("s1").setting_step(("net.ipv6.conf.default.accept_dad", 0))
    command = step.command
    assert command.argv == (
        "ip", "netns", "exec", "s1", "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0",
    )  # fmt: skip
    assert command.namespace == "s1" and not command.batchable
    assert command.sysctls == (("net.ipv6.conf.default.accept_dad", "0"),)
    assert command.inside == ("sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0")
    assert step.phase is Phase.SETTINGS


def test_a_lab_namespace_sysctl_is_a_write_too() -> None:
    (command,) = Sysctl("net.ipv4.ip_forward", 1, "r1").write_commands()
    assert command.argv == (
        "ip",
        "netns",
        "exec",
        "r1",
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
    )
    assert command.sysctls == (("net.ipv4.ip_forward", "1"),) and not command.batchable
    (root,) = Sysctl("net.ipv4.ip_forward", 1).write_commands()
    assert root.argv == ("sysctl", "-q", "-w", "net.ipv4.ip_forward=1") and root.sysctls is None


def test_switch_settings_run_after_the_namespace_and_before_its_bridge(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab, lab.batch():
        for name in ("s1", "s2"):
            lab.namespace(name)
            lab.bridge("br0", namespace=name)
    made = [" ".join(argv) for argv in ex.commands]
    setting = made.index(SWITCH)
    assert made.index("ip netns add s1") < setting
    assert setting < made.index("ip -n s1 link add name br0 type bridge mcast_snooping 0")
    # one process of its own, in its namespace: never a line of the root's batch
    (run,) = [r for r in ex.runs if r.argv[:4] == ("ip", "netns", "exec", "s1")]
    assert run.namespace == "s1" and run.stdin is None


def test_the_settings_of_many_namespaces_share_one_wave() -> None:
    steps = [Namespace(f"n{i}").setting_step(("a.b", 1)) for i in range(5)]
    (wave,) = schedule(steps)
    assert len(wave.lanes) == 5


@contextlib.contextmanager
def _nowhere(namespace: str) -> Iterator[None]:
    yield


def test_the_shell_executor_writes_proc_sys_without_a_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The write path, with setns and /proc/sys replaced by a directory."""
    (tmp_path / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "net" / "ipv4" / "ip_forward").write_text("0\n")
    real_open = os.open

    def opened(path: str, flags: int, *rest: int) -> int:
        return real_open(path.replace("/proc/sys", str(tmp_path)), flags, *rest)

    monkeypatch.setattr("netns_kit.executors.shell.os.open", opened)
    setns = shell._Setns.__new__(shell._Setns)
    monkeypatch.setattr(setns, "entered", _nowhere)
    ex = shell.ShellExecutor()
    ex._setns = setns
    monkeypatch.setattr(ex, "_can_setns", lambda: True)
    monkeypatch.setattr(
        "netns_kit.executors.shell.subprocess.run", None
    )  # any process start would fail
    ok = ex.execute(sysctl_command([("net.ipv4.ip_forward", "1")], "r1"))
    assert ok.returncode == 0 and ok.argv[:4] == ("ip", "netns", "exec", "r1")
    assert (tmp_path / "net" / "ipv4" / "ip_forward").read_text().startswith("1")
    missing = ex.execute(sysctl_command([("net.nope.x", "1")], "r1"))
    assert missing.returncode == 255 and "net/nope/x" in missing.stderr
    ignored = ex.execute(sysctl_command([("net.nope.x", "1")], "r1", missing_ok=True))
    assert ignored.returncode == 0
