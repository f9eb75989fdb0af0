"""Outages from synthetic probe series (netns_kit.timeline.outages)."""

from __future__ import annotations

import pytest

from netns_kit.timeline.outages import Outage, Probe, Series, all_outages, outages

PAIR = ("h1", "h2")


def series(pattern: str, *, step: float = 0.01, rtt: float = 0.0002) -> Series:
    """A series from a pattern: ``.`` answered, ``x`` lost, ``l`` answered too late."""
    probes = []
    for i, mark in enumerate(pattern):
        sent = i * step
        answered = {".": sent + rtt, "x": None, "l": sent + 2.0}[mark]
        probes.append(Probe(sent, answered))
    return Series(PAIR, probes)


def test_no_loss_no_outage() -> None:
    assert outages(series("....")) == []


def test_one_outage_between_answers() -> None:
    (found,) = outages(series("..xxx.."))
    assert found == Outage(PAIR, 0.01, 0.05, 3)
    assert found.duration == pytest.approx(0.04)


def test_loss_at_the_start_starts_at_the_first_probe() -> None:
    (found,) = outages(series("xx..."))
    assert (found.start, found.end, found.lost, found.began) == (0.0, 0.02, 2, False)


def test_loss_at_the_end_ends_at_the_last_probe() -> None:
    (found,) = outages(series("..xxx"))
    assert (found.start, found.end, found.lost, found.ended) == (0.01, 0.04, 3, False)
    assert "not over" in str(found)


def test_every_probe_lost() -> None:
    (found,) = outages(series("xxxx"))
    assert (found.began, found.ended, found.lost) == (False, False, 4)


def test_several_outages() -> None:
    found = outages(series(".x..xx.xxx."))
    assert [o.lost for o in found] == [1, 2, 3]
    assert [o.start for o in found] == pytest.approx([0.0, 0.03, 0.06])
    assert [o.end for o in found] == pytest.approx([0.02, 0.06, 0.1])


def test_jitter_in_answers_does_not_make_an_outage() -> None:
    """Replies that come out of order (within the timeout) are answers."""
    probes = [Probe(i * 0.01, i * 0.01 + (0.06 if i % 3 == 0 else 0.001)) for i in range(10)]
    assert outages(Series(PAIR, probes)) == []


def test_probes_are_taken_in_send_order() -> None:
    probes = [Probe(0.02, 0.021), Probe(0.0, 0.001), Probe(0.01, None)]
    (found,) = outages(Series(PAIR, probes))
    assert (found.start, found.end, found.lost) == (0.0, 0.02, 1)


def test_a_late_answer_is_a_lost_probe() -> None:
    (found,) = outages(series("..ll.."))
    assert found.lost == 2
    assert outages(series("..ll.."), timeout=5.0) == []


def test_attribution_to_the_latest_event_before_the_first_loss() -> None:
    events = [(0.005, "first"), (0.025, "r-h2 down"), (0.5, "later")]
    found = outages(series("....xxx..."), events)
    assert [o.after for o in found] == ["r-h2 down"]


def test_an_event_just_after_the_last_answer_is_the_cause() -> None:
    """The last answered probe goes before the event: the loss starts after it."""
    (found,) = outages(series("..xx."), [(0.015, "down")])
    assert found.after == "down"
    assert found.start == 0.01


def test_loss_before_any_event_is_attributed_to_none() -> None:
    (found,) = outages(series(".x.."), [(0.5, "down")])
    assert found.after is None


def test_all_outages_sorted_by_start_and_dict() -> None:
    a = Series(("a", "b"), series("...xx.").probes)
    b = Series(("c", "d"), series(".x....").probes)
    found = all_outages([a, b])
    assert [o.pair for o in found] == [("c", "d"), ("a", "b")]
    assert found[0].to_dict() == {
        "pair": ["c", "d"],
        "start": 0.0,
        "end": 0.02,
        "duration": 0.02,
        "lost": 1,
        "after": None,
        "began": True,
        "ended": True,
    }


def test_shifted_counts_from_the_origin() -> None:
    moved = Series(PAIR, [Probe(10.0, 10.001), Probe(10.01, None)]).shifted(10.0)
    assert [p.sent for p in moved.probes] == pytest.approx([0.0, 0.01])
    assert moved.probes[0].answered == pytest.approx(0.001) and moved.probes[1].answered is None
    assert moved.answered() == 1 and moved.sent == 2
