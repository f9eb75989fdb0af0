"""The answer to "does it work, all of it?": a reachability matrix.

:meth:`Lab.reachability() <netns_kit.Lab.reachability>` and ``netns-kit check`` probe
every address of every namespace from every other namespace (see
:mod:`netns_kit.check.checker`) and return a :class:`Reachability`: for each ``(source
namespace, target address)`` the best round-trip time in milliseconds, or ``None``
when nothing came back.  It knows how it was measured (raw sockets or fping, paced
or not, how long it took) and shows itself as text (a matrix, or a summary when
there are many namespaces), as JSON-ready data, and in Jupyter as a heat map.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from netns_kit.executors.probes import family_of

Pair = tuple[str, str]  # (source namespace, target address)


@attrs.frozen(order=True)
class Target:
    """An address to probe, and the namespace (and interface) that holds it."""

    namespace: str
    address: str
    interface: str | None = attrs.field(default=None, order=False)

    @property
    def family(self) -> int:
        return family_of(self.address)


@attrs.frozen(order=True)
class Failure:
    """A pair that did not answer, and why (``no reply``, or why nothing was sent)."""

    source: str
    target: Target
    reason: str = attrs.field(default="no reply", order=False)

    def __str__(self) -> str:
        where = self.target.namespace
        if self.target.interface:
            where += f"/{self.target.interface}"
        return f"{self.source} -> {self.target.address} ({where}): {self.reason}"


def _rtts(value: Mapping[Pair, float | None]) -> dict[Pair, float | None]:
    return dict(value)


def _reasons(value: Mapping[Pair, str]) -> dict[Pair, str]:
    return dict(value)


@attrs.frozen(eq=True, hash=False)
class Reachability:
    """Which source reached which address, and how fast.

    ``rtts[(source, address)]`` is the best round-trip time in milliseconds, or
    ``None``.  ``errors`` says, for some failed pairs, why no request went out.
    ``method`` is ``raw`` (raw ICMP sockets) or ``fping``; ``paced`` is true when the
    probes went out in ``rounds`` because the neighbour table's limits could not be
    raised; ``retried`` counts the pairs that answered only when asked a second time;
    ``notes`` says what the check did to the machine meanwhile (and undid).
    """

    sources: tuple[str, ...]
    targets: tuple[Target, ...]
    rtts: dict[Pair, float | None] = attrs.field(converter=_rtts)
    errors: dict[Pair, str] = attrs.field(factory=dict, converter=_reasons)
    seconds: float = 0.0
    method: str = "raw"
    paced: bool = False
    rounds: int = 1
    retried: int = 0
    notes: tuple[str, ...] = ()
    lab: str | None = None

    # -- reading it -------------------------------------------------------------------
    def __getitem__(self, pair: Pair) -> float | None:
        return self.rtts[pair]

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.rtts)

    def __len__(self) -> int:
        return len(self.rtts)

    @property
    def matrix(self) -> dict[Pair, float | None]:
        """``(source, target address) -> rtt in ms or None``, every pair probed."""
        return dict(self.rtts)

    @property
    def ok(self) -> bool:
        """Every pair answered."""
        return all(rtt is not None for rtt in self.rtts.values())

    @property
    def answered(self) -> int:
        return sum(rtt is not None for rtt in self.rtts.values())

    @property
    def namespaces(self) -> list[str]:
        """Every namespace taking part, sources first, in the order probed."""
        return list(dict.fromkeys([*self.sources, *(t.namespace for t in self.targets)]))

    def target(self, address: str) -> Target:
        """The target with this address (KeyError when none)."""
        for target in self.targets:
            if target.address == address:
                return target
        raise KeyError(address)

    def failures(self) -> list[Failure]:
        """Every pair that did not answer, in the order the pairs were probed."""
        by_address = {t.address: t for t in self.targets}
        return [
            Failure(source, by_address[address], self.errors.get((source, address), "no reply"))
            for (source, address), rtt in self.rtts.items()
            if rtt is None
        ]

    def grid(self) -> dict[tuple[str, str], tuple[int, int]]:
        """``(source, target namespace) -> (answered, probed)`` for every pair probed."""
        by_address = {t.address: t.namespace for t in self.targets}
        counts: dict[tuple[str, str], list[int]] = {}
        for (source, address), rtt in self.rtts.items():
            tally = counts.setdefault((source, by_address[address]), [0, 0])
            tally[0] += rtt is not None
            tally[1] += 1
        return {key: (a, n) for key, (a, n) in counts.items()}

    def between(self, source: str, namespace: str) -> list[float | None]:
        """The results from ``source`` to each address of ``namespace``."""
        return [
            self.rtts[(source, t.address)]
            for t in self.targets
            if t.namespace == namespace and (source, t.address) in self.rtts
        ]

    # -- showing it ---------------------------------------------------------------------
    def summary(self) -> str:
        """One line: how many pairs answered, how the check ran, how long it took."""
        families = sorted({t.family for t in self.targets})
        over = " and ".join(f"IPv{f}" for f in families) or "no addresses"
        what = f"{self.answered}/{len(self.rtts)} pairs answered"
        how = f"{len(self.sources)} sources, {len(self.targets)} addresses, {over}"
        extra = []
        if self.paced:
            extra.append(f"paced in {self.rounds} rounds")
        if self.retried:
            extra.append(f"{self.retried} answered on the second try")
        tail = f"; {'; '.join(extra)}" if extra else ""
        return f"{what} ({how}; {self.method}{tail}) in {self.seconds:.2f} s"

    def to_text(self, *, compact: bool | None = None) -> str:
        """A matrix of namespaces (``compact``: a summary and the failures only; by
        default compact above 12 namespaces)."""
        from netns_kit.render.heatmap import reachability_text  # drawing loads when asked

        return reachability_text(self, compact=compact)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        """Jupyter: a heat map, green where a pair answered, red where it did not."""
        from netns_kit.render.heatmap import reachability_html  # drawing loads when asked

        return reachability_html(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the summary, every target, every result, the failures."""
        by_address = {t.address: t for t in self.targets}
        return {
            "lab": self.lab,
            "ok": self.ok,
            "pairs": len(self.rtts),
            "answered": self.answered,
            "seconds": round(self.seconds, 4),
            "method": self.method,
            "paced": self.paced,
            "rounds": self.rounds,
            "retried": self.retried,
            "notes": list(self.notes),
            "sources": list(self.sources),
            "targets": [attrs.asdict(t) for t in self.targets],
            "results": [
                {
                    "source": source,
                    "namespace": by_address[address].namespace,
                    "address": address,
                    "rtt_ms": None if rtt is None else round(rtt, 4),
                }
                for (source, address), rtt in self.rtts.items()
            ],
            "failures": [
                {
                    "source": f.source,
                    "namespace": f.target.namespace,
                    "address": f.target.address,
                    "reason": f.reason,
                }
                for f in self.failures()
            ],
        }
