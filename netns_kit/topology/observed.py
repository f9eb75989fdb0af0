"""A topology read from a running lab: what the kernel holds, as a :class:`Topology`.

Pictures and ``netns-kit show`` of a kept lab draw from it.  It sits with the
topology files rather than with the kernel readers, because it builds the same inert
description a file does; the readers only say what the kernel holds.
"""

from __future__ import annotations

import attrs

from netns_kit.objects import shaping
from netns_kit.readback.reader import LinkInfo, NamespaceState, Snapshot
from netns_kit.spec import BridgeSpec, Ends, LinkSpec, RouteSpec, Topology


def topology_of(
    snapshot: Snapshot, *, name: str, isolated: bool, host_side: str | None
) -> Topology:
    """A running lab's topology, rebuilt from what the kernel says (for pictures).

    ``host_side`` is the lab's host-side namespace (``None``: the root namespace).  Bridges are
    found in every namespace; a veth end that is a bridge port stands for its bridge,
    so a link may join two namespaces, a namespace and a bridge, or two bridges.
    Routes the kernel made itself (connected, link-local) are left out, and so are
    firewall rules, which ``ip`` does not show.
    """
    namespaces = [s.name for s in snapshot if s.name is not None and s.name != host_side]
    present = {s.name for s in snapshot}

    def place(where: str | None) -> str | None:
        return None if where == host_side else where

    bridges = [
        BridgeSpec(link.name, _first_address(state, link.name), place(state.name))
        for state in snapshot
        for link in state.links
        if link.kind == "bridge"
    ]

    def end(state: NamespaceState, interface: str) -> str | None:
        """A link end's reference: its bridge's key, or its namespace, or None."""
        master = state.link(interface).master
        if master is not None:
            return f"{place(state.name) or ''}/{master}"
        return state.name if state.name in namespaces else None

    links: list[LinkSpec] = []
    seen: set[tuple[str | None, str]] = set()
    for state in snapshot:
        for link in state.links:
            peer = link.peer
            if peer is None or peer.name is None or (state.name, link.name) in seen:
                continue
            if peer.namespace not in present:
                continue
            seen.add((peer.namespace, peer.name))
            other = snapshot[peer.namespace]
            a, b = end(state, link.name), end(other, peer.name)
            if a is None or b is None:
                continue
            names = (link.name, peer.name)
            addresses = (_first_address(state, link.name), _first_address(other, peer.name))
            shape, way = _shaping(link, other, peer.name)
            if "/" in a and "/" not in b:  # the seed's order: the namespace end first
                a, b, names, addresses = b, a, names[::-1], addresses[::-1]
                way = shaping.flipped(way)
            links.append(LinkSpec(a, b, names, addresses, None, shape, way))
    ends = Ends(namespaces, bridges)
    named = [
        attrs.evolve(
            link,
            a=ends.ref(ends.by_key[link.a]) if link.a in ends.by_key else link.a,
            b=ends.ref(ends.by_key[link.b]) if link.b in ends.by_key else link.b,
        )
        for link in links
    ]
    routes = [
        RouteSpec(r.destination, r.via, r.dev, place(s.name))
        for s in snapshot
        for r in s.routes
        if r.protocol not in ("kernel", "ra") and not r.destination.startswith("fe80::")
    ]
    return Topology(name, isolated, tuple(namespaces), tuple(bridges), tuple(named), tuple(routes))


def _shaping(
    link: LinkInfo, peer_state: NamespaceState | None, peer: str
) -> tuple[shaping.Shape | None, str]:
    """A link's shaping and its direction, from the qdiscs of its two ends."""
    other = peer_state.link(peer).qdisc if peer_state is not None else None
    return shaping.link_shaping(link.qdisc, other)


def _first_address(state: NamespaceState | None, interface: str) -> str | None:
    if state is None:
        return None
    for address in state.addresses:
        if address.interface == interface and address.scope == "global":
            return address.address
    return None
