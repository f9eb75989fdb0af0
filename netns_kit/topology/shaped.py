"""A link's shaping in a topology file: ``rate``, ``delay``, ``jitter``, ``loss`` and
``direction`` on a ``[[links]]`` item, checked with the rest of the file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from netns_kit import units
from netns_kit.errors import ValidationError, bounded_repr
from netns_kit.objects.shaping import Shape, check_direction
from netns_kit.spec.keys import SHAPING

#: The keys of a ``[[links]]`` item that shape the link.
KEYS = tuple(key.name for key in SHAPING)

_T = TypeVar("_T")


class _Checker(Protocol):
    def add(self, path: str, text: str) -> None: ...

    def checked(
        self, path: str, value: object, check: Callable[[object, str], _T]
    ) -> _T | None: ...


def read_shaping(
    checker: _Checker, path: str, item: Mapping[str, object]
) -> tuple[Shape | None, str] | None:
    """The link's shape (``None``: unshaped) and direction; ``None`` when something is
    wrong, each problem added at its key's path."""
    given = {key: item[key] for key in KEYS if item.get(key) is not None}
    if not given:
        return None, "both"
    checks: dict[str, Callable[[object, str], object]] = {
        "rate": units.rate,
        "delay": units.duration,
        "jitter": units.duration,
        "loss": units.percent,
        "direction": check_direction,
    }
    read = {
        key: checker.checked(f"{path}.{key}", value, checks[key]) for key, value in given.items()
    }
    if any(value is None for value in read.values()):
        return None  # a value was wrong, and said so
    way = str(read.get("direction", "both"))
    try:  # the values are good: what is left to check is how they go together
        shape = Shape.of(**{key: value for key, value in given.items() if key != "direction"})
    except ValidationError as error:
        checker.add(f"{path}.{error.field}", f"{bounded_repr(error.value)} {error.reason}")
        return None
    if shape is None:
        checker.add(
            f"{path}.direction",
            f"{bounded_repr(way)} is given, but nothing shapes the link "
            "(give rate, delay, jitter or loss)",
        )
        return None
    return shape, way
