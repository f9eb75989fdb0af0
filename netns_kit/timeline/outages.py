"""Outages from probe series: pure, so that every edge case is a unit test.

A *series* is every probe one pair sent during a watch: when it was sent and when
(if ever) its reply came, on one monotonic clock shared with the events.  A probe
counts as answered when its reply came within ``timeout`` of sending it: a reply
that a router or a neighbour queue held back for seconds is a lost probe as far as
the user is concerned (a kernel queues packets for an unresolved neighbour and may
deliver them late, after the path came back).

An *outage* is the time between the last answered probe before a loss and the first
answered probe after it, per pair, measured on the probes' send times (the state of
the path when the probe left).  It is attributed to the latest event that happened
before its first lost probe left.  Two edge cases keep their numbers and say so:

* loss from the first probe (the pair never answered before): the outage starts at
  the first probe, ``began=False``;
* loss until the last probe (the pair had not answered again when the watch ended):
  the outage ends at the last probe, ``ended=False``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from netns_kit.executors.probes import TIMEOUT as TIMEOUT
from netns_kit.executors.probes import Probe as Probe


def _probes(value: Iterable[Probe]) -> tuple[Probe, ...]:
    return tuple(sorted(value, key=lambda p: p.sent))


@attrs.frozen
class Series:
    """Every probe of one pair, in the order they were sent.

    ``pair`` is how the user named it (source, target); ``address`` is the address
    really probed.
    """

    pair: tuple[str, str]
    probes: tuple[Probe, ...] = attrs.field(converter=_probes)
    address: str = ""

    @property
    def sent(self) -> int:
        return len(self.probes)

    def answered(self, timeout: float = TIMEOUT) -> int:
        return sum(1 for p in self.probes if p.ok(timeout))

    def shifted(self, origin: float) -> Series:
        """The same series with times counted from ``origin`` (a run's start)."""
        moved = [
            Probe(p.sent - origin, None if p.answered is None else p.answered - origin)
            for p in self.probes
        ]
        return attrs.evolve(self, probes=moved)


@attrs.frozen
class Outage:
    """A pair cut off from ``start`` to ``end`` (seconds), ``lost`` probes lost,
    attributed to the event ``after`` (its label; ``None``: before any event)."""

    pair: tuple[str, str]
    start: float
    end: float
    lost: int
    after: str | None = None
    began: bool = True
    ended: bool = True

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair": list(self.pair),
            "start": round(self.start, 6),
            "end": round(self.end, 6),
            "duration": round(self.duration, 6),
            "lost": self.lost,
            "after": self.after,
            "began": self.began,
            "ended": self.ended,
        }

    def __str__(self) -> str:
        tail = "" if self.ended else " (not over when the run ended)"
        cause = f" after {self.after}" if self.after else ""
        return (
            f"{self.pair[0]} -> {self.pair[1]}: {self.duration:.3f} s "
            f"({self.start:.3f}-{self.end:.3f}, {self.lost} lost){cause}{tail}"
        )


def outages(
    series: Series,
    events: Sequence[tuple[float, str]] = (),
    *,
    timeout: float = TIMEOUT,
) -> list[Outage]:
    """The outages of one series; ``events`` are ``(time, label)`` on the same clock."""
    probes = series.probes
    marks = sorted(events, key=lambda e: e[0])
    times = [t for t, _ in marks]
    found: list[Outage] = []
    index = 0
    count = len(probes)
    while index < count:
        if probes[index].ok(timeout):
            index += 1
            continue
        first = index
        while index < count and not probes[index].ok(timeout):
            index += 1
        began = first > 0
        ended = index < count
        start = probes[first - 1].sent if began else probes[first].sent
        end = probes[index].sent if ended else probes[count - 1].sent
        where = bisect.bisect_right(times, probes[first].sent)
        after = marks[where - 1][1] if where > 0 else None
        found.append(Outage(series.pair, start, end, index - first, after, began, ended))
    return found


def all_outages(
    series: Iterable[Series],
    events: Sequence[tuple[float, str]] = (),
    *,
    timeout: float = TIMEOUT,
) -> list[Outage]:
    """Every series' outages, in the order they started."""
    found = [o for s in series for o in outages(s, events, timeout=timeout)]
    return sorted(found, key=lambda o: (o.start, o.pair))
