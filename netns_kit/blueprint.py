"""Labs from topologies: a checked :class:`~netns_kit.spec.Topology` in, builder calls
out, all in one batch (what ``Lab.apply`` and ``netns-kit up`` do), and the
constructors of a lab from a topology, a dict or a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from netns_kit.daemons import files as routing_files

from . import shaping, topology
from .spec import HostSpec, Topology
from .ssh import SSHExecutor

if TYPE_CHECKING:
    from .lab import Lab


def build(lab: Lab, blueprint: Topology) -> None:
    """Call the builders ``blueprint`` (checked, link names filled in) stands for.

    Namespaces, bridges, links, routes, sysctls, NAT rules, then the hosts files,
    which name what came before.  Inside one batch, nothing runs until the end.
    """
    routing = blueprint.routing
    routers = {r.name: r for r in routing.routers} if routing else {}
    with lab.batch():
        places: dict[str, Any] = {
            n: lab.namespace(n, host=blueprint.machine_of(n))
            if n not in routers
            else lab.router(n, loopback=routers[n].loopback, host=blueprint.machine_of(n))
            for n in blueprint.namespaces
        }
        for b in blueprint.bridges:
            places[b.name] = lab.bridge(
                b.name, b.address, namespace=b.namespace, stp=b.stp, host=b.host
            )
        for link in blueprint.links:
            lab.link(
                places[link.a],
                places[link.b],
                addresses=link.addresses,
                names=link.names,
                mtu=link.mtu,
                direction=link.direction,
                **shaping.settings(link.shape),
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
        if routing:  # the daemons start, and the batch ends once routing converged
            routing_files.build(lab, routing)


class FromTopology:
    """``Lab.from_topology``, ``from_dict`` and ``from_file`` (mixed into
    :class:`~netns_kit.Lab`): a lab built from its blueprint when it opens."""

    _blueprint: Topology | None

    def __init__(self, name: str, **options: Any) -> None:  # the Lab's own runs instead
        raise NotImplementedError

    @classmethod
    def from_topology(cls, blueprint: Topology, **options: Any) -> Self:
        """A lab named and isolated as ``blueprint`` says, built when it opens.

        ``options`` are the other arguments of :class:`Lab` (``executor``,
        ``state_dir``, ``on_progress``, ``rootless``).  A topology spread over
        machines reaches each through ssh as its ``[hosts]`` table says (the lab
        closes those connections when it closes), unless ``hosts=`` gives executors
        (and ``underlay=`` addresses) instead: a test's fake hosts, say.
        """
        if blueprint.machines and options.get("executor") is not None:
            # one executor for every machine: a dry run (its script says which is which)
            executor = options.pop("executor")
            options.setdefault("hosts", {m.name: executor for m in blueprint.machines})
        owned = blueprint.machines and options.get("hosts") is None
        if blueprint.machines:
            options.setdefault(
                "underlay", {m.name: m.underlay or m.host for m in blueprint.machines}
            )
        if owned:
            options["hosts"] = {m.name: reach(m) for m in blueprint.machines}
        lab = cls(
            blueprint.name,
            isolated=blueprint.isolated,
            ipv6_link_local=blueprint.ipv6_link_local,
            **options,
        )
        lab._blueprint = blueprint
        if owned:
            lab.machines.owned = True  # type: ignore[attr-defined]
        return lab

    @classmethod
    def from_dict(cls, data: dict[str, Any], **options: Any) -> Self:
        """A lab from a topology dict (checked completely first), built when it opens."""
        return cls.from_topology(topology.from_dict(data), **options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Self:
        """A lab from a TOML (or YAML) topology file, built when it opens."""
        return cls.from_topology(topology.load(Path(path)), **options)


def reach(machine: HostSpec) -> SSHExecutor:
    """The executor a file's ``[hosts]`` entry stands for."""
    return SSHExecutor(
        machine.host,
        user=machine.user,
        port=machine.port,
        identity_file=machine.identity_file,
        sudo=machine.sudo,
    )
