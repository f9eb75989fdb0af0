"""Plain descriptions of a lab: what a topology file holds and what a picture shows.

These are inert values.  :mod:`netns_kit.topology` reads and checks them from files,
:class:`netns_kit.lab.Lab` builds them, and :mod:`netns_kit.render` draws them, so all
three agree on one model, including the names links get when a file gives none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs

from . import validate
from .errors import ValidationError
from .shaping import Shape
from .validate import IFNAME_MAX


@attrs.frozen
class BridgeSpec:
    """A bridge on the lab's host side; ``address`` is the host side's own (a CIDR)."""

    name: str
    address: str | None = None


@attrs.frozen
class LinkSpec:
    """A veth pair between two namespaces, or between a namespace (``a``) and a bridge.

    ``names`` are the interface names at ``a`` and at ``b``; ``None`` means the
    default names (see :class:`LinkNamer`).  ``addresses`` are CIDRs or ``None``.
    ``shape`` is the link's shaping (``None``: none) and ``direction`` which way it
    shapes (``both``, ``a->b`` or ``b->a``; see :mod:`netns_kit.shaping`).
    """

    a: str
    b: str
    names: tuple[str, str] | None = None
    addresses: tuple[str | None, str | None] = (None, None)
    mtu: int | None = None
    shape: Shape | None = None
    direction: str = "both"


@attrs.frozen
class RouteSpec:
    """A route; ``namespace=None`` means the lab's host side."""

    destination: str
    via: str | None = None
    dev: str | None = None
    namespace: str | None = None


@attrs.frozen
class SysctlSpec:
    """A kernel setting; ``namespace=None`` means the lab's host side."""

    key: str
    value: str
    namespace: str | None = None


@attrs.frozen
class MasqueradeSpec:
    """NAT by masquerade on the lab's host side."""

    source: str
    out_interface: str | None = None


@attrs.frozen
class Topology:
    """A whole lab, in the order it is built."""

    name: str
    isolated: bool = False
    namespaces: tuple[str, ...] = ()
    bridges: tuple[BridgeSpec, ...] = ()
    links: tuple[LinkSpec, ...] = ()
    routes: tuple[RouteSpec, ...] = ()
    sysctls: tuple[SysctlSpec, ...] = ()
    masquerades: tuple[MasqueradeSpec, ...] = ()
    ipv6_link_local: bool = False

    def with_link_names(self) -> Topology:
        """The same topology with every link's default names filled in."""
        namer = LinkNamer()
        bridges = {b.name for b in self.bridges}
        links = []
        for link in self.links:
            names = link.names or namer.default_names(link.a, link.b, bridge=link.b in bridges)
            namer.take(link.a, names[0])
            namer.take(link.b if link.b not in bridges else None, names[1])
            links.append(attrs.evolve(link, names=names))
        return attrs.evolve(self, links=tuple(links))


def short_name(wanted: str) -> str:
    """``wanted`` if it fits in an interface name, else a unique deterministic cut."""
    if len(wanted.encode()) <= IFNAME_MAX:
        return wanted
    digest = hashlib.blake2b(wanted.encode(), digest_size=2).hexdigest()
    return f"{wanted[: IFNAME_MAX - 5]}-{digest}"


class LinkNamer:
    """Chooses the names of a link's two ends when the user gives none.

    The seed's names come first: ``veth-red``/``veth-blue`` between namespaces and
    ``veth-red``/``veth-red-br`` to a bridge.  When one of them is already taken in
    its namespace (a second link from ``red``), both ends are named after the pair
    instead (``red-blue``/``blue-red``).  Names longer than 15 bytes are cut by
    :func:`short_name`.  ``None`` as a namespace means the lab's host side.
    """

    def __init__(self) -> None:
        self._taken: set[tuple[str | None, str]] = set()

    def take(self, namespace: str | None, name: str) -> None:
        self._taken.add((namespace, name))

    def is_taken(self, namespace: str | None, name: str) -> bool:
        return (namespace, name) in self._taken

    def pick(self, a: str, b: str, names: Sequence[str] | None, *, bridge: bool) -> tuple[str, str]:
        """The names a link's ends get: ``names`` checked, or the defaults; either way
        refused when one is taken already in its namespace."""
        if names is None:
            pair = self.default_names(a, b, bridge=bridge)
        else:
            if isinstance(names, str) or len(names) != 2:
                raise ValidationError("names", names, "must give two interface names")
            pair = (
                validate.interface_name(names[0], "names[0]"),
                validate.interface_name(names[1], "names[1]"),
            )
        for where, name in ((a, pair[0]), (None if bridge else b, pair[1])):
            if self.is_taken(where, name):
                raise ValidationError(
                    "names", name, f"is already an interface in {where or 'the host side'}"
                )
        return pair

    def default_names(self, a: str, b: str, *, bridge: bool) -> tuple[str, str]:
        where_b = None if bridge else b
        first = (short_name(f"veth-{a}"), short_name(f"veth-{a}-br" if bridge else f"veth-{b}"))
        if not self.is_taken(a, first[0]) and not self.is_taken(where_b, first[1]):
            return first
        return short_name(f"{a}-{b}"), short_name(f"{b}-{a}")
