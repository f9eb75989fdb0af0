"""Topologies as dicts (the shape of a file): checked in, written out."""

from __future__ import annotations

import weakref

from netns_kit.daemons import files as routing_files
from netns_kit.spec import LinkSpec, MachineSpec, Topology
from netns_kit.topology.check import Checker

#: Topologies the checker made, by identity: checking one again (``Lab.from_dict``,
#: then ``apply`` when the lab opens) would find nothing new, and costs seconds at
#: 10,000 namespaces.
_CHECKED: weakref.WeakValueDictionary[int, Topology] = weakref.WeakValueDictionary()


def from_dict(d: object, *, source: str = "<dict>") -> Topology:
    """Check a topology given as a dict (the shape of the file) and return it.

    Raises :class:`TopologyError` listing every problem found.
    """
    checked = Checker(source).topology(d)
    _CHECKED[id(checked)] = checked
    return checked


def check(topology: Topology, *, source: str = "<topology>") -> Topology:
    """Run a topology made in Python through the same checks as a file (one that
    came out of these checks, unchanged since (it is frozen), is returned as it is)."""
    if _CHECKED.get(id(topology)) is topology:
        return topology
    return from_dict(to_dict(topology), source=source)


def to_dict(topology: Topology) -> dict[str, object]:
    """The file form of ``topology`` (what :func:`from_dict` reads back)."""
    out: dict[str, object] = {"name": topology.name, "isolated": topology.isolated}
    if topology.ipv6_link_local:
        out["ipv6_link_local"] = True
    placed = dict(topology.placement)
    routers = {r.name: r for r in topology.routing.routers} if topology.routing else {}
    out["namespaces"] = [
        _namespace_dict(n, placed.get(n), routers.get(n)) for n in topology.namespaces
    ]
    if topology.machines:
        out["machines"] = {m.name: _machine_dict(m) for m in topology.machines}
    if topology.hosts:
        out["hosts_files" if topology.machines else "hosts"] = True
    if topology.bridges:
        out["bridges"] = [
            _without_none(
                name=b.name,
                namespace=b.namespace,
                address=b.address,
                stp=b.stp or None,
                mcast_snooping=b.snooping or None,
                machine=b.machine if b.namespace is None else None,
            )
            for b in topology.bridges
        ]
    if topology.links:
        out["links"] = [_link_dict(link) for link in topology.links]
    if topology.routes:
        out["routes"] = [
            _without_none(namespace=r.namespace, destination=r.destination, via=r.via, dev=r.dev)
            for r in topology.routes
        ]
    if topology.sysctls:
        out["sysctls"] = [
            _without_none(namespace=s.namespace, key=s.key, value=s.value) for s in topology.sysctls
        ]
    if topology.masquerades:
        out["masquerade"] = [
            _without_none(namespace=m.namespace, source=m.source, out_interface=m.out_interface)
            for m in topology.masquerades
        ]
    if topology.port_forwards:
        out["port_forwards"] = [
            _without_none(
                namespace=f.namespace,
                port=int(f.port) if f.port.isdigit() else f.port,
                to=f.to,
                protocol=f.protocol if f.protocol != "tcp" else None,
                in_interface=f.in_interface,
            )
            for f in topology.port_forwards
        ]
    if topology.routing:
        out.update(routing_files.to_dict(topology.routing))
    return out


def _namespace_dict(
    name: str, machine: str | None, router: routing_files.RouterSpec | None
) -> object:
    if machine is None and router is None:
        return name
    item: dict[str, object] = {"name": name}
    if machine is not None:
        item["machine"] = machine
    if router is not None:
        item["router"] = True
        if router.loopback is not None:
            loop = router.loopback
            item["loopback"] = loop if isinstance(loop, str) else list(loop)
    return item


def _machine_dict(machine: MachineSpec) -> dict[str, object]:
    return _without_none(
        ssh=machine.target,
        underlay=machine.underlay,
        port=machine.port if machine.port != 22 else None,
        identity_file=machine.identity_file,
        sudo=machine.sudo or None,
    )


def _link_dict(link: LinkSpec) -> dict[str, object]:
    out = _without_none(a=link.a, b=link.b, mtu=link.mtu)
    if link.shape is not None:
        out.update(link.shape.settings())
        if link.direction != "both":
            out["direction"] = link.direction
    if link.names is not None:
        out["names"] = list(link.names)
    first, second = link.addresses
    if second is not None:
        out["addresses"] = [first or "", second]
    elif first is not None:
        out["addresses"] = [first]
    return out


def _without_none(**values: object) -> dict[str, object]:
    return {key: value for key, value in values.items() if value is not None}
