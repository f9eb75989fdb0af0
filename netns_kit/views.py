"""What a lab shows of itself: its namespaces, its live state, its pictures.

These are the views of :class:`~netns_kit.Lab`, kept apart from its builders.  They
only read: the lab's holdings for what it built, and ``ip -j`` for what the kernel
holds now.  The one exception is :meth:`LabViews.reachability`, which may raise the
kernel's neighbour limits for the time of a check, recorded in the lab's journal
and put back before it returns (:mod:`netns_kit.checker`).
"""

from __future__ import annotations

import html
from typing import Any

import attrs

from . import checker, render, state
from .errors import NetnsKitError
from .executor import Executor
from .holdings import Holdings
from .journal import Journal
from .machines import Machines
from .namespace import Namespace
from .neighbours import LabKeeper
from .reachability import Reachability
from .spec import Topology
from .state import Snapshot
from .step import Step


class LabViews:
    """The read-only half of a lab (mixed into :class:`~netns_kit.Lab`)."""

    name: str
    isolated: bool
    ipv6_link_local: bool
    host: str | None
    tag: str
    held: Holdings
    machines: Machines | None
    journal: Journal
    _state: str
    _queue: list[Step] | None

    @property
    def ex(self) -> Executor:
        raise NotImplementedError

    @property
    def namespaces(self) -> list[Namespace]:
        """The lab's namespaces, in creation order (not its host namespace)."""
        return list(self.held.namespaces.values())

    def __getitem__(self, name: str) -> Namespace:
        """``lab["red"]``: a namespace of this lab by name."""
        try:
            return self.held.namespaces[name]
        except KeyError:
            raise KeyError(f"lab {self.name!r} has no namespace {name!r}") from None

    def sides_and_namespaces(self) -> list[str | None]:
        """What a snapshot reads: the host side (when it holds anything), then the
        lab's namespaces."""
        on_host = self.held.host_bridges()
        sides: list[str | None] = [self.host] if self.host or on_host else []
        return [*sides, *self.held.namespaces]

    def snapshot(self) -> Snapshot:
        """The lab's live state, read with ``ip -j``: its host side, then its namespaces.

        The host side of a lab that is not isolated is the root namespace; it is read
        only when the lab put a bridge there, and only the links carrying
        the lab's tag are kept, with their addresses and routes: the machine's own
        interfaces and other labs' are none of this lab's business.
        """
        if self.machines is not None:  # each machine's, one after another
            machines = self.machines
            sides = [self.host] if self.host or self.held.host_bridges() else []
            return Snapshot(
                tuple(
                    found
                    for host in machines.names
                    for found in state.snapshot(
                        machines.executor_of(host),
                        [*sides, *(n for n in self.held.namespaces if machines.homes[n] == host)],
                    )
                )
            )
        snap = state.snapshot(self.ex, self.sides_and_namespaces())
        if self.host is not None or not self.held.host_bridges():
            return snap
        return Snapshot(
            tuple(state.only_tagged(s, self.tag) if s.name is None else s for s in snap)
        )

    def reachability(
        self, sources: Any = None, targets: Any = None, *, timeout: float = 1.0, count: int = 1
    ) -> Reachability:
        """Probe every global address of every namespace from every other one (or only
        ``sources``, to ``targets``: namespaces or addresses), IPv4 and IPv6.

        Returns a :class:`~netns_kit.Reachability`: ``ok``, ``failures()``, a text
        matrix, ``to_dict()``, a heat map in Jupyter.  A neighbour-limit raise the check
        needs is recorded in the lab's record and put back before it returns.
        """
        if self._state != "open" or self._queue is not None:
            raise NetnsKitError(f"lab {self.name!r} is {self._state}: check it once built")
        if self.machines is not None:
            raise NetnsKitError(
                f"lab {self.name!r} spans machines: its reachability check reads one machine "
                "(ping between its namespaces instead)"
            )
        return checker.run(
            self.ex,
            read=self.sides_and_namespaces(),
            namespaces=list(self.held.namespaces),
            sources=sources,
            targets=targets,
            timeout=timeout,
            count=count,
            keeper=LabKeeper(self.journal),
            lab=self.name,
        )

    def to_mermaid(self) -> str:
        return render.to_mermaid(self.topology())

    def to_dot(self) -> str:
        return render.to_dot(self.topology())

    def to_svg(self) -> str:
        """A self-contained SVG picture of what the lab built (no graphviz needed)."""
        return render.to_svg(self.topology())

    def _repr_html_(self) -> str:
        """Jupyter: the picture, and a table of the live state while the lab is open."""
        if self._state == "open":
            return self.to_svg() + "\n" + render.to_html_table(self.snapshot())
        return self.to_svg() + f"\n<p>lab {html.escape(self.name)} is {self._state}</p>"

    def topology(self) -> Topology:
        """What this lab built, as an inert description (for pictures and files)."""
        found = self.held.topology(self.isolated, self.ipv6_link_local)
        routing = getattr(self, "routing_spec", None)
        if routing is not None and routing():  # routers, OSPF, BGP
            found = attrs.evolve(found, routing=routing())
        if getattr(self, "sandbox", None) is not None:
            found = attrs.evolve(found, sandboxed=True)
        if self.machines is None:
            return found
        placement = tuple(self.machines.homes.items())
        return attrs.evolve(found, machines=self.machines.specs(), placement=placement)
