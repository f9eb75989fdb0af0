"""The runner: guards, checks, batches and the report of what ran, over any executor."""

from __future__ import annotations

import threading
import time

import pytest

from netns_kit import (
    AlreadyExistsError,
    NotFoundError,
    Phase,
    RecordingExecutor,
    Result,
    Runner,
    ScriptExecutor,
    Step,
    ToolMissingError,
)
from netns_kit.command import Command, ip
from netns_kit.engine.runner import act, apply_steps
from netns_kit.errors import CommandError
from netns_kit.executors.batch import Batch

ADD = [ip("netns", "add", n) for n in "abcd"]


def test_guard_skips_the_command_when_it_holds(ex: RecordingExecutor) -> None:
    guarded = Command(("do",), unless=Command(("check",), read=True))
    result = Runner(ex).run(guarded)
    assert ex.commands == [("check",)] and result.argv == ("check",)


def test_guard_runs_the_command_when_it_fails(ex: RecordingExecutor) -> None:
    ex.answer(("check",), returncode=1)
    Runner(ex).run(Command(("do",), unless=Command(("check",), read=True)))
    assert ex.commands == [("check",), ("do",)]


def test_a_step_whose_guard_held_did_not_run(ex: RecordingExecutor) -> None:
    guarded = Command(("add",), unless=Command(("check",), read=True))
    report = Runner(ex).run_steps([Step(ip("x")), Step(guarded, phase=Phase.FILTER)])
    assert report.ok and report.skipped == {1} and report.ran() == [0]


def test_run_all_returns_every_result_in_order(ex: RecordingExecutor) -> None:
    ex.answer(("b",), stdout="B")
    report = Runner(ex).run_all([Command(("a",)), Command(("b",))])
    assert [r.stdout for r in report.results if r is not None] == ["", "B"]
    assert report.ok and report.check() is report and report.order == (0, 1)


def test_the_failed_line_of_a_batch_is_the_error(ex: RecordingExecutor) -> None:
    ex.fail_at(2, stderr="RTNETLINK answers: File exists", returncode=2)
    report = Runner(ex).run_all(ADD)
    assert isinstance(report.error, AlreadyExistsError)
    assert report.error.argv == ("ip", "netns", "add", "c") and report.error.returncode == 2
    assert report.failed == 2 and report.ran() == [0, 1]
    assert report.results[3] is None  # the kernel stops a batch at its failed line
    assert len(ex.runs) == 1 and ex.runs[0].argv == ("ip", "-batch", "-")
    with pytest.raises(AlreadyExistsError):
        report.check()


def test_keep_going_tries_every_line(ex: RecordingExecutor) -> None:
    ex.fail_at(0, stderr='Cannot remove namespace file "/run/netns/a": No such file')
    report = Runner(ex).run_all(
        [ip("netns", "delete", "a"), ip("netns", "delete", "b")], keep_going=True
    )
    assert [bool(r) for r in report.results] == [False, True]
    assert [type(e) for e in report.failures()] == [NotFoundError]
    assert ex.runs[0].argv == ("ip", "-force", "-batch", "-")


def test_a_missing_program_fails_the_run_not_the_caller() -> None:
    class NoIp(RecordingExecutor):
        def execute_batch(self, batch: Batch) -> Result:
            raise ToolMissingError("ip")

    report = Runner(NoIp()).run_all(ADD)
    assert isinstance(report.error, ToolMissingError) and report.failed is None
    assert report.ran() == []


def test_progress_hears_of_every_process(ex: RecordingExecutor) -> None:
    heard: list[tuple[int, int]] = []
    steps = [Step(c, phase=Phase.NAMESPACE) for c in ADD] + [Step(ip("y", namespace="a"))]
    Runner(ex, on_progress=lambda done, total: heard.append((done, total))).run_steps(steps)
    assert heard[-1] == (5, 5) and all(t == 5 for _, t in heard)


class SlowParallel(RecordingExecutor):
    """Two batches at once, each taking a while: how many overlap, in which thread."""

    parallel = 2

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def execute_batch(self, batch: Batch) -> Result:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
            return super().execute_batch(batch)


def test_lanes_of_different_namespaces_overlap_as_far_as_the_executor_allows() -> None:
    ex = SlowParallel()
    steps = [Step(ip("x", namespace=n)) for n in "abcd"] + [
        Step(ip("y", namespace=n)) for n in "abcd"
    ]
    report = Runner(ex).run_steps(steps)
    assert report.ok and ex.most == 2
    assert len(ex.runs) == 4  # one batch per namespace
    assert sorted(report.order) == list(range(8))


def test_a_failing_lane_stops_the_lanes_not_started_yet() -> None:
    ex = SlowParallel()
    ex.fail_at(0)
    steps = [Step(ip("x", namespace=n)) for n in "abcdef"]
    report = Runner(ex).run_steps(steps)
    assert report.error is not None
    assert len(ex.runs) <= 3  # the failed one, the one beside it, at most one more


def test_the_dry_run_writes_a_guard_with_its_command() -> None:
    ex = ScriptExecutor()
    act(ex, [Command(("add",), unless=Command(("check",), read=True))])
    assert ex.lines == ["check || add"]


def test_steps_outside_a_lab_are_undone_when_one_fails(ex: RecordingExecutor) -> None:
    made = Step(ip("netns", "add", "a"), (ip("netns", "delete", "a"),), phase=Phase.NAMESPACE)
    fails = Step(ip("link", "set", "dev", "lo", "up", namespace="a"))
    ex.fail_at(1)
    with pytest.raises(CommandError, match="injected failure"):
        apply_steps(ex, [made, fails])
    assert ex.commands[-1] == ("ip", "netns", "delete", "a")
    assert apply_steps(RecordingExecutor(), [made]) == [made]
