"""The model all pictures share: a topology turned into boxes, bars, switches and wires.

A namespace is a box.  A bridge on the host side is a bar in the host-side box; a
bridge inside a namespace is a switch drawn inside that namespace's box, and a wire
to it ends at that box, on a tab that says it is a port.  So a wire always joins a
namespace box to another box or to a host-side bar, whatever the link joined.

When boxes are wired to each other, :func:`levels` puts them in rows by their
distance from the middle of the network, so that a tree reads as a tree.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import attrs

from netns_kit.objects.shaping import describe
from netns_kit.spec import Endpoint, RoutingSpec, Topology

#: How the notes of NAT rules start (see :func:`_nat_notes`).
NAT_WORDS = ("masquerade ", "forward ", "router ", "ospf ", "bgp ")


@attrs.frozen
class Wire:
    """A veth pair: ``a`` end in namespace ``ns_a``; ``b`` end in ``ns_b`` or on a
    host-side ``bridge``.  ``ports`` names the bridge inside the box each end is a
    port of (``None``: a plain interface)."""

    ns_a: str
    if_a: str
    if_b: str
    ns_b: str | None = None
    bridge: str | None = None
    addresses: tuple[str | None, str | None] = (None, None)
    ports: tuple[str | None, str | None] = (None, None)
    #: The link's shaping as its label shows it (``10mbit 20ms 1%``), if it is shaped.
    shaping: str | None = None


@attrs.frozen
class Switch:
    """A bridge inside a namespace."""

    name: str
    address: str | None = None
    stp: bool = False
    ports: int = 0

    def text(self) -> str:
        words = [f"switch {self.name}"]
        if self.address:
            words.append(self.address)
        extra = [f"{self.ports} port{'' if self.ports == 1 else 's'}"] if self.ports else []
        if self.stp:
            extra.append("stp")
        return " ".join(words) + (f" ({', '.join(extra)})" if extra else "")


@attrs.frozen
class Model:
    name: str
    host_side_label: str
    namespaces: tuple[str, ...]
    bridges: tuple[tuple[str, str | None], ...]  # host-side bridges: bars
    wires: tuple[Wire, ...]
    routes: dict[str | None, list[str]]  # per namespace: its notes (routes, settings, NAT)
    host_side_notes: tuple[str, ...]
    switches: dict[str, tuple[Switch, ...]] = attrs.field(factory=dict)
    rows: tuple[tuple[str, ...], ...] = ()  # namespaces by level; () when nothing is wired
    hosts: bool = False  # the lab writes hosts files (names resolve inside it)

    @property
    def show_host_side(self) -> bool:
        """Whether pictures draw the host side: when it holds something, or when the
        lab has no switch of its own anywhere (where the host side would hold them)."""
        return bool(self.bridges or self.host_side_notes or not self.switches)

    def interfaces(self, namespace: str) -> list[tuple[str, str | None]]:
        """(interface, address) for each end of a wire that lies in ``namespace`` and
        is not a switch's port (the switch line stands for those)."""
        found: list[tuple[str, str | None]] = []
        for wire in self.wires:
            if wire.ns_a == namespace and wire.ports[0] is None:
                found.append((wire.if_a, wire.addresses[0]))
            if wire.ns_b == namespace and wire.ports[1] is None:
                found.append((wire.if_b, wire.addresses[1]))
        return found

    def notes(self, namespace: str) -> list[str]:
        """What a box says besides its interfaces: its switches, then its notes."""
        return [text for text, _ in self.styled_notes(namespace)]

    def styled_notes(self, namespace: str) -> list[tuple[str, str]]:
        """The notes with their kind: ``switch``, ``nat`` (masquerade and port
        forwards, which make the namespace a router) or ``note``."""
        found = [(s.text(), "switch") for s in self.switches.get(namespace, ())]
        for text in self.routes.get(namespace, []):
            found.append((text, "nat" if text.startswith(NAT_WORDS) else "note"))
        return found


def host_side_label(topology: Topology) -> str:
    """How pictures name the place bridges live in."""
    each = " on each machine" if topology.machines else ""
    if topology.isolated:
        inside = " in its sandbox" if topology.sandboxed else ""
        return f"host side: {topology.name}-host{each}{inside}"
    if topology.sandboxed:
        return "host side (the sandbox's own namespace)"
    return f"host side (root namespace{each})"


def _machine(topology: Topology, end: Endpoint) -> str | None:
    """The machine an end is on, in a topology spread over machines."""
    if not topology.machines:
        return None
    first = topology.machines[0].name
    if end.bridge is not None and end.namespace is None:
        return end.bridge.machine or first
    return topology.machine_of(end.namespace or end.name) or first


def _route_text(destination: str, via: str | None, dev: str | None) -> str:
    text = destination
    if via:
        text += f" via {via}"
    if dev:
        text += f" dev {dev}"
    return text


def _end(ends: Endpoint | None, ref: str) -> Endpoint:
    """A link end, or (for a topology that names something it lacks) a namespace."""
    return ends if ends is not None else Endpoint(ref, ref)


def build_model(topology: Topology) -> Model:
    topo = topology.with_link_names()
    resolve = topo.ends()
    bridges = tuple((b.name, b.address) for b in topo.bridges if b.namespace is None)
    namespaces = list(topo.namespaces)
    counts: dict[tuple[str | None, str], int] = {}
    wires: list[Wire] = []
    notes: list[str] = []
    inside: dict[str | None, list[str]] = {}  # notes for a box (None: the host side)
    for link in topo.links:
        a, b = _end(resolve.end(link.a), link.a), _end(resolve.end(link.b), link.b)
        names = link.names or (f"veth-{a.name}", f"veth-{b.name}")
        addrs = link.addresses
        shaping = describe(link.shape, link.direction, link.a, link.b)
        kind = "vxlan" if _machine(topo, a) != _machine(topo, b) else "veth"
        if a.namespace is None and b.namespace is not None:  # the host end last
            a, b, names, addrs = b, a, (names[1], names[0]), (addrs[1], addrs[0])
        for end in (a, b):
            if end.bridge is not None:
                key = (end.namespace, end.name)
                counts[key] = counts.get(key, 0) + 1
            elif end.namespace is not None and end.namespace not in namespaces:
                namespaces.append(end.namespace)
        ports = (
            a.name if a.bridge is not None else None,
            b.name if b.bridge is not None else None,
        )
        if shaping is not None:  # on the first end's box, beside its other notes
            inside.setdefault(a.namespace, []).append(f"{names[0]}: {shaping}")
        if kind == "vxlan":  # a tunnel between machines: its wire says so
            shaping = "vxlan" if shaping is None else f"vxlan {shaping}"
        if a.namespace is None:  # both ends on the host side: two of its bridges
            notes.append(f"{kind} {names[0]} -- {names[1]} joins {a.name} and {b.name}")
        elif a.namespace == b.namespace:  # two bridges of one namespace
            inside.setdefault(a.namespace, []).append(
                f"veth {names[0]} -- {names[1]} joins {a.name} and {b.name}"
            )
        elif b.namespace is None and b.bridge is not None:
            wire = Wire(a.namespace, names[0], names[1], bridge=b.name, addresses=addrs)
            wires.append(attrs.evolve(wire, ports=(ports[0], None), shaping=shaping))
            if addrs[1]:
                notes.append(f"{names[1]} {addrs[1]}")
        elif b.namespace is not None:
            wire = Wire(a.namespace, names[0], names[1], ns_b=b.namespace, addresses=addrs)
            wires.append(attrs.evolve(wire, ports=ports, shaping=shaping))
    switches: dict[str, tuple[Switch, ...]] = {}
    for bridge in topo.bridges:
        if bridge.namespace is not None:
            count = counts.get((bridge.namespace, bridge.name), 0)
            switch = Switch(bridge.name, bridge.address, bridge.stp, count)
            switches[bridge.namespace] = (*switches.get(bridge.namespace, ()), switch)
            if bridge.namespace not in namespaces:
                namespaces.append(bridge.namespace)
    routes: dict[str | None, list[str]] = {}
    for route in topo.routes:
        text = _route_text(route.destination, route.via, route.dev)
        if route.namespace is None:
            notes.append(f"route {text}")
        else:
            routes.setdefault(route.namespace, []).append(text)
    lines: list[tuple[str | None, str]] = [
        (ns, f"on machine {_machine(topo, Endpoint(ns, ns))}")
        for ns in topo.namespaces
        if topo.machines
    ]
    lines += [
        (None, f"{b.name} on machine {b.machine or topo.machines[0].name}")
        for b in topo.bridges
        if topo.machines and b.namespace is None
    ]
    lines += [(s.namespace, f"sysctl {s.key}={s.value}") for s in topo.sysctls]
    lines += list(_nat_notes(topo))
    lines += list(routing_notes(topo.routing))
    lines += [(ns, text) for ns, extra in inside.items() for text in extra]
    for namespace, text in lines:
        if namespace is None:
            notes.append(text)
        else:
            routes.setdefault(namespace, []).append(text)
    return Model(
        name=topo.name,
        host_side_label=host_side_label(topo),
        namespaces=tuple(namespaces),
        bridges=bridges,
        wires=tuple(wires),
        routes=routes,
        host_side_notes=tuple(notes),
        switches=switches,
        rows=levels(namespaces, wires),
        hosts=topo.hosts,
    )


def _nat_notes(topo: Topology) -> Iterable[tuple[str | None, str]]:
    """Which namespace NATs what, and which ports it forwards where."""
    for m in topo.masquerades:
        out = f" out {m.out_interface}" if m.out_interface else ""
        yield m.namespace, f"masquerade {m.source}{out}"
    for f in topo.port_forwards:
        on = f" on {f.in_interface}" if f.in_interface else ""
        yield f.namespace, f"forward {f.protocol} {f.port}{on} -> {f.to}"


def levels(namespaces: Sequence[str], wires: Sequence[Wire]) -> tuple[tuple[str, ...], ...]:
    """Boxes in rows by their distance from the middle of the network, or ``()`` when
    no two boxes are wired to each other (the grid then places them in order).

    The middle is the centre of a longest path, found with two breadth-first
    searches (linear in the size of the lab); boxes not connected to it follow, each
    group from its own middle.  Within a row, boxes keep their parents' order, so the
    children of one box sit side by side.
    """
    neighbours: dict[str, list[str]] = {name: [] for name in namespaces}
    for wire in wires:
        if wire.ns_b is not None and wire.ns_b != wire.ns_a:
            neighbours[wire.ns_a].append(wire.ns_b)
            neighbours[wire.ns_b].append(wire.ns_a)
    if not any(neighbours.values()):
        return ()
    rows: list[list[str]] = []
    placed: set[str] = set()
    alone = [name for name in namespaces if not neighbours[name]]
    for start in sorted(namespaces, key=lambda n: -len(neighbours[n])):
        if start in placed or not neighbours[start]:
            continue
        far, _ = _farthest(start, neighbours)
        other, parent = _farthest(far, neighbours)
        path = [other]
        while path[-1] != far:
            path.append(parent[path[-1]])
        middle = path[len(path) // 2]
        for depth, row in enumerate(_bfs_rows(middle, neighbours)):
            while len(rows) <= depth:
                rows.append([])
            rows[depth] += row
            placed.update(row)
    if alone:
        rows.append(alone)
    return tuple(tuple(row) for row in rows)


def _farthest(start: str, neighbours: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
    parent = {start: start}
    queue = deque([start])
    last = start
    while queue:
        last = queue.popleft()
        for other in neighbours[last]:
            if other not in parent:
                parent[other] = last
                queue.append(other)
    return last, parent


def _bfs_rows(start: str, neighbours: dict[str, list[str]]) -> list[list[str]]:
    rows = [[start]]
    seen = {start}
    while True:
        row = []
        for box in rows[-1]:
            for other in neighbours[box]:
                if other not in seen:
                    seen.add(other)
                    row.append(other)
        if not row:
            return rows
        rows.append(row)


def routing_notes(spec: RoutingSpec | None) -> list[tuple[str | None, str]]:
    """What pictures say of each router: its loopback, OSPF area and AS."""
    if not spec:
        return []
    found: list[tuple[str | None, str]] = []
    everyone = [r.name for r in spec.routers]
    for r in spec.routers:
        loop = r.loopback if isinstance(r.loopback, str) else " ".join(r.loopback or ())
        found.append((r.name, f"router lo {loop}" if loop else "router"))
    for o in spec.ospf:
        for name in o.routers if o.routers is not None else everyone:
            found.append((name, f"ospf area {o.area} ({o.suite})"))
    for b in spec.bgp:
        found.append((b.router, f"bgp AS {b.asn} ({b.suite})"))
    return found
