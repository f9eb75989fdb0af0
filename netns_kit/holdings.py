"""What a lab holds: one registry instead of five overlapping ones.

Every builder call that succeeds (or is queued in a batch) adds one :class:`Held`:
the object it returned and the inert description of it (a :mod:`~netns_kit.spec`
value).  Everything else is derived from it or kept beside it: the lab's namespaces
and bridges by name, the resources in creation order, the topology pictures are
drawn from, the interface names taken in each namespace, and the settings made once
per namespace.  It also answers the questions builders ask about names: which
namespace or bridge an argument means, and what a link's ends are called.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

import attrs

from . import validate
from .errors import ValidationError
from .link import Bridge, VethPair
from .namespace import Namespace
from .nat import Sysctl
from .spec import (
    BridgeSpec,
    LinkNamer,
    LinkSpec,
    MasqueradeSpec,
    RouteSpec,
    SysctlSpec,
    Topology,
)
from .step import Step

Spec = str | BridgeSpec | LinkSpec | RouteSpec | SysctlSpec | MasqueradeSpec

#: A bridge in a lab's own namespace is a plain switch: bridged frames do not pass
#: that namespace's iptables (br_netfilter sends them there by default, so a
#: masquerade or a FORWARD policy would act on traffic between two ports).
SWITCH_SETTINGS = tuple(
    (f"net.bridge.bridge-nf-call-{table}", 0) for table in ("iptables", "ip6tables", "arptables")
)
#: Duplicate address detection off for the links a namespace makes from now on: a
#: lab's addresses are checked up front, and one in DAD is unusable for seconds.
NO_DAD = (("net.ipv6.conf.default.accept_dad", 0),)


@attrs.frozen
class Held:
    """One thing a lab made: the object a builder returned, and its description."""

    obj: Any
    spec: Spec


@attrs.frozen
class Ends:
    """A link's two ends as a builder resolved them: ``a`` is always a namespace;
    ``b`` a namespace, or the lab's host side when ``bridge`` is given.  ``swapped``:
    the builder was given the bridge first (its direction words turn round too)."""

    a: str
    b: str  # the namespace or bridge name given
    bridge: Bridge | None
    names: tuple[str, str]
    addresses: tuple[str | None, str | None]
    swapped: bool = False


class Holdings:
    """The lab's objects in the order it made them, with indexes by name."""

    def __init__(self, lab: str, host: str | None) -> None:
        self.lab = lab
        self.host = host
        self.items: list[Held] = []
        self.namespaces: dict[str, Namespace] = {}
        self.bridges: dict[str, Bridge] = {}
        self.names = LinkNamer()
        self._done: set[tuple[str, str | None]] = set()

    def add(self, obj: Any, spec: Spec) -> None:
        self.items.append(Held(obj, spec))
        if isinstance(obj, Namespace):
            self.namespaces[obj.name] = obj
        elif isinstance(obj, Bridge):
            self.bridges[obj.name] = obj
            self.names.take(None, obj.name)

    @property
    def resources(self) -> list[Any]:
        return [held.obj for held in self.items]

    def specs(self, kind: type[Any]) -> tuple[Any, ...]:
        return tuple(held.spec for held in self.items if isinstance(held.spec, kind))

    def links(self) -> tuple[LinkSpec, ...]:
        """The links, each with the shaping its pair has now (it changes while the lab
        runs)."""
        return tuple(
            attrs.evolve(held.spec, shape=held.obj.shaping, direction=held.obj.direction)
            if isinstance(held.obj, VethPair)
            else held.spec
            for held in self.items
            if isinstance(held.spec, LinkSpec)
        )

    def owner(self, address: validate.IPAddress) -> str | None:
        """The namespace the lab gave ``address`` to: one of its namespaces, or its
        host side (``None`` when that is the root).  KeyError if it gave it to none."""
        for held in self.items:
            spec = held.spec
            if isinstance(spec, BridgeSpec) and _is(spec.address, address):
                return self.host
            if isinstance(spec, LinkSpec):
                b = self.host if spec.b in self.bridges else spec.b
                for where, cidr in zip((spec.a, b), spec.addresses, strict=True):
                    if _is(cidr, address):
                        return where
        raise KeyError(str(address))

    def topology(self, isolated: bool, ipv6_link_local: bool) -> Topology:
        """What the lab built, as an inert description (for pictures and files)."""
        return Topology(
            self.lab,
            isolated,
            self.specs(str),
            self.specs(BridgeSpec),
            self.links(),
            self.specs(RouteSpec),
            self.specs(SysctlSpec),
            self.specs(MasqueradeSpec),
            ipv6_link_local=ipv6_link_local,
        )

    # -- names ------------------------------------------------------------------------
    def side(self, namespace: object) -> str | None:
        """``None`` means the lab's host side; anything else must be the lab's own."""
        if namespace is None:
            return self.host
        name = validate.optional_namespace(namespace)  # type: ignore[arg-type]
        if name not in self.namespaces and name != self.host:
            raise ValidationError("namespace", namespace, f"is not a namespace of lab {self.lab!r}")
        return name

    def _endpoint(self, value: object, field: str) -> tuple[str, bool]:
        """A builder argument as (name, is_bridge); it must be something this lab made."""
        name = getattr(value, "name", value)
        if isinstance(name, str) and name in self.namespaces:
            return name, False
        if isinstance(name, str) and name in self.bridges:
            return name, True
        raise ValidationError(field, value, f"is not a namespace or bridge of lab {self.lab!r}")

    def ends(
        self,
        a: object,
        b: object,
        addresses: Sequence[str | None] | None,
        names: Sequence[str] | None,
    ) -> Ends:
        """Check a link's arguments; the namespace end first, as the seed has it."""
        end_a, a_bridge = self._endpoint(a, "a")
        end_b, b_bridge = self._endpoint(b, "b")
        addrs = list(addresses) if addresses is not None else [None, None]
        if len(addrs) != 2:
            raise ValidationError("addresses", addresses, "must give one address (or None) per end")
        if a_bridge and b_bridge:
            raise ValidationError("b", b, "joins two bridges; link a namespace to a bridge")
        if end_a == end_b:
            raise ValidationError("b", b, "is the same namespace as a")
        if a_bridge:
            end_a, end_b, addrs = end_b, end_a, addrs[::-1]
            names = None if names is None else list(names)[::-1]
        cidrs = [
            None if x is None else str(validate.interface(x, f"addresses[{i}]"))
            for i, x in enumerate(addrs)
        ]
        bridge = self.bridges.get(end_b) if a_bridge or b_bridge else None
        picked = self.names.pick(end_a, end_b, names, bridge=bridge is not None)
        return Ends(end_a, end_b, bridge, picked, (cidrs[0], cidrs[1]), a_bridge)

    # -- settings made once -----------------------------------------------------------
    def prepare(self, what: str, namespaces: Sequence[str | None]) -> list[Step]:
        """Once per lab namespace (never the root): ``switch`` settings for a namespace
        that holds a bridge, ``ipv6`` ones (no DAD) for one whose links get IPv6.

        Marked done at once: a later builder call needs no second step, and a
        builder that fails leaves the namespace with the setting or without the
        namespace altogether.
        """
        settings = SWITCH_SETTINGS if what == "switch" else NO_DAD
        steps = []
        for ns in dict.fromkeys(namespaces):
            if ns is not None and (what, ns) not in self._done:
                self._done.add((what, ns))
                steps.append(Namespace(ns).setting_step(*settings, missing_ok=what == "switch"))
        return steps

    def setting_steps(self, setting: Sysctl) -> list[Step]:
        """A kernel setting's write; in the root namespace, at its first change, with
        the restore of the value it had (read now)."""
        if setting.namespace is not None or ("saved", setting.key) in self._done:
            setting.changed = True
            return setting.steps(None, restore=False)
        current = setting.read()
        setting.previous = current or None
        steps = setting.steps(current)
        setting.changed = bool(steps)
        return steps

    def saved(self, steps: Sequence[Step]) -> None:
        """Mark a root setting saved once the write that restores it ran (or queued)."""
        for step in steps:
            if step.undo and step.entry is not None and step.entry.kind == "sysctl":
                self._done.add(("saved", step.entry.name))


def _is(cidr: str | None, address: validate.IPAddress) -> bool:
    return cidr is not None and ipaddress.ip_interface(cidr).ip == address
