"""Temporary labs: build, use, and leave nothing behind.

:class:`Lab` is what users hold.  Its life cycle is :mod:`netns_kit.lab.core`'s, its
builders :mod:`netns_kit.lab.builders`', and what it shows of itself
:mod:`netns_kit.lab.views`'; this module adds the constructors from topologies and
the pictures.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from netns_kit import render, topology, validate
from netns_kit.check.result import Reachability
from netns_kit.daemons.builders import RoutingBuilders
from netns_kit.lab import measure, views
from netns_kit.lab.machines import reach
from netns_kit.objects.namespace import Namespace
from netns_kit.readback.reader import Snapshot
from netns_kit.spec import Topology

if TYPE_CHECKING:  # features load on first use: `import netns_kit` stays quick
    from netns_kit.capture.capture import Capture
    from netns_kit.timeline.events import Timeline
    from netns_kit.timeline.watch import Watch


class Lab(RoutingBuilders):
    """A temporary lab.  Use it as a context manager, or call :meth:`close`.

    ``isolated=True`` puts the lab's host side (bridges, host addresses, forwarding,
    NAT, routes to the outside) in a namespace of its own, ``<name>-host``, so the
    machine's network is never changed.  ``isolated=False`` uses the root namespace,
    as the iproute2 recipes do.  ``progress=callback`` hears how the lab's work goes:
    ``callback(event)`` with a :class:`~netns_kit.engine.progress.ProgressEvent` (phase,
    done, total, elapsed) as commands finish (see :mod:`netns_kit.engine.progress`; in a
    notebook with tqdm or ipywidgets a bar shows by itself).  ``on_progress(done,
    total)``, the older hook, hears of every command.

    ``rootless=True`` builds the lab in a sandbox of its own
    (:mod:`netns_kit.executors.sandbox`), without root: its host side is the sandbox's
    network namespace, and nothing of it is visible from, or can reach, the machine's
    network.  ``None`` (the default) means rootless for a user who is not root, the
    machine's namespaces for root.

    ``machines={"a": executor, "b": executor}`` spreads the lab over machines, each
    with its own host side, ``underlay={"a": "10.0.0.1", ...}`` their addresses for
    links between them (:mod:`netns_kit.lab.machines`, :mod:`netns_kit.lab.placement`).
    """

    _blueprint: Topology | None = None

    def _opened(self) -> None:
        if self._blueprint is not None:
            self.apply(self._blueprint)

    # -- from topologies ------------------------------------------------------------
    @classmethod
    @validate.renamed_keywords(hosts="machines")
    def from_topology(cls, blueprint: Topology, **options: Any) -> Self:
        """A lab named and isolated as ``blueprint`` says, built when it opens.

        ``options`` are the other arguments of :class:`Lab` (``executor``,
        ``state_dir``, ``on_progress``, ``rootless``).  A topology spread over
        machines reaches each through ssh as its ``[machines]`` table says (the lab
        closes those connections when it closes), unless ``hosts=`` gives executors
        (and ``underlay=`` addresses) instead: a test's fake machines, say.
        """
        if blueprint.machines and options.get("executor") is not None:
            # one executor for every machine: a dry run (its script says which is which)
            executor = options.pop("executor")
            options.setdefault("machines", {m.name: executor for m in blueprint.machines})
        owned = blueprint.machines and options.get("machines") is None
        if blueprint.machines:
            options.setdefault(
                "underlay", {m.name: m.underlay or m.address for m in blueprint.machines}
            )
        if owned:
            options["machines"] = {m.name: reach(m) for m in blueprint.machines}
        lab = cls(
            blueprint.name,
            isolated=blueprint.isolated,
            ipv6_link_local=blueprint.ipv6_link_local,
            **options,
        )
        lab._blueprint = blueprint
        if owned and lab.machines is not None:
            lab.machines.owned = True
        return lab

    @classmethod
    @validate.renamed_keywords(hosts="machines")
    def from_dict(cls, data: dict[str, Any], **options: Any) -> Self:
        """A lab from a topology dict (checked completely first), built when it opens."""
        return cls.from_topology(topology.from_dict(data), **options)

    @classmethod
    @validate.renamed_keywords(hosts="machines")
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> Self:
        """A lab from a TOML (or YAML) topology file, built when it opens."""
        return cls.from_topology(topology.load(Path(path)), **options)

    # -- views ----------------------------------------------------------------------
    @property
    def namespaces(self) -> list[Namespace]:
        """The lab's namespaces, in creation order (not its host-side namespace)."""
        return list(self.held.namespaces.values())

    def __getitem__(self, name: str) -> Namespace:
        """``lab["red"]``: a namespace of this lab by name."""
        try:
            return self.held.namespaces[name]
        except KeyError:
            raise KeyError(f"lab {self.name!r} has no namespace {name!r}") from None

    def snapshot(self) -> Snapshot:
        """The lab's live state, read with ``ip -j``: its host side, then its namespaces.

        The host side of a lab that is not isolated is the root namespace; it is read
        only when the lab put a bridge there, and only the links carrying the lab's
        tag are kept, with their addresses and routes: the machine's own interfaces
        and other labs' are none of this lab's business.
        """
        return views.snapshot(self)

    def reachability(
        self, sources: Any = None, targets: Any = None, *, timeout: float = 1.0, count: int = 1
    ) -> Reachability:
        """Probe every global address of every namespace from every other one (or only
        ``sources``, to ``targets``: namespaces or addresses), IPv4 and IPv6.

        Returns a :class:`~netns_kit.Reachability`: ``ok``, ``failures()``, a text
        matrix, ``to_dict()``, a heat map in Jupyter.  A neighbour-limit raise the check
        needs is recorded in the lab's record and put back before it returns.
        """
        return views.reachability(self, sources, targets, timeout=timeout, count=count)

    def topology(self) -> Topology:
        """What this lab built, as an inert description (for pictures and files)."""
        return views.topology(self)

    def to_mermaid(self) -> str:
        return render.to_mermaid(self.topology())

    def to_dot(self) -> str:
        return render.to_dot(self.topology())

    def to_svg(self) -> str:
        """A self-contained SVG picture of what the lab built (no graphviz needed)."""
        return render.to_svg(self.topology())

    def _repr_html_(self) -> str:
        """Jupyter: the picture, and a table of the live state while the lab is open."""
        if self.state == "open":
            return self.to_svg() + "\n" + render.to_html_table(self.snapshot())
        return self.to_svg() + f"\n<p>lab {html.escape(self.name)} is {self.state}</p>"

    # -- measuring --------------------------------------------------------------------
    def throughput(
        self,
        src: Namespace | str | None,
        dst_address: str,
        seconds: int = 2,
        *,
        sample: float | None = None,
        **options: Any,
    ) -> measure.Throughput:
        """iperf3 from ``src`` to ``dst_address`` (found in the lab): Mbit/s, retransmits,
        seconds.  ``options``: ``protocol`` (``tcp``/``udp``), ``reverse``, ``port``,
        ``bitrate``, ``congestion`` (see :func:`netns_kit.lab.measure.throughput`).
        ``sample=0.1`` also samples the sender's TCP socket and qdiscs every 0.1 s
        (:mod:`netns_kit.capture.telemetry`); the result then has ``plot()``."""
        if sample is not None:
            from netns_kit.capture.telemetry import sampled

            return sampled(self, src, dst_address, seconds=seconds, sample=sample, **options)
        return measure.in_lab(self, src, dst_address, seconds=seconds, **options)

    # -- seeing packets --------------------------------------------------------------
    def capture(
        self,
        where: object,
        *,
        filter: str | None = None,
        file: str | os.PathLike[str] | None = None,
        snaplen: int | None = None,
        count: int | None = None,
    ) -> Capture:
        """tcpdump on ``where`` (a link end, a link, a bridge, a namespace, ``"ns:if"``)
        until ``.stop()``; returns once it listens.  See :mod:`netns_kit.capture`."""
        from netns_kit.capture.capture import start

        return start(self, where, filter=filter, file=file, snaplen=snaplen, count=count)

    # -- over time ------------------------------------------------------------------
    def watch(self, pairs: Any, *, interval: Any = 0.01, timeout: Any = 0.1) -> Watch:
        """Probe ``pairs`` (source, target) every ``interval`` seconds while a ``with``
        block runs, keeping every probe (:mod:`netns_kit.timeline.watch`)."""
        from netns_kit.timeline.watch import watch

        return watch(self, pairs, interval=interval, timeout=timeout)

    def timeline(self) -> Timeline:
        """Events at set times while pairs are probed: ``t.at("2s", pair.down)``, then
        ``t.run(watch=[...])`` (:mod:`netns_kit.timeline.events`)."""
        from netns_kit.timeline.events import Timeline

        return Timeline(self)
