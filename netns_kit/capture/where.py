"""Where a capture listens: a lab's link end, link, bridge or namespace, as taps.

A :class:`Tap` is one tcpdump's place: a namespace, an interface in it (``any`` for
the whole namespace), and the machine of a lab spread over several.  :func:`taps`
reads what the user gave (an object the lab returned, a topology file's link, or
``"ns:iface"`` text) and checks it belongs to the lab, before anything runs.
"""

from __future__ import annotations

from typing import Any

import attrs

from netns_kit import validate
from netns_kit.errors import ValidationError
from netns_kit.objects.link import Bridge, Interface, VethPair
from netns_kit.objects.namespace import Namespace
from netns_kit.objects.vxlan import VxlanPair
from netns_kit.spec import LinkSpec

#: Interfaces every namespace has, which no builder records.
_ALWAYS = ("lo",)


@attrs.frozen
class Tap:
    """One tcpdump's place: ``interface`` (or ``any``) in ``namespace`` on ``machine``."""

    namespace: str | None
    interface: str
    machine: str | None = None

    @property
    def label(self) -> str:
        """A name for its file: ``red-veth-red``, ``red-any``, ``root-br0``."""
        return f"{self.namespace or 'root'}-{self.interface}"

    def __str__(self) -> str:
        return f"{self.namespace or ''}:{self.interface}"


def taps(lab: Any, where: object) -> list[Tap]:
    """The taps ``where`` stands for in ``lab`` (ValidationError naming ``where``)."""
    if isinstance(where, VethPair):
        return [_end(lab, where.end, where), _end(lab, where.peer_end, where)]
    if isinstance(where, VxlanPair):
        return [
            Tap(where.near.namespace, where.near.name, where.machines[0]),
            Tap(where.far.namespace, where.far.name, where.machines[1]),
        ]
    if isinstance(where, LinkSpec):
        return taps(lab, _pair_of(lab, where))
    if isinstance(where, Interface):  # a Bridge too: its own interface
        return [_end(lab, where, where)]
    if isinstance(where, Namespace):
        return [_whole(lab, where.name, where)]
    if isinstance(where, str):
        if ":" in where:
            namespace, _, interface = where.partition(":")
            return [_text_end(lab, namespace, interface, where)]
        return [_whole(lab, where, where)]
    raise ValidationError(
        "where", where, "is not a link end, link, bridge, namespace or 'ns:iface' of the lab"
    )


def _pair_of(lab: Any, spec: LinkSpec) -> Any:
    for held in lab.held.items:
        if isinstance(held.spec, LinkSpec) and (held.spec.a, held.spec.b, held.spec.names) == (
            spec.a,
            spec.b,
            spec.names,
        ):
            return held.obj
    raise ValidationError("where", spec, f"is not a link of lab {lab.name!r}")


def _home(lab: Any, namespace: str | None, interface: str) -> str | None:
    machines = lab.machines
    if machines is None:
        return None
    place = lab.held.place(namespace)
    if place is not None and place in machines.homes:
        return str(machines.homes[place])
    found = machines.bridge_homes.get((place, interface))
    return None if found is None else str(found)


def _known(lab: Any, namespace: str | None, interface: str) -> bool:
    return interface in _ALWAYS or lab.held.names.is_taken(lab.held.place(namespace), interface)


def _end(lab: Any, end: Interface, given: object) -> Tap:
    namespace = end.namespace
    if (
        namespace is not None
        and namespace not in lab.held.namespaces
        and namespace != lab.host_side
    ):
        raise ValidationError("where", given, f"is not in a namespace of lab {lab.name!r}")
    if isinstance(end, Bridge) and (lab.held.place(namespace), end.name) not in lab.held.bridges:
        raise ValidationError("where", given, f"is not a bridge of lab {lab.name!r}")
    if not _known(lab, namespace, end.name):
        raise ValidationError("where", given, f"is not an interface of lab {lab.name!r}")
    return Tap(namespace, end.name, _home(lab, namespace, end.name))


def _whole(lab: Any, name: str, given: object) -> Tap:
    if name not in lab.held.namespaces and (lab.host_side is None or name != lab.host_side):
        raise ValidationError("where", given, f"is not a namespace of lab {lab.name!r}")
    return Tap(name, "any", _home(lab, name, "any"))


def _text_end(lab: Any, namespace: str, interface: str, given: str) -> Tap:
    """``ns:iface``; an empty ``ns`` is the lab's host side."""
    if namespace:
        validate.namespace_name(namespace, "where")
    if interface != "any":
        validate.interface_name(interface, "where")
    where: str | None = namespace or lab.host_side
    if where is not None and where not in lab.held.namespaces and where != lab.host_side:
        raise ValidationError("where", given, f"is not in a namespace of lab {lab.name!r}")
    if interface == "any":
        if where is None:
            raise ValidationError(
                "where", given, "would capture the whole machine (root namespace)"
            )
        return _whole(lab, where, given)
    if not _known(lab, where, interface):
        raise ValidationError("where", given, f"is not an interface of lab {lab.name!r}")
    return Tap(where, interface, _home(lab, where, interface))
