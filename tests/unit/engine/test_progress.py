"""Progress reports: what the runner and a lab say, how a line shows it, the hook."""

from __future__ import annotations

import io
import logging
from typing import ClassVar

import pytest

from netns_kit import Lab, Namespace
from netns_kit.engine.progress import (
    NotebookBar,
    ProgressEvent,
    Reporter,
    TerminalLine,
    render,
    reporting,
    terminal_hook,
)
from netns_kit.engine.runner import Runner
from netns_kit.executors import RecordingExecutor


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_render() -> None:
    event = ProgressEvent("building lab demo", "links", 120, 480, 1.44)
    assert render(event) == "building lab demo: links 120/480 (1.4 s)"
    assert render(ProgressEvent("", "waiting for spanning tree", 0, 0, 3.0)) == (
        "waiting for spanning tree (3.0 s)"
    )


def test_terminal_line_rewrites_one_line_and_clears_it() -> None:
    stream = io.StringIO()
    line = TerminalLine(stream)
    line(ProgressEvent("t", "links", 1, 2, 0.5))
    line(ProgressEvent("t", "links", 2, 2, 0.6))
    line(ProgressEvent("t", "links", 2, 2, 0.7, finished=True))
    assert stream.getvalue() == ("\rt: links 1/2 (0.5 s)\033[K\rt: links 2/2 (0.6 s)\033[K\r\033[K")
    assert "\n" not in stream.getvalue()


def test_terminal_hook_only_on_a_terminal_and_not_quiet() -> None:
    assert terminal_hook(io.StringIO()) is None
    assert terminal_hook(Terminal(), quiet=True) is None
    assert isinstance(terminal_hook(Terminal()), TerminalLine)


def test_reporter_counts_per_phase_in_phase_order() -> None:
    clock = Clock()
    heard: list[ProgressEvent] = []
    reporter = Reporter(heard.append, task="t", clock=clock)
    reporter.plan(["links", "namespaces", "namespaces", "links", "settings"])
    assert (heard[-1].phase, heard[-1].done, heard[-1].total) == ("namespaces", 0, 2)
    clock.now += 0.01
    reporter.advance("namespaces")  # too soon after the last event: not sent
    assert len(heard) == 1
    reporter.advance("namespaces")  # a phase that ends is always sent, then the next
    assert [(e.phase, e.done, e.total) for e in heard[1:]] == [
        ("namespaces", 2, 2),
        ("links", 0, 2),
    ]
    clock.now += 0.5
    reporter.advance("links")  # a while since the last event: sent
    assert (heard[-1].phase, heard[-1].done) == ("links", 1)
    assert heard[-1].elapsed == pytest.approx(0.51)
    reporter.waiting("waiting for spanning tree", 1, 3)
    assert (heard[-1].phase, heard[-1].done, heard[-1].total) == ("waiting for spanning tree", 1, 3)
    reporter.finish()
    assert heard[-1].finished


def test_lab_hook_hears_every_phase_of_a_build() -> None:
    heard: list[ProgressEvent] = []
    ex = RecordingExecutor()
    with Lab("pr", executor=ex, isolated=True, progress=heard.append) as lab, lab.batch():
        red, blue = lab.namespace("red"), lab.namespace("blue")
        lab.link(red, blue, addresses=("10.0.0.1/24", "10.0.0.2/24"))
        lab.link(red, blue, addresses=("fd00::1/64", "fd00::2/64"))
    phases = [e.phase for e in heard if not e.finished]
    for phase in ("namespaces", "links", "settings", "addresses", "commands"):
        assert phase in phases
    last = {e.phase: e for e in heard if not e.finished}
    assert all(e.done == e.total for e in last.values())  # every phase ends counted whole
    assert sum(e.finished for e in heard) == 2  # the build, then the teardown
    assert all(e.task == "lab pr" for e in heard)


def test_lab_without_hook_counts_nothing() -> None:
    lab = Lab("pr", executor=RecordingExecutor())
    assert lab.journal.runner.progress is None


def test_logger_at_info_hears_each_finished_phase(caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.INFO, logger="netns_kit"),
        Lab("pr", executor=RecordingExecutor()) as lab,
        lab.batch(),
    ):
        lab.link(lab.namespace("red"), lab.namespace("blue"))
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith("namespaces 2/2") for m in said), said
    assert any(m.startswith("links 1/1") for m in said), said


def test_reporting_block_covers_every_runner_in_it() -> None:
    """What recover(), a kept lab's check and snapshots run goes through runners they
    make themselves: a reporting block reaches them all."""
    commands = [Namespace(f"n{i}").delete_commands()[0] for i in range(3)]
    heard: list[ProgressEvent] = []
    with reporting(heard.append, task="tearing down pr"):
        Runner(RecordingExecutor()).run_all(commands, keep_going=True)
    assert heard[0].task == "tearing down pr"
    assert heard[-1].finished
    counted = [(e.phase, e.done, e.total) for e in heard if not e.finished]
    assert counted[0] == ("commands", 0, 3)
    assert counted[-1] == ("commands", 3, 3)
    outside: list[ProgressEvent] = []
    Runner(RecordingExecutor()).run_all(commands)
    assert outside == [] and len(heard) == len(counted) + 1  # nothing after the block


class FakeBar:
    made: ClassVar[list[FakeBar]] = []

    def __init__(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done, self.closed = phase, total, 0, False
        FakeBar.made.append(self)

    def update_to(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def close(self) -> None:
        self.closed = True


def test_notebook_bar_only_after_a_second() -> None:
    FakeBar.made = []
    bar = NotebookBar(FakeBar)
    bar(ProgressEvent("t", "links", 1, 10, 0.5))
    assert FakeBar.made == []  # a quick build shows nothing
    bar(ProgressEvent("t", "links", 5, 10, 1.2))
    bar(ProgressEvent("t", "settings", 3, 40, 1.5))
    assert [(b.phase, b.done, b.total) for b in FakeBar.made] == [
        ("links", 5, 10),
        ("settings", 3, 40),
    ]
    assert FakeBar.made[0].closed
    bar(ProgressEvent("t", "settings", 40, 40, 1.6, finished=True))
    assert FakeBar.made[1].closed


def test_not_in_a_notebook_no_bar() -> None:
    from netns_kit.engine.progress import notebook_hook

    assert notebook_hook() is None  # pytest is not a Jupyter kernel


def test_notebook_hook_draws_with_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a notebook with tqdm, a slow build gets a tqdm bar per phase."""
    pytest.importorskip("tqdm", reason="tqdm is the `progress` extra")
    from netns_kit.engine import progress

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    hook = progress.notebook_hook()
    assert isinstance(hook, NotebookBar)
    hook(ProgressEvent("t", "links", 3, 10, 1.5))
    assert hook.bar is not None
    assert (hook.bar.bar.n, hook.bar.bar.total, hook.bar.bar.desc) == (3, 10, "links")
    hook(ProgressEvent("t", "links", 10, 10, 1.6, finished=True))
    assert hook.bar is None
