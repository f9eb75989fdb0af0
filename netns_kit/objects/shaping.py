"""Link shaping: rate, delay, jitter and loss on a veth pair, with ``tc``.

A link is shaped where packets leave it: a qdisc on the egress of an end shapes the
traffic that end sends.  ``direction="a->b"`` puts one on the first end,
``"b->a"`` on the other, ``"both"`` on each.  A link has one shaping at a time:
changing it (:meth:`~netns_kit.VethPair.shape`) uses ``tc qdisc replace``, so the
link is never unshaped in between, and removes the qdisc of an end that is no
longer shaped.

Which qdisc:

* **A rate alone** uses ``tbf`` with ``burst = max(rate in bytes/s x 1 ms, 2 x
  (MTU + 14))`` and ``latency 50ms``.  tbf silently drops a frame larger than its
  burst, so the burst holds two full frames (1514 bytes each at MTU 1500); past
  that, 1 ms worth of traffic lets a fast link send several frames per timer tick.
  ``latency`` bounds the queue (tbf's limit is ``rate x latency + burst``).
  Measured on this project's test machine: 0.95-0.96 of the set rate, TCP goodput,
  from 1 mbit to 1 gbit.
* **Delay, jitter or loss**, with or without a rate, uses ``netem``, which takes the
  rate itself.  netem keeps its default queue of 1000 packets.

Before a shaping runs, :func:`netns_kit.objects.qdisc_support.require` checks that the
kernel has the qdisc, with a
``tc qdisc add`` in a throwaway namespace (``unshare --net``, which leaves nothing
behind), once per executor.  A kernel without it (``sch_netem`` is often a separate
module) gives :class:`~netns_kit.errors.KernelFeatureMissingError` before anything
changed.

Reading back: ``tc -j qdisc show`` gives tbf's rate in bytes/s, its burst in bytes
and its latency (``lat``) in microseconds, rounded, without its ``limit``; netem's
delay and jitter in seconds and its loss as a fraction.  :class:`QdiscInfo` holds
them in the units a :class:`Shape` uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import attrs

from netns_kit import units, validate
from netns_kit.command import Command, tc
from netns_kit.errors import (
    ValidationError,
)

DIRECTIONS = ("both", "a->b", "b->a")
#: tbf's latency: how long a packet may wait in its queue.
TBF_LATENCY = 50_000  # microseconds
#: What an Ethernet frame adds to the MTU; tbf's burst must hold a whole frame.
FRAME_OVERHEAD = 14
DEFAULT_MTU = 1500


def burst(rate: int, mtu: int | None = None) -> int:
    """tbf's burst in bytes for ``rate`` bits/s: 1 ms of traffic, at least two frames."""
    frame = (mtu or DEFAULT_MTU) + FRAME_OVERHEAD
    return max(-(-rate // 8000), 2 * frame)


class Settings(TypedDict, total=False):
    """A shape as keyword arguments (and topology-file keys), in tc's units."""

    rate: str
    delay: str
    jitter: str
    loss: float


@attrs.frozen
class Shape:
    """How a link is shaped, in exact units.

    ``rate`` in bits per second, ``delay`` and ``jitter`` in microseconds, ``loss``
    in percent; ``None`` for what is not shaped.  Build one with :meth:`of`, which
    takes ``tc``'s units and numbers and checks everything.
    """

    rate: int | None = None
    delay: int | None = None
    jitter: int | None = None
    loss: float | None = None

    @classmethod
    def of(
        cls, rate: object = None, delay: object = None, jitter: object = None, loss: object = None
    ) -> Shape | None:
        """Check and convert (see :mod:`netns_kit.units`); ``None`` when nothing is given."""
        return cls.combined(
            None if rate is None else units.rate(rate, "rate"),
            None if delay is None else units.duration(delay, "delay"),
            None if jitter is None else units.duration(jitter, "jitter"),
            None if loss is None else units.percent(loss, "loss"),
        )

    @classmethod
    def combined(
        cls, rate: int | None, delay: int | None, jitter: int | None, loss: float | None
    ) -> Shape | None:
        """Values already converted, checked together; ``None`` when all are ``None``."""
        if jitter is not None:
            shown = units.duration_text(jitter)
            if delay is None:
                raise ValidationError("jitter", shown, "needs a delay: netem varies the delay")
            if jitter > delay:
                raise ValidationError(
                    "jitter",
                    shown,
                    f"is larger than the delay ({units.duration_text(delay)}): some packets "
                    "would need a negative delay",
                )
        if rate is None and delay is None and jitter is None and loss is None:
            return None
        return cls(rate, delay, jitter, loss)

    @property
    def kind(self) -> str:
        """``tbf`` for a rate alone, else ``netem``."""
        return "tbf" if self.delay is None and self.loss is None else "netem"

    def qdisc_args(self, mtu: int | None = None) -> tuple[str, ...]:
        """The qdisc as ``tc qdisc ... root`` takes it (``mtu`` sizes tbf's burst)."""
        if self.kind == "tbf":
            assert self.rate is not None
            return (
                "tbf",
                "rate",
                units.rate_text(self.rate),
                "burst",
                str(burst(self.rate, mtu)),
                "latency",
                units.duration_text(TBF_LATENCY),
            )
        words = ["netem"]
        if self.delay is not None:
            words += ["delay", units.duration_text(self.delay)]
            if self.jitter:
                words.append(units.duration_text(self.jitter))
        if self.loss is not None:
            words += ["loss", units.percent_text(self.loss)]
        if self.rate is not None:
            words += ["rate", units.rate_text(self.rate)]
        return tuple(words)

    def settings(self) -> Settings:
        """The keyword arguments (and topology-file keys) that give this shape."""
        out = Settings()
        if self.rate is not None:
            out["rate"] = units.rate_text(self.rate)
        if self.delay is not None:
            out["delay"] = units.duration_text(self.delay)
        if self.jitter is not None:
            out["jitter"] = units.duration_text(self.jitter)
        if self.loss is not None:
            out["loss"] = self.loss
        return out

    @property
    def label(self) -> str:
        """What pictures and tables show: ``10mbit 20ms±5ms 1%``."""
        parts = []
        if self.rate is not None:
            parts.append(units.rate_text(self.rate))
        if self.delay is not None:
            delay = units.duration_text(self.delay)
            if self.jitter:
                delay += "±" + units.duration_text(self.jitter)
            parts.append(delay)
        if self.loss is not None:
            parts.append(units.percent_text(self.loss))
        return " ".join(parts)


def settings(shape: Shape | None) -> Settings:
    """A shape's keyword arguments; none for ``None``."""
    return Settings() if shape is None else shape.settings()


def check_direction(value: object, field: str = "direction") -> str:
    """``both``, ``a->b`` or ``b->a``."""
    if not isinstance(value, str) or value not in DIRECTIONS:
        raise ValidationError(field, value, "is not 'both', 'a->b' or 'b->a'")
    return value


def given(
    rate: object = None,
    delay: object = None,
    jitter: object = None,
    loss: object = None,
    direction: object = "both",
) -> tuple[Shape | None, str]:
    """A builder's shaping arguments, checked: the shape (``None``: unshaped) and its
    direction."""
    shape = Shape.of(rate, delay, jitter, loss)
    way = check_direction(direction)
    if shape is None and way != "both":
        raise ValidationError(
            "direction", way, "is given, but nothing shapes the link (rate, delay, jitter, loss)"
        )
    return shape, way


def flipped(way: str) -> str:
    """The same direction seen from the other end."""
    return {"a->b": "b->a", "b->a": "a->b"}.get(way, way)


def egress(shape: Shape | None, way: str) -> tuple[Shape | None, Shape | None]:
    """What each end's egress carries: the first end's, then the second's."""
    return (
        shape if way in ("both", "a->b") else None,
        shape if way in ("both", "b->a") else None,
    )


def describe(shape: Shape | None, way: str, a: str, b: str) -> str | None:
    """A link's shaping as a picture labels it; a one-way shaping says which way."""
    if shape is None:
        return None
    if way == "both":
        return shape.label
    source, target = (a, b) if way == "a->b" else (b, a)
    return f"{shape.label} ({source}->{target})"


# -- commands (pure) -------------------------------------------------------------------
def shape_command(
    dev: str, namespace: str | None, shape: Shape | None, mtu: int | None = None
) -> Command:
    """Leave ``dev``'s egress shaped as ``shape``: ``tc qdisc replace`` (never a moment
    unshaped), or ``tc qdisc del`` for ``None``."""
    name = validate.interface_name(dev, "dev")
    if shape is None:
        return tc("qdisc", "del", "dev", name, "root", namespace=namespace)
    command = tc(
        "qdisc", "replace", "dev", name, "root", *shape.qdisc_args(mtu), namespace=namespace
    )
    return attrs.evolve(command, needs=f"sch_{shape.kind}")


def qdiscs_command(namespace: str | None = None) -> Command:
    ns = validate.optional_namespace(namespace)
    return tc("-j", "qdisc", "show", namespace=ns, read=True)


#: The smallest qdisc of each kind we use, for the probe.
# -- reading back (pure) ----------------------------------------------------------------
@attrs.frozen
class QdiscInfo:
    """A link's root qdisc as ``tc -j qdisc show`` reports it, in :class:`Shape`'s units.

    ``rate`` in bits per second, ``burst`` in bytes, ``latency`` (tbf), ``delay`` and
    ``jitter`` (netem) in microseconds, ``loss`` in percent, ``limit`` in packets
    (netem; tc leaves tbf's out).  Values tc rounded come back rounded: a tbf burst
    of 3028 reads 3027.
    """

    kind: str
    rate: int | None = None
    burst: int | None = None
    latency: int | None = None
    delay: int | None = None
    jitter: int | None = None
    loss: float | None = None
    limit: int | None = None

    @property
    def shape(self) -> Shape | None:
        """The shaping this qdisc stands for; ``None`` for other kinds."""
        if self.kind == "tbf" and self.rate:
            return Shape(rate=self.rate)
        if self.kind != "netem":
            return None
        delay = self.delay if self.delay or self.jitter else None
        return Shape.combined(self.rate or None, delay, self.jitter or None, self.loss or None)

    @property
    def label(self) -> str:
        """``10mbit 20ms 1%`` for a shaping, else the qdisc's kind."""
        shape = self.shape
        return shape.label if shape is not None else self.kind


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(value)


def _table(options: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = options.get(key)
    return found if isinstance(found, Mapping) else {}


def _seconds(value: object) -> int | None:
    number = _int(value * 10**6) if isinstance(value, int | float) else None
    return number if number else None


def parse_qdisc(entry: Mapping[str, Any]) -> QdiscInfo:
    """One ``tc -j qdisc show`` entry."""
    kind = str(entry.get("kind", ""))
    options = _table(entry, "options")
    if kind == "tbf":
        rate = _int(options.get("rate"))
        return QdiscInfo(
            kind,
            rate=None if rate is None else rate * 8,
            burst=_int(options.get("burst")),
            latency=_int(options.get("lat")),
        )
    if kind == "netem":
        rate = _int(_table(options, "rate").get("rate"))
        loss = _table(options, "loss-random").get("loss")
        delay = _table(options, "delay")
        return QdiscInfo(
            kind,
            rate=None if not rate else rate * 8,
            delay=_seconds(delay.get("delay")),
            jitter=_seconds(delay.get("jitter")),
            loss=round(loss * 100, 4) if isinstance(loss, int | float) and loss else None,
            limit=_int(options.get("limit")),
        )
    return QdiscInfo(kind)


def parse_qdiscs(entries: Iterable[Mapping[str, Any]]) -> dict[str, QdiscInfo]:
    """Each device's root qdisc by device name, left out where it is ``noqueue`` (a
    veth's and a bridge's own, which does nothing)."""
    return {
        str(entry["dev"]): parse_qdisc(entry)
        for entry in entries
        if entry.get("root") and "dev" in entry and entry.get("kind") != "noqueue"
    }


def link_shaping(a: QdiscInfo | None, b: QdiscInfo | None) -> tuple[Shape | None, str]:
    """A link's shaping and direction from the qdiscs of its two ends.

    A link shaped differently each way (by hand: the library gives a link one
    shaping) is described by its first end's.
    """
    first = None if a is None else a.shape
    second = None if b is None else b.shape
    if first == second:
        return first, "both"
    if second is None:
        return first, "a->b"
    if first is None:
        return second, "b->a"
    return first, "a->b"
