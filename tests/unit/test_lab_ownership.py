"""A lab never tears down what it does not own, and rolls back a half-made masquerade."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Lab, LabBusyError, PermissionDeniedError, RecordingExecutor

FWD_READ = ("sysctl", "-n", "net.ipv4.ip_forward")


def test_a_kept_lab_is_not_torn_down_by_a_new_lab_of_the_same_name(tmp_path: Path) -> None:
    kept = Lab("k", executor=RecordingExecutor(), state_dir=tmp_path)
    kept.namespace("k-red")
    kept.keep()
    ex = RecordingExecutor()
    with pytest.raises(LabBusyError, match="netns-kit down k"):
        Lab("k", executor=ex, state_dir=tmp_path).open()
    assert ex.commands == []  # nothing read, nothing removed
    assert (tmp_path / "k.json").exists()


def test_a_masquerade_whose_rule_fails_turns_forwarding_back(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    ex.answer(FWD_READ, stdout="0\n")
    ex.answer(("iptables", "-w", "-t", "nat", "-C"), stderr="Bad rule", returncode=1)
    ex.answer(
        ("iptables", "-w", "-t", "nat", "-A"),
        stderr="Permission denied (you must be root)",
        returncode=4,
    )
    lab = Lab("m", executor=ex, state_dir=tmp_path)
    with pytest.raises(PermissionDeniedError):
        lab.masquerade("10.0.0.0/24")
    writes = [argv[-1] for argv in ex.commands if argv[:3] == ("sysctl", "-q", "-w")]
    assert writes == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]
    assert lab.resources == []
    lab.close()
    # the failed builder left nothing to undo at teardown
    assert [argv for argv in ex.commands if argv[:2] == ("sysctl", "-q")][-1][-1].endswith("=0")
