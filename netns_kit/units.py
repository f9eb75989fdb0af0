"""Rates, times and percentages as ``tc`` writes them, checked before anything runs.

A link's shaping is given the way ``tc`` takes it (``"10mbit"``, ``"20ms"``,
``"1%"``) or as a plain number: bits per second for a rate, seconds for a time,
percent for a loss.  Each value is turned into one exact number (whole bits per
second, whole microseconds, a percentage) and written back in ``tc``'s own units,
so a shaping reads the same in a command, a picture and a topology file.

Rate units follow ``tc``, case-insensitive: ``bit``, ``kbit``, ``mbit``, ``gbit``,
``tbit`` (powers of 1000), ``kibit``... ``tibit`` (powers of 1024), and the byte
forms ``bps``, ``kbps``, ``mbps``... which ``tc`` reads as *bytes* per second
(``"1mbps"`` is 8 Mbit/s).  Time units: ``s``/``sec``/``secs``, ``ms``/``msec``/
``msecs``, ``us``/``usec``/``usecs``.  A string without a unit is refused: ``tc``
would read ``"20"`` as 20 microseconds, which is rarely what was meant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from netns_kit.errors import ValidationError

#: The range of a rate, in bits per second: one byte a second up to 1 tbit.
RATE_MIN = 8
RATE_MAX = 10**12
#: The longest delay or jitter, in microseconds (an hour).
TIME_MAX = 3600 * 10**6

_NUMBER = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z%]*)\s*\Z")

_RATE_UNITS: dict[str, int] = {"bit": 1, "bps": 8}
for _power, _prefix in enumerate(("k", "m", "g", "t"), start=1):
    _RATE_UNITS[f"{_prefix}bit"] = 1000**_power
    _RATE_UNITS[f"{_prefix}ibit"] = 1024**_power
    _RATE_UNITS[f"{_prefix}bps"] = 8 * 1000**_power
    _RATE_UNITS[f"{_prefix}ibps"] = 8 * 1024**_power

_TIME_UNITS: dict[str, int] = {}
for _words, _us in ((("s", "sec", "secs"), 10**6), (("ms", "msec", "msecs"), 1000)):
    _TIME_UNITS.update(dict.fromkeys(_words, _us))
_TIME_UNITS.update(dict.fromkeys(("us", "usec", "usecs"), 1))


def _number(value: object, field: str, what: str) -> float | None:
    """A plain int or float (not a bool), or None when ``value`` is a string."""
    if isinstance(value, str):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, value, f"is not {what}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(field, value, f"is not {what}")
    return float(value)


def _split(value: str, field: str, what: str) -> tuple[float, str]:
    match = _NUMBER.match(value)
    if match is None:
        raise ValidationError(field, value, f"is not {what}")
    return float(match.group(1)), match.group(2).lower()


def _with_unit(
    value: object, field: str, what: str, units: Mapping[str, float], example: str
) -> float:
    """A number with one of tc's units (``example`` shows one), in the smallest unit."""
    assert isinstance(value, str)
    amount, unit = _split(value, field, what)
    if not unit:
        raise ValidationError(field, value, f"has no unit: write e.g. '{example}' (tc's units)")
    if unit not in units:
        sample = example.lstrip("0123456789.")
        raise ValidationError(field, value, f"has an unknown unit {unit!r} (e.g. '{sample}')")
    return amount * units[unit]


def rate(value: object, field: str = "rate") -> int:
    """A rate in whole bits per second: ``"10mbit"``, ``"1.5gbit"`` or a number."""
    what = "a rate: a number of bits per second or a string like '10mbit'"
    number = _number(value, field, what)
    if number is None:
        number = _with_unit(value, field, what, _RATE_UNITS, "10mbit")
    if number < 0:
        raise ValidationError(field, value, "is negative")
    bits = round(number)
    if not RATE_MIN <= bits <= RATE_MAX:
        raise ValidationError(field, value, "is not between 8bit (a byte a second) and 1tbit")
    return bits


def duration(value: object, field: str = "delay") -> int:
    """A time in whole microseconds: ``"20ms"``, ``"1.5s"`` or a number of seconds."""
    what = "a time: a number of seconds or a string like '20ms'"
    number = _number(value, field, what)
    if number is None:
        micro = _with_unit(value, field, what, _TIME_UNITS, "20ms")
    else:
        micro = number * 10**6
    if micro < 0:
        raise ValidationError(field, value, "is negative")
    us = round(micro)
    if us > TIME_MAX:
        raise ValidationError(field, value, "is longer than an hour")
    if us == 0 and micro > 0:
        raise ValidationError(field, value, "is shorter than a microsecond, tc's resolution")
    return us


def percent(value: object, field: str = "loss") -> float:
    """A percentage from 0 to 100: ``1``, ``0.5`` or ``"1%"``."""
    what = "a percentage: a number from 0 to 100 or a string like '1%'"
    number = _number(value, field, what)
    if number is None:
        assert isinstance(value, str)
        number, unit = _split(value, field, what)
        if unit not in ("", "%"):
            raise ValidationError(field, value, f"is not {what}")
    if not 0 <= number <= 100:
        raise ValidationError(field, value, "is not a percentage from 0 to 100")
    return number


def rate_text(bits: int) -> str:
    """A rate as ``tc`` takes it, in the largest unit that keeps it whole: ``10mbit``."""
    for unit, size in (("tbit", 10**12), ("gbit", 10**9), ("mbit", 10**6), ("kbit", 1000)):
        if bits % size == 0:
            return f"{bits // size}{unit}"
    return f"{bits}bit"


def duration_text(us: int) -> str:
    """A time as ``tc`` takes it, in the largest unit that keeps it whole: ``20ms``."""
    if us == 0:
        return "0ms"
    for unit, size in (("s", 10**6), ("ms", 1000)):
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"


def percent_text(value: float) -> str:
    """A percentage as ``tc`` takes it: ``1%``, ``0.5%``."""
    return f"{value:g}%"
