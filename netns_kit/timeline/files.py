"""A topology file's timeline: ``[[events]]``, ``[watch]`` and the run bounds of
``[expect]``, checked with the rest of the file.

::

    [watch]
    pairs = [["h1", "h2"], ["h1", "10.0.1.2"]]   # namespaces (their first address) or addresses
    interval = "10ms"
    until = "6s"
    timeout = "100ms"                           # a later reply is a lost probe

    [[events]]
    at = "2s"
    do = "down"
    target = ["r", "h2"]        # a link by its ends as [[links]] names them
    end = "r"                   # the action's arguments: any other key

    [[events]]
    at = "4s"
    do = "up"
    target = ["r", "h2"]

    [expect]
    max_outage = "2.5s"
    lost = 300

The whole-file check (:mod:`netns_kit.topology.check`) calls :func:`check_sections`,
so a bad event is one more problem with its path (``events[1].do: 'explode' is not an
action ...``), before anything is built, from ``netns-kit validate`` as from
``netns-kit run``.  Targets are checked against the file's namespaces and links.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import attrs

from netns_kit.check.expect import Expectations
from netns_kit.errors import ValidationError, bounded_repr
from netns_kit.spec.keys import WATCH
from netns_kit.timeline import actions
from netns_kit.timeline.outages import TIMEOUT
from netns_kit.timeline.watch import INTERVAL_MAX, INTERVAL_MIN, seconds

#: The top-level keys this module reads.
KEYS = ("events", "watch", "expect")
WATCH_KEYS = WATCH.allowed
UNTIL_MAX = 86400.0

Add = Callable[[str, str], None]


@attrs.frozen
class PlannedEvent:
    """``do`` on ``target`` at ``at`` seconds, with ``arguments``."""

    at: float
    do: str
    target: Any
    arguments: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class WatchPlan:
    pairs: tuple[tuple[str, str], ...]
    interval: float = 0.01
    until: float | None = None
    timeout: float = TIMEOUT


@attrs.frozen
class RunPlan:
    """What ``netns-kit run`` does once the lab is built."""

    events: tuple[PlannedEvent, ...] = ()
    watch: WatchPlan | None = None
    expect: Expectations = attrs.field(factory=Expectations)

    @property
    def empty(self) -> bool:
        return not self.events and self.watch is None


def _problem(add: Add, path: str, error: ValidationError) -> None:
    field = error.field
    where = field if field.startswith(path) else f"{path}.{field}" if path else field
    add(where, f"{bounded_repr(error.value)} {error.reason}")


def _address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _link(value: object, links: Collection[tuple[str, str]], field: str) -> tuple[str, str]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, str) for v in value)
    ):
        raise ValidationError(field, value, "is not a link: its two ends, like ['r', 'h2']")
    a, b = str(value[0]), str(value[1])
    if not any(sorted((a, b)) == sorted(link) for link in links):
        raise ValidationError(field, value, "is not a link of this file ([[links]] a and b)")
    return a, b


def _target(
    action: actions.Action,
    value: object,
    namespaces: Collection[str],
    links: Collection[tuple[str, str]],
    field: str,
) -> Any:
    if action.target == "namespace":
        if not isinstance(value, str) or value not in namespaces:
            raise ValidationError(field, value, "is not a namespace of this file")
        return value
    if action.target == "link":
        return _link(value, links, field)
    if not isinstance(value, list) or not value:
        raise ValidationError(field, value, "is not a list of links")
    if all(isinstance(v, str) for v in value):
        return [_link(value, links, field)]
    return [_link(v, links, f"{field}[{i}]") for i, v in enumerate(value)]


def read_events(
    value: object, namespaces: Collection[str], links: Collection[tuple[str, str]], add: Add
) -> list[PlannedEvent]:
    if not isinstance(value, list):
        add("events", "must be an array of tables ([[events]] in TOML)")
        return []
    found = []
    for index, item in enumerate(value):
        path = f"events[{index}]"
        if not isinstance(item, Mapping):
            add(path, "must be a table with at, do and target")
            continue
        missing = [key for key in ("at", "do", "target") if key not in item]
        for key in missing:
            add(f"{path}.{key}", "required key is missing")
        if missing:
            continue
        arguments = {k: v for k, v in item.items() if k not in ("at", "do", "target")}
        try:
            at = seconds(item["at"], f"{path}.at", maximum=UNTIL_MAX)
            action = actions.named(item["do"])
        except ValidationError as error:
            _problem(add, path, error)
            continue
        try:
            target = _target(action, item["target"], namespaces, links, f"{path}.target")
            actions.check_arguments(str(item["do"]), arguments, f"{path}.")
            end = arguments.get("end")
            if action.target == "link" and end is not None and end not in target:
                raise ValidationError(f"{path}.end", end, f"is not an end of link {target}")
        except ValidationError as error:
            _problem(add, path, error)
            continue
        found.append(PlannedEvent(at, str(item["do"]), target, arguments))
    return found


def read_watch(value: object, namespaces: Collection[str], add: Add) -> WatchPlan | None:
    if not isinstance(value, Mapping):
        add("watch", "must be a table ([watch] in TOML)")
        return None
    for key in value:
        if key not in WATCH_KEYS:
            add(f"watch.{key}", f"unknown key (one of {', '.join(WATCH_KEYS)})")
    pairs = []
    written = value.get("pairs")
    if not isinstance(written, list) or not written:
        add("watch.pairs", "must be a non-empty array of [source, target] pairs")
    else:
        for index, pair in enumerate(written):
            path = f"watch.pairs[{index}]"
            if not isinstance(pair, list) or len(pair) != 2:
                add(path, f"{bounded_repr(pair)} is not a [source, target] pair")
                continue
            ok = True
            for side, item in enumerate(pair):
                if not isinstance(item, str) or (item not in namespaces and not _address(item)):
                    add(f"{path}[{side}]", f"{bounded_repr(item)} is not a namespace or an address")
                    ok = False
            if ok and not (pair[0] in namespaces or _address(pair[0])):
                ok = False
            if ok:
                pairs.append((str(pair[0]), str(pair[1])))
    try:
        interval = seconds(
            value.get("interval", 0.01),
            "watch.interval",
            minimum=INTERVAL_MIN,
            maximum=INTERVAL_MAX,
        )
        until = (
            None
            if value.get("until") is None
            else seconds(value["until"], "watch.until", maximum=UNTIL_MAX)
        )
        timeout = seconds(value.get("timeout", TIMEOUT), "watch.timeout", minimum=0.001, maximum=60)
    except ValidationError as error:
        _problem(add, "", error)
        return None
    return WatchPlan(tuple(pairs), interval, until, timeout)


def check_sections(
    data: Mapping[str, object],
    namespaces: Collection[str],
    links: Sequence[tuple[str, str]],
    add: Add,
) -> RunPlan:
    """The file's timeline sections, every problem reported through ``add(path, text)``."""
    events = read_events(data["events"], namespaces, links, add) if "events" in data else []
    watch = read_watch(data["watch"], namespaces, add) if "watch" in data else None
    expect = Expectations()
    if "expect" in data:
        written = data["expect"]
        if not isinstance(written, Mapping):
            add("expect", "must be a table ([expect] in TOML)")
        else:
            try:
                expect = Expectations.from_dict(written)
            except ValidationError as error:
                _problem(add, "expect", error)
    if events and watch is None:
        add("events", "need a [watch] table: the pairs to probe while they happen")
    if watch is not None and watch.until is not None and events:
        last = max(e.at for e in events)
        if watch.until < last:
            add("watch.until", f"{watch.until:g} s is before the last event ({last:g} s)")
    return RunPlan(tuple(events), watch, expect)
