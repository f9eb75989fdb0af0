"""The model all pictures share: a topology turned into boxes, bars and wires."""

from __future__ import annotations

import attrs

from ..shaping import describe
from ..spec import Topology


@attrs.frozen
class Wire:
    """A veth pair: ``a`` end in namespace ``ns_a``; ``b`` end in ``ns_b`` or on a bridge."""

    ns_a: str
    if_a: str
    if_b: str
    ns_b: str | None = None
    bridge: str | None = None
    addresses: tuple[str | None, str | None] = (None, None)
    #: The link's shaping as its label shows it (``10mbit 20ms 1%``), if it is shaped.
    shaping: str | None = None


@attrs.frozen
class Model:
    name: str
    host_label: str
    namespaces: tuple[str, ...]
    bridges: tuple[tuple[str, str | None], ...]
    wires: tuple[Wire, ...]
    routes: dict[str | None, list[str]]
    host_notes: tuple[str, ...]

    def interfaces(self, namespace: str) -> list[tuple[str, str | None]]:
        """(interface, address) for each end of a wire that lies in ``namespace``."""
        found: list[tuple[str, str | None]] = []
        for wire in self.wires:
            if wire.ns_a == namespace:
                found.append((wire.if_a, wire.addresses[0]))
            if wire.ns_b == namespace:
                found.append((wire.if_b, wire.addresses[1]))
        return found


def host_label(topology: Topology) -> str:
    """How pictures name the place bridges live in."""
    if topology.isolated:
        return f"host side: {topology.name}-host"
    return "host side (root namespace)"


def _route_text(destination: str, via: str | None, dev: str | None) -> str:
    text = destination
    if via:
        text += f" via {via}"
    if dev:
        text += f" dev {dev}"
    return text


def build_model(topology: Topology) -> Model:
    topo = topology.with_link_names()
    bridges = tuple((b.name, b.address) for b in topo.bridges)
    bridge_names = {name for name, _ in bridges}
    namespaces = list(topo.namespaces)
    wires: list[Wire] = []
    notes: list[str] = []
    routes: dict[str | None, list[str]] = {}
    for link in topo.links:
        a, b = link.a, link.b
        names = link.names or (f"veth-{a}", f"veth-{b}")
        addrs = link.addresses
        shaping = describe(link.shape, link.direction, a, b)
        if a in bridge_names and b not in bridge_names:  # keep the namespace first
            a, b, names, addrs = b, a, (names[1], names[0]), (addrs[1], addrs[0])
        for end in (a, b):
            if end not in bridge_names and end not in namespaces:
                namespaces.append(end)
        if shaping is not None:  # on the namespace end's box, beside its other notes
            routes.setdefault(a, []).append(f"{names[0]}: {shaping}")
        if b in bridge_names:
            wires.append(Wire(a, names[0], names[1], bridge=b, addresses=addrs, shaping=shaping))
            if addrs[1]:
                notes.append(f"{names[1]} {addrs[1]}")
        else:
            wires.append(Wire(a, names[0], names[1], b, addresses=addrs, shaping=shaping))
    for route in topo.routes:
        text = _route_text(route.destination, route.via, route.dev)
        routes.setdefault(route.namespace, []).append(text)
    notes += [f"route {text}" for text in routes.get(None, [])]
    notes += [f"sysctl {s.key}={s.value}" for s in topo.sysctls if s.namespace is None]
    for ns in {s.namespace for s in topo.sysctls if s.namespace is not None}:
        for s in topo.sysctls:
            if s.namespace == ns:
                routes.setdefault(ns, []).append(f"sysctl {s.key}={s.value}")
    for m in topo.masquerades:
        out = f" out {m.out_interface}" if m.out_interface else ""
        notes.append(f"masquerade {m.source}{out}")
    return Model(
        name=topo.name,
        host_label=host_label(topo),
        namespaces=tuple(namespaces),
        bridges=bridges,
        wires=tuple(wires),
        routes=routes,
        host_notes=tuple(notes),
    )
