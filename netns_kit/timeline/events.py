"""A lab's timeline: actions at set times while pairs are probed (``lab.timeline()``).

::

    t = lab.timeline()
    t.at("2s", pair.down)                          # any callable
    t.at("4s", "up", target=["r", "h2"])           # or a named action (actions.py)
    run = t.run(watch=[(h1, h2)], interval="10ms", until="6s")

Everything is checked when it is added (times, the action, its target, its
arguments) or when the run starts (the pairs), before anything changes.  The run
starts the probes first, then counts the events' times from that moment on the same
monotonic clock; each event is stamped when its action starts and when it returns.
An action that raises stops the run: the probes stop, and the error propagates, as
does Ctrl-C (the lab's own ``with`` block then tears it down).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from netns_kit.errors import ValidationError
from netns_kit.objects.link import VethPair
from netns_kit.timeline import actions
from netns_kit.timeline.outages import TIMEOUT
from netns_kit.timeline.run import Happened, Run
from netns_kit.timeline.watch import INTERVAL_MAX, INTERVAL_MIN, seconds, watch

if TYPE_CHECKING:
    from netns_kit.lab.core import LabCore

#: The longest run, in seconds (a day).
UNTIL_MAX = 86400.0


@attrs.frozen
class Event:
    """``call(**arguments)`` at ``at`` seconds into the run, shown as ``label``."""

    at: float
    label: str
    call: Callable[[], object] = attrs.field(eq=False, repr=False)


def _label(action: Callable[..., object]) -> str:
    """``veth-r1 down`` for a bound method of a link, else the callable's name."""
    owner = getattr(action, "__self__", None)
    name = getattr(action, "__name__", None) or repr(action)
    if owner is not None and hasattr(owner, "name"):
        return f"{owner.name} {name}"
    return str(getattr(action, "__qualname__", name))


class Timeline:
    """Events at times of a run; :meth:`run` probes while they happen."""

    def __init__(self, lab: LabCore) -> None:
        self.lab = lab
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return f"<Timeline of {self.lab.name!r}: {len(self.events)} events>"

    def at(self, when: object, action: object, /, **arguments: Any) -> Event:
        """Do ``action`` at ``when`` (``"2s"``, ``"500ms"`` or seconds) into the run.

        ``action`` is any callable (called with ``arguments``) or the name of a named
        action (:mod:`netns_kit.timeline.actions`), whose ``target`` is an argument.
        """
        moment = seconds(when, "at", maximum=UNTIL_MAX)
        if isinstance(action, str):
            event = self._named(moment, action, dict(arguments))
        elif callable(action):
            call = action
            given = dict(arguments)
            event = Event(moment, self._label(call), lambda: call(**given))
        else:
            raise ValidationError("action", action, "is not a callable or a named action")
        self.events.append(event)
        return event

    def _label(self, action: Callable[..., object]) -> str:
        """A link's method is labelled like a named action on it (``r--h2 down``)."""
        owner = getattr(action, "__self__", None)
        if isinstance(owner, VethPair):
            try:
                found = actions.link(self.lab, owner)
            except ValidationError:
                return _label(action)
            return f"{found.label} {getattr(action, '__name__', 'call')}"
        return _label(action)

    def _named(self, moment: float, name: str, arguments: dict[str, Any]) -> Event:
        action = actions.named(name)
        if "target" not in arguments:
            raise ValidationError("target", None, f"is missing: {name} needs a {action.target}")
        found = actions.target(self.lab, action, arguments.pop("target"))
        actions.check_arguments(name, arguments)
        if isinstance(found, actions.Link) and arguments.get("end") is not None:
            found.end_of(arguments["end"])
        lab = self.lab
        label = f"{actions.describe(found)} {name}"
        return Event(moment, label, lambda: action.run(lab, found, arguments))

    def add(self, when: object, name: str, target: object, arguments: Mapping[str, Any]) -> Event:
        """A named action (a file's ``[[events]]`` entry)."""
        return self.at(when, name, target=target, **arguments)

    def run(
        self,
        watch: object,
        *,
        interval: object = 0.01,
        until: object = None,
        timeout: object = TIMEOUT,
        stop: threading.Event | None = None,
        on_event: Callable[[Happened], None] | None = None,
    ) -> Run:
        """Probe ``watch`` pairs every ``interval`` while the events happen, until
        ``until`` (default: a second after the last event); a :class:`Run`.

        ``stop`` (set from another thread) ends the run early; ``on_event`` hears of
        each event as it is done (the command line prints them).
        """
        last = max((e.at for e in self.events), default=0.0)
        end = last + 1.0 if until is None else seconds(until, "until", maximum=UNTIL_MAX)
        if end < last:
            raise ValidationError("until", until, f"is before the last event ({last:g} s)")
        seconds(interval, "interval", minimum=INTERVAL_MIN, maximum=INTERVAL_MAX)
        probes = watch_of(self.lab, watch, interval, timeout)
        wake = stop or threading.Event()
        happened: list[Happened] = []
        with probes:
            origin = time.monotonic()
            for event in sorted(self.events, key=lambda e: e.at):
                if wake.wait(max(0.0, origin + event.at - time.monotonic())):
                    break
                began = time.monotonic()
                event.call()
                done = Happened(event.at, event.label, began - origin, time.monotonic() - origin)
                happened.append(done)
                if on_event is not None:
                    on_event(done)
            wake.wait(max(0.0, origin + end - time.monotonic()))
        return Run.of(probes, happened, origin=origin, until=end, stopped=wake.is_set())


def watch_of(lab: LabCore, pairs: object, interval: object, timeout: object) -> Any:
    return watch(lab, pairs, interval=interval, timeout=timeout)
