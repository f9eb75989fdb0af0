"""A check reports its reads, its probes and its second tries."""

from __future__ import annotations

from pathlib import Path

from netns_kit.engine.progress import ProgressEvent, reporting

from ..lab.test_lab_views import build
from .test_check import Prober


def test_check_reports_reading_and_probing(state: Path) -> None:
    def late(source: str, address: str, call: int) -> float | None:
        return None if (source, address, call) == ("blue", "192.168.15.1", 1) else 0.1

    ex = Prober(late)
    lab = build(ex, state)
    heard: list[ProgressEvent] = []
    with reporting(heard.append, task="checking views"):
        result = lab.reachability()
    lab.close()
    assert result.ok and result.retried == 1
    phases = [(e.phase, e.done, e.total) for e in heard if not e.finished]
    assert ("reading", 3, 3) in phases  # the host side and the two namespaces
    assert ("probing pairs", 0, 2) in phases
    assert ("probing pairs", 2, 2) in phases
    assert ("asking the failed pairs again", 0, 1) in phases
    assert heard[-1].finished and heard[-1].task == "checking views"
