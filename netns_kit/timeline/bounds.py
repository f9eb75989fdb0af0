"""Bounds a run must keep: the run half of a topology file's ``[expect]`` table.

::

    [expect]
    max_outage = "3s"        # no watched pair is cut off longer than this
    lost = 0                 # no watched pair loses a probe

    [[expect.pairs]]         # one pair's own bounds (override the above)
    pair = ["h1", "h2"]
    max_outage = "2.5s"
    lost = 300

The table is read by :class:`netns_kit.check.expect.Expectations` (whose ``[[fail]]`` rules
are the reachability check's); these keys are its run bounds.  Pure: checked here,
applied to a :class:`~netns_kit.timeline.run.Run` by :meth:`RunBounds.failures`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from netns_kit import units
from netns_kit.errors import ValidationError
from netns_kit.spec.keys import EXPECT, EXPECT_PAIR

if TYPE_CHECKING:
    from netns_kit.timeline.run import Run

#: The keys of ``[expect]`` that bound a run.
KEYS = tuple(k for k in EXPECT.allowed if k != "fail")
PAIR_KEYS = EXPECT_PAIR.allowed


def _seconds(value: object, field: str) -> float:
    return units.duration(value, field) / 1e6


def _lost(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(field, value, "is not a number of probes (0 or more)")
    return value


def _pair(value: object, field: str) -> tuple[str, str]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise ValidationError(field, value, "is not a pair: [source, target]")
    return str(value[0]), str(value[1])


@attrs.frozen
class Bound:
    """``max_outage`` (seconds) and ``lost`` (probes) for ``pair`` (``None``: every pair)."""

    pair: tuple[str, str] | None = None
    max_outage: float | None = None
    lost: int | None = None


@attrs.frozen
class RunBounds:
    """The bounds of ``[expect]``: one for every pair, then each pair's own."""

    every: Bound = Bound()
    pairs: tuple[Bound, ...] = ()

    @property
    def empty(self) -> bool:
        return self.every == Bound() and not self.pairs

    def for_pair(self, pair: tuple[str, str]) -> Bound:
        own = next((b for b in self.pairs if b.pair == pair), None)
        if own is None:
            return attrs.evolve(self.every, pair=pair)
        return Bound(
            pair,
            own.max_outage if own.max_outage is not None else self.every.max_outage,
            own.lost if own.lost is not None else self.every.lost,
        )

    def failures(self, run: Run) -> list[str]:
        """Every bound the run broke, as a sentence each (empty: all kept)."""
        broken = []
        watched = set(run.pairs)
        for bound in self.pairs:
            if bound.pair is not None and bound.pair not in watched:
                broken.append(
                    f"pair {bound.pair[0]} -> {bound.pair[1]} has bounds but was not watched"
                )
        for pair in run.pairs:
            bound = self.for_pair(pair)
            name = f"{pair[0]} -> {pair[1]}"
            longest = run.max_outage(pair)
            if bound.max_outage is not None and longest > bound.max_outage:
                broken.append(
                    f"{name}: longest outage {longest:.3f} s > max_outage {bound.max_outage:g} s"
                )
            lost = run.lost(pair)
            if bound.lost is not None and lost > bound.lost:
                broken.append(f"{name}: {lost} probes lost > lost {bound.lost}")
        return broken

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.every.max_outage is not None:
            out["max_outage"] = self.every.max_outage
        if self.every.lost is not None:
            out["lost"] = self.every.lost
        if self.pairs:
            out["pairs"] = [
                {
                    k: v
                    for k, v in (
                        ("pair", list(b.pair or ())),
                        ("max_outage", b.max_outage),
                        ("lost", b.lost),
                    )
                    if v is not None
                }
                for b in self.pairs
            ]
        return out


def from_dict(data: Mapping[str, Any], where: str = "") -> RunBounds:
    """The run bounds of an ``[expect]`` table (its other keys are left alone)."""
    every = Bound(
        None,
        _seconds(data["max_outage"], f"{where}max_outage") if "max_outage" in data else None,
        _lost(data["lost"], f"{where}lost") if "lost" in data else None,
    )
    entries = data.get("pairs", [])
    if not isinstance(entries, list):
        raise ValidationError(f"{where}pairs", entries, "is not a list of [[expect.pairs]] tables")
    pairs: list[Bound] = []
    for index, entry in enumerate(entries):
        at = f"{where}pairs[{index}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(at, entry, "is not a table with pair, max_outage, lost")
        extra = sorted(set(entry) - set(PAIR_KEYS))
        if extra:
            raise ValidationError(f"{at}.{extra[0]}", entry[extra[0]], "is not a key here")
        if "pair" not in entry:
            raise ValidationError(f"{at}.pair", None, "is missing")
        pair = _pair(entry["pair"], f"{at}.pair")
        if any(b.pair == pair for b in pairs):
            raise ValidationError(f"{at}.pair", list(pair), "has bounds twice")
        pairs.append(
            Bound(
                pair,
                _seconds(entry["max_outage"], f"{at}.max_outage")
                if "max_outage" in entry
                else None,
                _lost(entry["lost"], f"{at}.lost") if "lost" in entry else None,
            )
        )
    return RunBounds(every, tuple(pairs))
