"""Named actions: what a timeline (or a topology file's ``[[events]]``) can do to a
lab by name, and the registry that holds them.

Built in:

==============  ==========  ==============================================================
``do``          target      what it does
==============  ==========  ==============================================================
``down``        a link      both ends down (``end = "r"``: only that end's)
``up``          a link      back up, routes put back, and waits for the carrier
``shape``       a link      ``rate``/``delay``/``jitter``/``loss``/``direction``, as
                            :meth:`VethPair.shape <netns_kit.VethPair.shape>`
``unshape``     a link      shaping removed
``isolate``     namespace   every link of the namespace down at once
``rejoin``      namespace   every link of the namespace back up
``partition``   links       a set of links down at once
``heal``        links       the same set back up
==============  ==========  ==============================================================

A link is named by its two ends as ``[[links]]`` names them (``["r", "h2"]``, either
order: ``direction = "a->b"`` of a shaping then means what the first end named
sends), or given as the :class:`~netns_kit.VethPair` the lab returned.  A namespace by
its name, or its object.

Another module adds its own with :func:`register` (the routing daemons' ``stop`` and
``start``, say)::

    register("stop", Action(target="namespace", keys=("daemons",), run=stop_daemons))

``run(lab, target, arguments)`` gets the resolved target (a :class:`Link`, a list of
them, or a namespace name) and the event's other keys, already limited to ``keys``.
``check(arguments)``, when given, checks them before the run starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from netns_kit.command import ip
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.lab import views
from netns_kit.objects import shaping
from netns_kit.objects.link import VethPair
from netns_kit.spec import LinkSpec

if TYPE_CHECKING:
    from netns_kit.lab.core import LabCore

#: How long ``up`` waits for both ends to have their carrier (seconds).
CARRIER_WAIT = 3.0


@attrs.frozen
class Link:
    """A link of the lab: its pair, its ends as the lab names them (``a``, ``b``),
    and whether the pair's first end is ``b`` (``flipped``)."""

    pair: VethPair
    a: str
    b: str
    flipped: bool = False

    @property
    def label(self) -> str:
        return f"{self.a}--{self.b}"

    def end_of(self, name: str) -> str:
        """The pair's ``"a"``/``"b"`` for the lab's end ``name`` (a namespace or bridge)."""
        if name not in (self.a, self.b):
            raise ValidationError("end", name, f"is not an end of link {self.label}")
        first = (name == self.a) != self.flipped
        return "a" if first else "b"


@attrs.frozen
class Action:
    """A named action: what its target is, which argument keys it takes, what it runs."""

    target: str  # "link", "links" or "namespace"
    run: Callable[[LabCore, Any, Mapping[str, Any]], None]
    keys: tuple[str, ...] = ()
    check: Callable[[Mapping[str, Any]], None] | None = None


ACTIONS: dict[str, Action] = {}


def register(name: str, action: Action) -> None:
    """Make ``name`` a named action (replacing one of that name)."""
    if action.target not in ("link", "links", "namespace"):
        raise ValidationError("target", action.target, "is not 'link', 'links' or 'namespace'")
    ACTIONS[name] = action


def named(name: object) -> Action:
    if not isinstance(name, str) or name not in ACTIONS:
        raise ValidationError("do", name, f"is not an action: one of {', '.join(sorted(ACTIONS))}")
    return ACTIONS[name]


def check_arguments(name: str, arguments: Mapping[str, Any], where: str = "") -> None:
    """The arguments of action ``name``: only its keys, each checked."""
    action = named(name)
    for key, value in arguments.items():
        if key not in action.keys:
            takes = ", ".join(action.keys) or "no arguments"
            raise ValidationError(f"{where}{key}", value, f"is not an argument of {name} ({takes})")
    if action.check is not None:
        action.check(arguments)


# -- resolving targets ------------------------------------------------------------------
def links_of(lab: LabCore) -> list[Link]:
    """Every veth link of the lab, with its ends as the lab's topology names them."""
    refs = views.topology(lab).links
    held = [h for h in lab.held.items if isinstance(h.spec, LinkSpec)]
    found = []
    for spec, item in zip(refs, held, strict=True):
        if isinstance(item.obj, VethPair):
            found.append(Link(item.obj, spec.a, spec.b, item.flipped))
    return found


def link(lab: LabCore, value: object, field: str = "target") -> Link:
    """The link ``value`` names: its pair, or its two ends."""
    every = links_of(lab)
    if isinstance(value, VethPair):
        for found in every:
            if found.pair is value:
                return found
        raise ValidationError(field, value, "is not a link of this lab")
    names = [getattr(v, "name", v) for v in value] if isinstance(value, list | tuple) else []
    if len(names) != 2 or not all(isinstance(n, str) for n in names):
        raise ValidationError(field, value, "is not a link: its two ends, like ['r', 'h2']")
    wanted = sorted(str(n) for n in names)
    matches = [f for f in every if sorted((f.a, f.b)) == wanted]
    if not matches:
        raise ValidationError(field, value, "is not a link of this lab")
    if len(matches) > 1:
        raise ValidationError(field, value, "names more than one link: give the link object")
    found = matches[0]
    if [found.a, found.b] != names:  # in the order given: "a->b" means from names[0]
        found = Link(found.pair, found.b, found.a, not found.flipped)
    return found


def target(lab: LabCore, action: Action, value: object, field: str = "target") -> Any:
    """An action's target resolved against the lab."""
    if action.target == "link":
        return link(lab, value, field)
    if action.target == "links":
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ValidationError(field, value, "is not a list of links")
        if all(isinstance(v, str) for v in value):  # one link given bare
            return [link(lab, value, field)]
        return [link(lab, v, f"{field}[{i}]") for i, v in enumerate(value)]
    name = getattr(value, "name", value)
    if not isinstance(name, str) or name not in lab.held.namespaces:
        raise ValidationError(field, value, "is not a namespace of this lab")
    return name


def describe(value: Any) -> str:
    """A resolved target as an event label shows it."""
    if isinstance(value, Link):
        return value.label
    if isinstance(value, list):
        return ",".join(describe(v) for v in value)
    return str(value)


# -- the built-in actions ---------------------------------------------------------------
def wait_carrier(lab: LabCore, links: Sequence[Link], wait: float = CARRIER_WAIT) -> None:
    """Until every end of ``links`` is up with its carrier (``LOWER_UP``) and not
    operationally down: an ``up`` returns when the link carries traffic (measured here,
    a few milliseconds after ``ip link set up``), bounded by ``wait`` seconds."""
    runner = Runner(lab.ex)
    ends = [(e.name, e.namespace) for found in links for e in (found.pair.end, found.pair.peer_end)]
    deadline = time.monotonic() + wait
    while ends:
        waiting = []
        for name, namespace in ends:
            show = ip("-j", "link", "show", "dev", name, namespace=namespace, read=True)
            result = runner.run(show)
            entries = json.loads(result.stdout or "[]") if result else []
            entry = entries[0] if entries else {}
            if "LOWER_UP" not in entry.get("flags", []) or entry.get("operstate") == "DOWN":
                waiting.append((name, namespace))
        ends = waiting
        if ends and time.monotonic() > deadline:  # pragma: no cover - a broken kernel
            raise NetnsKitError(f"no carrier on {ends[0][0]} after {wait:g} s")
        if ends:
            time.sleep(0.005)


def settle_neighbours(lab: LabCore, links: Sequence[Link]) -> None:
    """Forget the neighbours the ends could not resolve while the link came up.

    The two ends of a link come up one after the other (they live in two namespaces);
    a packet that leaves the first end in between sends an ARP request (or neighbour
    solicitation) that the still-down peer never gets, and the kernel asks again only
    after ``retrans_time`` (1 s): measured, an outage then lasted about 0.9 s longer
    than the link was down, in about one run of two.  Unresolved entries are flushed
    once both ends are up, so the next packet asks at once.
    """
    runner = Runner(lab.ex)
    for found in links:
        for end in (found.pair.end, found.pair.peer_end):
            for state in ("incomplete", "failed"):
                flush = ip("neigh", "flush", "dev", end.name, "nud", state, namespace=end.namespace)
                runner.run(flush)


def _down(lab: LabCore, found: Link, arguments: Mapping[str, Any]) -> None:
    end = arguments.get("end")
    found.pair.down("both" if end is None else found.end_of(str(end)))


def _up(lab: LabCore, found: Link, arguments: Mapping[str, Any]) -> None:
    end = arguments.get("end")
    found.pair.up("both" if end is None else found.end_of(str(end)))
    wait_carrier(lab, [found])
    settle_neighbours(lab, [found])


def _check_end(arguments: Mapping[str, Any]) -> None:
    end = arguments.get("end")
    if end is not None and not isinstance(end, str):
        raise ValidationError("end", end, "is not an end of the link (a namespace or bridge)")


def _shape_settings(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {k: arguments[k] for k in ("rate", "delay", "jitter", "loss") if k in arguments}


def _check_shape(arguments: Mapping[str, Any]) -> None:
    way = arguments.get("direction", "both")
    shape, _ = shaping.given(**_shape_settings(arguments), direction=way)
    if shape is None:
        raise ValidationError("shape", dict(arguments), "needs a rate, delay, jitter or loss")


def _shape(lab: LabCore, found: Link, arguments: Mapping[str, Any]) -> None:
    way = str(arguments.get("direction", "both"))
    way = shaping.flipped(way) if found.flipped else way
    found.pair.shape(**_shape_settings(arguments), direction=way)


def _unshape(lab: LabCore, found: Link, arguments: Mapping[str, Any]) -> None:
    found.pair.unshape()


def _of_namespace(lab: LabCore, namespace: str) -> list[Link]:
    return [f for f in links_of(lab) if namespace in (f.a, f.b)]


def _all_down(links: Sequence[Link]) -> None:
    for found in links:
        found.pair.down()


def _all_up(lab: LabCore, links: Sequence[Link]) -> None:
    for found in links:
        found.pair.up()
    wait_carrier(lab, links)
    settle_neighbours(lab, links)


register("down", Action("link", _down, ("end",), _check_end))
register("up", Action("link", _up, ("end",), _check_end))
register(
    "shape", Action("link", _shape, ("rate", "delay", "jitter", "loss", "direction"), _check_shape)
)
register("unshape", Action("link", _unshape))
register("isolate", Action("namespace", lambda lab, ns, _: _all_down(_of_namespace(lab, ns))))
register("rejoin", Action("namespace", lambda lab, ns, _: _all_up(lab, _of_namespace(lab, ns))))
register("partition", Action("links", lambda lab, links, _: _all_down(links)))
register("heal", Action("links", lambda lab, links, _: _all_up(lab, links)))


def _routing(stop: bool) -> Callable[[LabCore, Any, Mapping[str, Any]], None]:
    """``stop``/``start`` of a namespace's routing daemons (:mod:`netns_kit.daemons`):
    a router that fails while its links stay up, and comes back."""

    def act(lab: LabCore, namespace: Any, arguments: Mapping[str, Any]) -> None:
        method = getattr(lab, "stop_router" if stop else "start_router", None)
        if method is None:
            raise NetnsKitError("stop and start act on routing daemons: this lab has none")
        method(namespace)

    return act


register("stop", Action("namespace", _routing(True)))
register("start", Action("namespace", _routing(False)))
