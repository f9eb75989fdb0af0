"""Masquerade undoes exactly what it did, also when something fails half-way."""

from __future__ import annotations

import pytest

from netns_kit import Masquerade, NotFoundError, PermissionDeniedError, RecordingExecutor

FWD = "net.ipv4.ip_forward"
BAD_RULE = "iptables: Bad rule (does a matching rule exist in that chain?)."
CHECK = ("iptables", "-w", "-t", "nat", "-C")
WRITE_BACK = ("sysctl", "-q", "-w", f"{FWD}=0")


def rule(ex: RecordingExecutor) -> Masquerade:
    ex.answer(("sysctl", "-n", FWD), stdout="0\n")
    return Masquerade("10.0.0.0/24", executor=ex)


def test_a_rule_that_was_already_there_is_left_alone() -> None:
    ex = RecordingExecutor()
    nat = rule(ex).enable()  # the check succeeds: the rule is there already
    assert not any(argv[4] == "-A" for argv in ex.commands if argv[0] == "iptables")
    del ex.commands[:]
    nat.disable()
    assert ex.commands == [WRITE_BACK]  # forwarding back, the rule untouched


def test_a_rule_we_added_is_removed() -> None:
    ex = RecordingExecutor()
    ex.answer(CHECK, stderr=BAD_RULE, returncode=1)
    nat = rule(ex).enable()
    del ex.commands[:]
    nat.disable()
    assert [argv[4] for argv in ex.commands if argv[0] == "iptables"] == ["-D"]
    assert ex.commands[-1] == WRITE_BACK


def test_forwarding_is_put_back_when_adding_the_rule_fails() -> None:
    ex = RecordingExecutor()
    ex.answer(CHECK, stderr=BAD_RULE, returncode=1)
    ex.answer(
        ("iptables", "-w", "-t", "nat", "-A"),
        stderr="Permission denied (you must be root)",
        returncode=4,
    )
    with pytest.raises(PermissionDeniedError):
        rule(ex).enable()
    assert ex.commands[-1] == WRITE_BACK


def test_forwarding_is_put_back_even_when_the_rule_is_gone() -> None:
    ex = RecordingExecutor()
    ex.answer(CHECK, stderr=BAD_RULE, returncode=1)
    ex.answer(("iptables", "-w", "-t", "nat", "-D"), stderr=BAD_RULE, returncode=1)
    nat = rule(ex).enable()
    with pytest.raises(NotFoundError):
        nat.disable()
    assert ex.commands[-1] == WRITE_BACK
