"""Building a whole topology: a checked :class:`~netns_kit.spec.Topology` in, builder
calls out, all in one batch (what ``Lab.apply`` and ``netns-kit up`` do)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .spec import Topology

if TYPE_CHECKING:
    from .lab import Lab


def build(lab: Lab, blueprint: Topology) -> None:
    """Call the builders ``blueprint`` (checked, link names filled in) stands for.

    Namespaces, bridges, links, routes, sysctls, NAT rules, then the hosts files,
    which name what came before.  Inside one batch, nothing runs until the end.
    """
    with lab.batch():
        places: dict[str, Any] = {n: lab.namespace(n) for n in blueprint.namespaces}
        for b in blueprint.bridges:
            places[b.name] = lab.bridge(b.name, b.address, namespace=b.namespace, stp=b.stp)
        for link in blueprint.links:
            lab.link(
                places[link.a],
                places[link.b],
                addresses=link.addresses,
                names=link.names,
                mtu=link.mtu,
            )
        for r in blueprint.routes:
            lab.route(r.destination, via=r.via, dev=r.dev, namespace=r.namespace)
        for s in blueprint.sysctls:
            lab.sysctl(s.key, s.value, namespace=s.namespace)
        for m in blueprint.masquerades:
            lab.masquerade(m.source, m.out_interface, namespace=m.namespace)
        for f in blueprint.port_forwards:
            lab.port_forward(
                f.port,
                f.to,
                namespace=f.namespace,
                in_interface=f.in_interface,
                protocol=f.protocol,
            )
        if blueprint.hosts:
            lab.hosts()
