"""Temporary labs: build, use, and leave nothing behind.

A :class:`Lab` has builders and views.  A builder checks its arguments, asks the
objects for their steps (:mod:`netns_kit.step`) and hands them to the lab's
:class:`~netns_kit.journal.Journal`, which writes them ahead to the lab's record,
has the runner run them and keeps their undo.  Closing replays the undo in reverse:
on a normal exit, on an exception, on Ctrl-C, on SIGTERM, at interpreter exit, and
after a crash through :func:`~netns_kit.recover`.

Teardown does no avoidable kernel work: what lives in a namespace that is being
deleted goes with it, so only the namespaces (and whatever lives in namespaces that
survive, such as the root side of a veth) are deleted explicitly.  A rootless lab
(:mod:`netns_kit.sandbox`) does none at all: its sandbox takes everything with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from netns_kit.daemons.builders import RoutingBuilders

from . import measure, shaping, topology, validate
from .blueprint import FromTopology, build
from .errors import LabBusyError, NetnsKitError, TeardownError, ValidationError
from .executor import Executor, Process, default_executor
from .holdings import Holdings, LinkEnds
from .journal import Journal, shielded
from .link import Bridge, VethPair
from .machines import spread
from .namespace import Namespace
from .ready import wait_settled
from .registry import Record, Registry, tag_for, undo_record
from .rules import RuleBuilders
from .runner import Progress, Runner
from .sandbox import SandboxExecutor, lab_sandbox
from .spec import BridgeSpec, Topology
from .step import Step
from .views import LabViews
from .vxlan import VxlanPair

log = logging.getLogger("netns_kit")


class Lab(RuleBuilders, RoutingBuilders, FromTopology, LabViews):
    """A temporary lab.  Use it as a context manager, or call :meth:`close`.

    ``isolated=True`` puts the lab's host side (bridges, host addresses, forwarding,
    NAT, routes to the outside) in a namespace of its own, ``<name>-host``, so the
    machine's network is never changed.  ``isolated=False`` uses the root namespace,
    as the iproute2 recipes do.  ``on_progress(done, total)`` hears of every process
    a build starts.

    ``rootless=True`` builds the lab in a sandbox of its own (:mod:`netns_kit.sandbox`),
    without root: its host side is the sandbox's network namespace, and nothing of it
    is visible from, or can reach, the machine's network.  ``None`` (the default)
    means rootless for a user who is not root, the machine's namespaces for root.

    ``hosts={"a": executor, "b": executor}`` spreads the lab over machines, each
    with its own host side, ``underlay={"a": "10.0.0.1", ...}`` their addresses for
    links between them (:mod:`netns_kit.machines`, :mod:`netns_kit.across`).
    """

    def __init__(
        self,
        name: str,
        *,
        executor: Executor | None = None,
        isolated: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        ipv6_link_local: bool = False,
        on_progress: Progress | None = None,
        rootless: bool | None = None,
        hosts: Mapping[str, Executor] | None = None,
        underlay: Mapping[str, str] | None = None,
    ) -> None:
        self.name = validate.lab_name(name)
        self.isolated = bool(isolated)
        self.ipv6_link_local = bool(ipv6_link_local)
        self.machines = spread(self.name, hosts, underlay, executor, rootless)
        self.sandbox = lab_sandbox(rootless, executor, self.name) if hosts is None else None
        self.executor = executor if executor or not self.sandbox else SandboxExecutor(self.sandbox)
        if self.machines is not None:
            self.executor = self.machines.executor
        self.tag = tag_for(self.name)
        self.host: str | None = f"{self.name}-host" if self.isolated else None
        self.registry = Registry(state_dir)
        self.processes: list[Process] = []
        self.held = Holdings(self.name, self.host)
        self.journal = Journal(self.registry, Runner(self.ex, on_progress=on_progress))
        self._on_progress = on_progress
        self._queue: list[Step] | None = None
        self._state = "new"
        self._blueprint: Topology | None = None

    def __repr__(self) -> str:
        return f"<Lab {self.name!r} {self._state}, {len(self.resources)} resources>"

    @property
    def ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def rootless(self) -> bool:
        return self.sandbox is not None

    @property
    def state(self) -> str:
        """new, open, closed or kept."""
        return self._state

    @property
    def resources(self) -> list[Any]:
        """What the lab made, in the order it made it."""
        return self.held.resources

    # -- life cycle ---------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)

    def open(self) -> Self:
        """Take the lab's name, write its record, and make the host namespace."""
        if self._state == "open":
            return self
        if self._state != "new":
            raise NetnsKitError(f"lab {self.name!r} is {self._state}; make a new Lab")
        self.journal.claim(self.name, self.close)
        # the executor is the one in force when the lab opens, for its whole life
        self.journal.runner = Runner(self.ex, on_progress=self._on_progress)
        try:
            if self.machines is not None:  # every machine reached before anything
                self.machines.check()
            holder = self.sandbox.start() if self.sandbox is not None else None
            leftover = self.registry.read(self.name)
            if leftover is not None and leftover.state == "kept":
                raise LabBusyError(
                    f"lab {self.name!r} is kept up (netns-kit up): take it down first "
                    f"with `netns-kit down {self.name}` or netns_kit.recover({self.name!r})"
                )
            if leftover is not None:  # its owner is dead: we hold the lock
                log.warning("lab %r: cleaning up what a dead process left", self.name)
                hosts = None if self.machines is None else self.machines.executor.executors
                undo_record(leftover, self.ex, hosts)
            record = Record(self.name, os.getpid(), self.isolated, self.host, sandbox=holder)
            record.hosts = self.machines.describe() if self.machines is not None else {}
            self.journal.begin(record)
            self._state = "open"
            if self.host is not None:
                self._run(self._everywhere(Namespace(self.host).create_steps(self.tag)))
            if self._blueprint is not None:
                self.apply(self._blueprint)
        except BaseException:
            self.close()
            raise
        return self

    def close(self, error: BaseException | None = None) -> None:
        """Tear everything down, in reverse.  Safe to call twice.

        Undo failures are collected: if ``error`` (the exception that ended a ``with``
        block) is given they are attached to it as notes, otherwise they are raised
        together as a :class:`TeardownError`.
        """
        if self._state != "open":
            if self.sandbox is not None and self._state != "kept":
                self.sandbox.stop()  # an open that failed
            self.journal.release()
            return
        problems: list[BaseException] = []
        with shielded():
            try:
                problems += self.stop_daemons()  # side by side: protocols, then zebra
                for process in reversed(self.processes):
                    try:
                        process.stop()
                    except Exception as stopping:
                        problems.append(stopping)
                self.processes.clear()
                if self.sandbox is None:
                    problems += self.journal.teardown()
                else:  # everything goes with the sandbox
                    self.sandbox.stop()
                    self.journal.forget_undo()
            finally:
                self._state = "closed"
                if not problems:
                    self.registry.remove(self.name)
                self.journal.release()
                if self.machines is not None and self.machines.owned:
                    self.machines.close()
        if problems:
            failure = TeardownError(self.name, problems)
            if error is None:
                raise failure
            error.add_note(str(failure))

    def keep(self) -> None:
        """Leave the lab up after this process ends (``netns-kit up``).

        The record stays, marked ``kept``; ``netns_kit.recover(name)`` or
        ``netns-kit down NAME`` removes it later.
        """
        if self._state != "open":
            raise NetnsKitError(f"lab {self.name!r} is not open")
        if self.sandbox is not None:
            self.sandbox.keep()
        self.journal.set_state("kept")
        self._state = "kept"
        self.journal.release()

    def teardown_commands(self) -> list[Any]:
        """What closing will run, in order: the undo log, reversed, minus the moot."""
        return self.journal.teardown_commands()

    # -- running steps ------------------------------------------------------------
    def _run(self, steps: list[Step], host: str | None = None) -> None:
        """Run steps now, or queue them inside ``batch()``.  Either way the undo log
        ends up holding exactly the steps that ran.  ``host``: the machine they run on."""
        steps = self._placed(steps, host)
        if self._state == "new":
            self.open()
        elif self._state != "open":
            raise NetnsKitError(f"lab {self.name!r} is {self._state}; make a new Lab")
        if self._queue is not None:
            self._queue.extend(steps)
        else:
            self.journal.apply(steps, rollback=True)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Self]:
        """Queue builder calls and run them at the end of the block, in few processes.

        Inside the block builders return their objects at once but nothing runs yet.
        At the end the planner orders the steps by phase (namespaces, links, each
        namespace's settings, IPv6 addresses, firewall rules) and runs them as a
        handful of ``ip -batch`` processes.  If the block raises, nothing runs.
        """
        if self._queue is not None:  # nested: the outer block flushes
            yield self
            return
        if self._state == "new":
            self.open()
        self._queue = []
        try:
            yield self
            queued = self._queue
        finally:
            self._queue = None
        self.journal.refuse_taken(queued)
        self.journal.apply(queued, rollback=False)
        self._settle()
        self._routing_built()  # routing asked for: started, and converged

    # -- builders -----------------------------------------------------------------
    def namespace(self, name: str, *, host: str | None = None) -> Namespace:
        """Create namespace ``name`` (exactly that name) with ``lo`` up, on machine
        ``host`` of a lab spread over machines (the first by default)."""
        home = self._home(host)
        ns = Namespace(name, executor=self._ex_of(home), on_start=self.processes.append)
        if ns.name in self.held.namespaces or ns.name == self.host:
            raise ValidationError("name", name, f"is already a namespace of lab {self.name!r}")
        steps = ns.create_steps(self.tag)
        if self.ipv6_link_local:  # every link gets an IPv6 link-local address
            steps += self.held.prepare("ipv6", [ns.name])
        self._run(steps, home)
        self.held.add(ns, ns.name)
        if self.machines is not None and home is not None:
            self.machines.homes[ns.name] = home
        return ns

    def bridge(
        self,
        name: str,
        address: str | None = None,
        *,
        namespace: Namespace | str | None = None,
        stp: bool = False,
        host: str | None = None,
    ) -> Bridge:
        """Create a bridge (a switch), up: on the host side (of machine ``host``), or
        in ``namespace``.

        ``address`` is that namespace's own address on it.  ``stp=True`` runs spanning
        tree with the shortest timers the kernel takes, for rings: a build then waits
        until its ports settle (4-5 s).
        """
        where = self.held.side(namespace)
        home = self._home_at(where, host)
        if not isinstance(stp, bool):
            raise ValidationError("stp", stp, "must be True or False")
        bridge = Bridge(name, where, executor=self._ex_of(home), stp=stp)
        cidr = None if address is None else str(validate.interface(address, "address"))
        place = self.held.place(where)
        if self.held.names.is_taken(place, bridge.name):
            inside = place or "the host side"
            raise ValidationError("name", name, f"is already an interface in {inside}")
        steps = self.held.prepare("switch", [where], home)
        if cidr is not None and ":" in cidr:
            steps += self.held.prepare("ipv6", [where], home)
        self._run(steps + bridge.steps(tag=self.tag, address=cidr), home)
        on = home if place is None and self.machines is not None else None
        self.held.add(bridge, BridgeSpec(bridge.name, cidr, place, stp, on))
        if self.machines is not None and home is not None:
            self.machines.bridge_homes[(place, bridge.name)] = home
        return bridge

    def link(
        self,
        a: Namespace | Bridge | str,
        b: Namespace | Bridge | str,
        *,
        addresses: Sequence[str | None] = (None, None),
        names: Sequence[str] | None = None,
        mtu: int | None = None,
        rate: str | float | None = None,
        delay: str | float | None = None,
        jitter: str | float | None = None,
        loss: str | float | None = None,
        direction: str = "both",
    ) -> VethPair | VxlanPair:
        """Join any two ends with a veth pair (both up): namespaces, or bridges
        wherever they live (a bridge end is a port of it; a bridge is given as its
        object, or by name when no other bridge of the lab has that name), shaped by
        ``rate``, ``delay``, ``jitter``, ``loss`` as :meth:`VethPair.shape`.  Ends on
        two machines are joined by a VXLAN tunnel instead (unshaped)."""
        shape, way = shaping.given(rate, delay, jitter, loss, direction)
        if mtu is not None:
            validate.positive_int(mtu, "mtu", minimum=68, maximum=65535)
        ends = self.held.ends(a, b, addresses, names)
        homes = (self._end_home(ends.a), self._end_home(ends.b))
        # Without an IPv6 address a link needs no IPv6 link-local address either, and
        # each of those starts DAD, MLD and router solicitations that a bridge floods
        # to every port: kernel work that grows with the square of the lab's size.
        link_local = self.ipv6_link_local or any(c and ":" in c for c in ends.addresses)
        if homes[0] != homes[1]:
            return self._linked(self._link_across(ends, homes, mtu, link_local, shape), ends, mtu)
        way = shaping.flipped(way) if ends.flipped else way  # in the pair's terms
        pair = ends.veth(self._ex_of(homes[0]), mtu)
        if shape is not None:  # the kernel has the qdisc, or nothing runs
            shaping.require(self._ex_of(homes[0]) or self.ex, shape.kind)
        where = [pair.namespace, pair.peer_namespace]
        steps = self.held.prepare("ipv6", where, homes[0]) if link_local else []
        steps += pair.steps(
            tag=self.tag,
            addresses=ends.veth_addresses(),
            mtu=mtu,
            ports=ends.ports(),
            link_local=link_local,
        )
        self._run(steps + pair.shaping_steps(shape, way), homes[0])
        pair.shaping, pair.direction = shape, way
        return self._linked(pair, ends, mtu)

    def _linked(
        self, pair: VethPair | VxlanPair, ends: LinkEnds, mtu: int | None
    ) -> VethPair | VxlanPair:
        self.held.add_link(pair, ends, mtu)
        if self._queue is None:
            self._settle()
        return pair

    def _settle(self) -> None:
        """Wait for the spanning-tree bridges that got ports (see :mod:`netns_kit.ready`)."""
        for executor, bridges in self._by_machine(self.held.take_unsettled()):
            wait_settled(self.journal.runner if executor is None else Runner(executor), bridges)

    def throughput(
        self, src: Namespace | str | None, dst_address: str, seconds: int = 2, **options: Any
    ) -> measure.Throughput:
        """iperf3 from ``src`` to ``dst_address`` (found in the lab): Mbit/s, retransmits,
        seconds.  ``options``: ``protocol`` (``tcp``/``udp``), ``reverse``, ``port``,
        ``bitrate``, ``congestion`` (see :func:`netns_kit.measure.throughput`)."""
        return measure.in_lab(self, src, dst_address, seconds=seconds, **options)

    # -- topologies ---------------------------------------------------------------
    def apply(self, blueprint: Topology) -> Self:
        """Check a whole topology, then build it in a handful of processes (a batch)."""
        build(self, topology.check(blueprint).with_link_names())
        return self
