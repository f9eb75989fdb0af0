"""What a lab shows of itself: its live state, its reachability, its topology.

The views of :class:`~netns_kit.Lab`, kept apart from its builders: functions of the
lab's core that only read (the lab's holdings for what it built, and ``ip -j`` for
what the kernel holds now).  The one exception is :func:`reachability`, which may
raise the kernel's neighbour limits for the time of a check, recorded in the lab's
journal and put back before it returns (:mod:`netns_kit.check.checker`).
"""

from __future__ import annotations

from typing import Any

import attrs

from netns_kit.check import checker
from netns_kit.check.neighbours import LabKeeper
from netns_kit.check.result import Reachability
from netns_kit.errors import NetnsKitError
from netns_kit.lab.core import LabCore
from netns_kit.readback import reader as state
from netns_kit.readback.reader import Snapshot
from netns_kit.readback.snapshot import snapshot as read
from netns_kit.spec import Topology


def sides_and_namespaces(lab: LabCore) -> list[str | None]:
    """What a snapshot reads: the host side (when it holds anything), then the
    lab's namespaces."""
    on_host = lab.held.host_bridges()
    sides: list[str | None] = [lab.host_side] if lab.host_side or on_host else []
    return [*sides, *lab.held.namespaces]


def snapshot(lab: LabCore) -> Snapshot:
    """The lab's live state (see :meth:`netns_kit.Lab.snapshot`)."""
    if lab.machines is not None:  # each machine's, one after another
        machines = lab.machines
        sides = [lab.host_side] if lab.host_side or lab.held.host_bridges() else []
        return Snapshot(
            tuple(
                found
                for machine in machines.names
                for found in read(
                    machines.executor_of(machine),
                    [*sides, *(n for n in lab.held.namespaces if machines.homes[n] == machine)],
                )
            )
        )
    snap = read(lab.ex, sides_and_namespaces(lab))
    if lab.host_side is not None or not lab.held.host_bridges():
        return snap
    return Snapshot(tuple(state.only_tagged(s, lab.tag) if s.name is None else s for s in snap))


def reachability(
    lab: LabCore, sources: Any, targets: Any, *, timeout: float, count: int
) -> Reachability:
    """The lab's reachability check (see :meth:`netns_kit.Lab.reachability`)."""
    if lab.state != "open" or lab.batching:
        raise NetnsKitError(f"lab {lab.name!r} is {lab.state}: check it once built")
    if lab.machines is not None:
        raise NetnsKitError(
            f"lab {lab.name!r} spans machines: its reachability check reads one machine "
            "(ping between its namespaces instead)"
        )
    return checker.run(
        lab.ex,
        read=sides_and_namespaces(lab),
        namespaces=list(lab.held.namespaces),
        sources=sources,
        targets=targets,
        timeout=timeout,
        count=count,
        keeper=LabKeeper(lab.journal),
        lab=lab.name,
    )


def topology(lab: LabCore) -> Topology:
    """What the lab built, as an inert description (for pictures and files)."""
    found = lab.held.topology(lab.isolated, lab.ipv6_link_local)
    routing = getattr(lab, "routing_spec", None)
    if routing is not None and routing():  # routers, OSPF, BGP
        found = attrs.evolve(found, routing=routing())
    if lab.sandbox is not None:
        found = attrs.evolve(found, sandboxed=True)
    if lab.machines is None:
        return found
    placement = tuple(lab.machines.homes.items())
    return attrs.evolve(found, machines=lab.machines.specs(), placement=placement)
