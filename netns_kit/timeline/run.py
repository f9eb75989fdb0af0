"""What a timeline run gives back: every probe, every event, and the outages.

Times are seconds from the start of the run (the moment the probes started), on the
monotonic clock the probes and the events share.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.timeline.outages import Outage, Series, all_outages

if TYPE_CHECKING:
    from netns_kit.timeline.watch import Watch


@attrs.frozen
class Happened:
    """An event of a run: planned ``at``, ``started`` and ``finished`` (seconds)."""

    at: float
    label: str
    started: float
    finished: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "label": self.label,
            "started": round(self.started, 6),
            "finished": round(self.finished, 6),
        }


def _key(pair: object) -> tuple[str, str]:
    if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
        raise ValidationError("pair", pair, "is not a (source, target) pair")
    a, b = (str(getattr(x, "name", x)) for x in pair)
    return a, b


@attrs.frozen
class Run:
    """A timeline run: ``series`` (each pair's probes), ``events``, the settings."""

    series: tuple[Series, ...]
    events: tuple[Happened, ...]
    interval: float
    timeout: float
    until: float
    method: str = "raw"
    stopped: bool = False

    @classmethod
    def of(
        cls, watch: Watch, events: Sequence[Happened], *, origin: float, until: float, stopped: bool
    ) -> Run:
        return cls(
            tuple(s.shifted(origin) for s in watch.series),
            tuple(events),
            watch.interval,
            watch.timeout,
            until,
            watch.method,
            stopped,
        )

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [s.pair for s in self.series]

    def _series(self, pair: object) -> Series:
        key = _key(pair)
        for found in self.series:
            if found.pair == key:
                return found
        raise ValidationError("pair", list(key), f"was not watched (watched: {self.pairs})")

    def outages(self, pair: object = None) -> list[Outage]:
        """Every outage (or one pair's), in the order they started, each attributed to
        the latest event before its first lost probe."""
        marks = [(e.started, e.label) for e in self.events]
        chosen = self.series if pair is None else (self._series(pair),)
        return all_outages(chosen, marks, timeout=self.timeout)

    def max_outage(self, pair: object) -> float:
        """The longest outage of ``pair`` in seconds (0.0: none)."""
        return max((o.duration for o in self.outages(pair)), default=0.0)

    def lost(self, pair: object = None) -> int:
        """Probes lost (not answered within the timeout), of one pair or all."""
        chosen = self.series if pair is None else (self._series(pair),)
        return sum(s.sent - s.answered(self.timeout) for s in chosen)

    def _event(self, event: object) -> Happened:
        if isinstance(event, Happened):
            return event
        if isinstance(event, int) and not isinstance(event, bool) and 0 <= event < len(self.events):
            return self.events[event]
        for found in self.events:
            if found.label == event or getattr(event, "label", None) == found.label:
                return found
        raise ValidationError("event", event, "is not an event of this run")

    def converged_at(self, event: object) -> float | None:
        """When every pair answered again after ``event`` (an event, its label or
        index): the end of the last outage it caused, its own start when it caused
        none, ``None`` when one had not ended when the run did."""
        chosen = self._event(event)
        later = [e.started for e in self.events if e.started > chosen.started]
        before = min(later, default=float("inf"))
        caused = [
            o
            for o in self.outages()
            if o.after == chosen.label and chosen.started <= o.end and o.start < before
        ]
        if any(not o.ended for o in caused):
            return None
        return max((o.end for o in caused), default=chosen.started)

    # -- views ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "interval": self.interval,
            "timeout": self.timeout,
            "until": self.until,
            "method": self.method,
            "stopped": self.stopped,
            "events": [e.to_dict() for e in self.events],
            "pairs": [
                {
                    "pair": list(s.pair),
                    "address": s.address,
                    "sent": s.sent,
                    "lost": s.sent - s.answered(self.timeout),
                    "max_outage": round(self.max_outage(s.pair), 6),
                }
                for s in self.series
            ],
            "outages": [o.to_dict() for o in self.outages()],
        }

    def table(self) -> str:
        """The events and the outages as text (what ``netns-kit run`` prints)."""
        lines = ["events:"]
        lines += [f"  {e.started:8.3f} s  {e.label}" for e in self.events] or ["  (none)"]
        found = self.outages()
        lines.append("outages:" if found else "outages: none")
        if found:
            lines.append(f"  {'pair':<28} {'start':>8} {'end':>8} {'length':>8} {'lost':>6}  after")
        for o in found:
            pair = f"{o.pair[0]} -> {o.pair[1]}"
            tail = "" if o.ended else " (not over)"
            lines.append(
                f"  {pair:<28} {o.start:8.3f} {o.end:8.3f} {o.duration:8.3f} {o.lost:6d}  "
                f"{o.after or '-'}{tail}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    f"{o.pair[0]} → {o.pair[1]}",
                    f"{o.start:.3f}",
                    f"{o.end:.3f}",
                    f"{o.duration:.3f}",
                    o.lost,
                    (o.after or "-") + ("" if o.ended else " (not over)"),
                )
            )
            + "</tr>"
            for o in self.outages()
        )
        head = "".join(
            f"<th>{h}</th>" for h in ("pair", "start (s)", "end (s)", "length (s)", "lost", "after")
        )
        body = rows or '<tr><td colspan="6">no outage</td></tr>'
        return (
            f"<p>{len(self.series)} pairs every {self.interval * 1000:g} ms, "
            f"{len(self.events)} events, {self.until:g} s</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def plot(self, ax: Any = None) -> Any:
        """Each pair's reachability over time as a strip (green: answered, red: out),
        the events as vertical lines.  Needs matplotlib (the ``notebook`` extra)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "run.plot() needs matplotlib: pip install 'netns-kit[notebook]'"
            ) from None
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 0.6 + 0.45 * max(1, len(self.series))))
        for row, found in enumerate(self.series):
            ax.broken_barh([(0.0, self.until)], (row - 0.35, 0.7), color="#4caf50")
            spans = [(o.start, o.duration) for o in self.outages(found.pair)]
            if spans:
                ax.broken_barh(spans, (row - 0.35, 0.7), color="#e53935")
        for event in self.events:
            ax.axvline(event.started, color="#333333", linestyle="--", linewidth=1)
            ax.annotate(
                event.label,
                (event.started, len(self.series) - 0.5),
                rotation=90,
                fontsize=8,
                va="top",
                ha="right",
            )
        ax.set_yticks(range(len(self.series)))
        ax.set_yticklabels([f"{a} → {b}" for a, b in self.pairs])
        ax.set_xlim(0, self.until)
        ax.set_ylim(-0.6, len(self.series) - 0.4)
        ax.set_xlabel("seconds")
        return ax
