"""Pairs expected not to answer: for labs with a firewall or NAT.

``netns-kit check NAME --expect FILE`` reads a TOML file listing them::

    # outside has no route back into the NAT'd network
    [[fail]]
    from = "outside"
    to = "inside"          # a namespace (all its addresses), or one address

    [[fail]]
    from = "*"             # any source
    to = "10.0.0.7"

A check then *matches* when exactly those pairs fail: a pair that fails without a
rule is a broken link, and a pair that answers although a rule says it should not
is a hole in the firewall.  A rule that matches no probed pair is reported too (a
typo, or a lab that changed).
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from netns_kit.check.result import Failure, Reachability, Target
from netns_kit.errors import ValidationError
from netns_kit.timeline import bounds
from netns_kit.timeline.bounds import RunBounds

ANY = "*"
#: Bytes an expectations file may hold: it lists pairs, not a lab.
MOST_BYTES = 1 << 20


def _word(value: object, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 255 or value != value.strip():
        raise ValidationError(field, value, "is not a namespace name, an address or '*'")
    return value


@attrs.frozen
class Rule:
    """Pairs from ``source`` to ``target`` (each a name, an address or ``*``) fail."""

    source: str
    target: str

    def covers(self, source: str, target: Target) -> bool:
        if self.source not in (ANY, source):
            return False
        return self.target in (ANY, target.namespace, target.address)

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


@attrs.frozen
class Verdict:
    """How a check compares with what was expected."""

    expected: tuple[Failure, ...]
    unexpected: tuple[Failure, ...]
    answered: tuple[tuple[str, Target], ...]
    unused: tuple[Rule, ...]

    @property
    def ok(self) -> bool:
        """Exactly the expected pairs failed."""
        return not self.unexpected and not self.answered

    def lines(self) -> list[str]:
        out = [f"{len(self.expected)} pair(s) failed as expected"]
        if self.unexpected:
            out.append(f"UNEXPECTED: {len(self.unexpected)} pair(s) failed:")
            out += [f"  {failure}" for failure in self.unexpected]
        if self.answered:
            out.append(f"UNEXPECTED: {len(self.answered)} pair(s) answered but should not:")
            out += [f"  {s} -> {t.address} ({t.namespace})" for s, t in self.answered]
        out += [f"note: rule {rule} matched no pair" for rule in self.unused]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected": len(self.expected),
            "unexpected_failures": [
                {"source": f.source, "namespace": f.target.namespace, "address": f.target.address}
                for f in self.unexpected
            ],
            "unexpected_answers": [
                {"source": s, "namespace": t.namespace, "address": t.address}
                for s, t in self.answered
            ],
            "unused_rules": [{"from": r.source, "to": r.target} for r in self.unused],
        }


@attrs.frozen
class Expectations:
    """The rules of an expectations file, and the bounds of a timeline run
    (``max_outage``, ``lost``, ``[[pairs]]``: :mod:`netns_kit.timeline.bounds`)."""

    rules: tuple[Rule, ...] = ()
    bounds: RunBounds = attrs.field(factory=RunBounds)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expectations:
        if not isinstance(data, Mapping):
            raise ValidationError("expect", data, "is not a table")
        unknown = sorted(set(data) - {"fail", *bounds.KEYS})
        if unknown:
            raise ValidationError(
                unknown[0],
                data[unknown[0]],
                "is not a key here ([[fail]], max_outage, lost, [[pairs]])",
            )
        entries = data.get("fail", [])
        if not isinstance(entries, list):
            raise ValidationError("fail", entries, "is not a list of [[fail]] tables")
        rules = []
        for index, entry in enumerate(entries):
            where = f"fail[{index}]"
            if not isinstance(entry, Mapping):
                raise ValidationError(where, entry, "is not a table with from and to")
            extra = sorted(set(entry) - {"from", "to"})
            if extra:
                raise ValidationError(f"{where}.{extra[0]}", entry[extra[0]], "is not a key here")
            for key in ("from", "to"):
                if key not in entry:
                    raise ValidationError(f"{where}.{key}", None, "is missing")
            rules.append(Rule(_word(entry["from"], f"{where}.from"), _target(entry["to"], where)))
        return cls(tuple(rules), bounds.from_dict(data))

    @classmethod
    def load(cls, path: str | Path) -> Expectations:
        """Read a TOML expectations file (see the module docstring)."""
        file = Path(path)
        with open(file, "rb") as handle:
            raw = handle.read(MOST_BYTES + 1)
        if len(raw) > MOST_BYTES:
            raise ValidationError("expect", str(file), f"is larger than {MOST_BYTES} bytes")
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ValidationError("expect", str(file), f"is not TOML ({error})") from None
        return cls.from_dict(data)

    def covers(self, source: str, target: Target) -> bool:
        return any(rule.covers(source, target) for rule in self.rules)

    def verdict(self, result: Reachability) -> Verdict:
        """Compare a check with the rules."""
        by_address = {t.address: t for t in result.targets}
        used: set[Rule] = set()
        expected: list[Failure] = []
        unexpected: list[Failure] = []
        answered: list[tuple[str, Target]] = []
        failures = {(f.source, f.target.address): f for f in result.failures()}
        for (source, address), rtt in result.rtts.items():
            target = by_address[address]
            rules = [rule for rule in self.rules if rule.covers(source, target)]
            used.update(rules)
            if rtt is None:
                (expected if rules else unexpected).append(failures[(source, address)])
            elif rules:
                answered.append((source, target))
        unused = tuple(rule for rule in self.rules if rule not in used)
        return Verdict(tuple(expected), tuple(unexpected), tuple(answered), unused)


def _target(value: object, where: str) -> str:
    word = _word(value, f"{where}.to")
    try:
        return str(ipaddress.ip_address(word.split("/", 1)[0]))
    except ValueError:
        return word


def rules(pairs: Sequence[tuple[str, str]]) -> Expectations:
    """Expectations from ``(from, to)`` pairs, in Python."""
    return Expectations.from_dict({"fail": [{"from": a, "to": b} for a, b in pairs]})
