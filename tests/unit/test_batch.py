"""Batching: which commands share a process, and how a failed line maps back."""

from __future__ import annotations

import pytest

from netns_kit import AlreadyExistsError, NotFoundError, RecordingExecutor, ScriptExecutor
from netns_kit.batch import batchable, failures, plan
from netns_kit.command import Command, in_namespace, ip
from netns_kit.executor import Result, split_batch

ADD_A = ip("netns", "add", "a")
ADD_B = ip("netns", "add", "b")
LO_A = ip("link", "set", "dev", "lo", "up", namespace="a")
BR_A = ip("link", "add", "name", "br0", "type", "bridge", namespace="a")
SYSCTL_A = in_namespace(("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"), "a")


def test_plan_merges_consecutive_commands_of_one_namespace_and_keeps_order() -> None:
    runs = plan([ADD_A, ADD_B, LO_A, BR_A, SYSCTL_A, ADD_A])
    assert [r.commands for r in runs] == [(ADD_A, ADD_B), (LO_A, BR_A), (SYSCTL_A,), (ADD_A,)]
    assert [r.batched for r in runs] == [True, True, False, False]


def test_a_batch_runs_as_one_ip_process_with_its_lines_on_stdin() -> None:
    run = plan([LO_A, BR_A])[0]
    command = run.command()
    assert command.argv == ("ip", "-n", "a", "-batch", "-")
    assert command.stdin == "link set dev lo up\nlink add name br0 type bridge\n"
    assert run.command(force=True).argv == ("ip", "-n", "a", "-force", "-batch", "-")


@pytest.mark.parametrize(
    "command",
    [
        ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "x"),  # global option
        ip("-j", "link", "show", read=True),  # a read: its output must stay apart
        ip("link", "set", "dev", "x", "alias", "two words"),  # a space splits a batch line
        ip("link", "set", "dev", "x", "alias", "a#b"),  # '#' starts a comment
        ip("netns", "exec", "a", "true"),
        Command(("ip", "-batch", "-"), stdin="netns add a\n"),
        Command(("sysctl", "-w", "x=1")),
    ],
)
def test_what_may_not_go_on_a_batch_line(command: Command) -> None:
    assert not batchable(command)


def test_failures_reads_every_failed_line_and_its_message() -> None:
    stderr = (
        'Cannot find device "nosuch"\nCommand failed -:2\n'
        "RTNETLINK answers: File exists\nCommand failed -:4\n"
    )
    assert failures(stderr) == [
        (1, 'Cannot find device "nosuch"'),
        (3, "RTNETLINK answers: File exists"),
    ]


def test_split_batch_stops_at_the_failed_line_unless_forced() -> None:
    run = plan([ADD_A, ADD_B, ip("netns", "add", "c")])[0]
    batch = Result(("ip", "-batch", "-"), 1, "", "exists\nCommand failed -:2\n")
    stopped = split_batch(run, batch, keep_going=False)
    assert [bool(r) for r in stopped] == [True, False]
    assert stopped[1].argv == ADD_B.argv and stopped[1].stderr == "exists"
    forced = split_batch(run, batch, keep_going=True)
    assert [bool(r) for r in forced] == [True, False, True]


def test_run_all_raises_the_error_of_the_failed_line_with_what_completed() -> None:
    ex = RecordingExecutor()
    ex.fail_at(2, stderr="RTNETLINK answers: File exists", returncode=2)
    with pytest.raises(AlreadyExistsError) as caught:
        ex.run_all([ADD_A, ADD_B, ip("netns", "add", "c"), ip("netns", "add", "d")])
    error = caught.value
    assert error.argv == ("ip", "netns", "add", "c")
    assert "File exists" in str(error) and error.returncode == 2
    assert error.completed == 2
    # the kernel stops a batch at its failed line: "d" never ran
    assert ex.commands == [ADD_A.argv, ADD_B.argv, ("ip", "netns", "add", "c")]
    assert len(ex.runs) == 1 and ex.runs[0].argv == ("ip", "-batch", "-")


def test_keep_going_tries_every_line_and_returns_falsy_results() -> None:
    ex = RecordingExecutor()
    ex.fail_at(0, stderr='Cannot remove namespace file "/run/netns/a": No such file')
    results = ex.run_all([ip("netns", "delete", "a"), ip("netns", "delete", "b")], keep_going=True)
    assert [bool(r) for r in results] == [False, True]
    assert ex.runs[0].argv == ("ip", "-force", "-batch", "-")


def test_a_failure_after_a_batch_counts_the_whole_batch_as_completed() -> None:
    ex = RecordingExecutor()
    ex.fail_at(3, stderr='Cannot find device "x"')
    with pytest.raises(NotFoundError) as caught:
        ex.run_all([ADD_A, ADD_B, SYSCTL_A, LO_A])
    assert caught.value.completed == 3
    assert [r.argv for r in ex.runs] == [("ip", "-batch", "-"), SYSCTL_A.argv, LO_A.argv]


def test_a_dry_run_renders_batched_commands_as_plain_lines() -> None:
    ex = ScriptExecutor()
    ex.run_all([ADD_A, ADD_B, LO_A])
    assert ex.lines == ["ip netns add a", "ip netns add b", "ip -n a link set dev lo up"]
