"""The lab's builders: what a lab is made of, one call each.

Namespaces, bridges and links first; then routes, kernel settings, NAT out
(masquerade), ports in (port forwards) and names (the hosts files), which act once the
links are there; and whole topologies (:meth:`Builders.apply`).  A masquerade or a
port forward makes its namespace a router: the rule and the forwarding it needs are
one builder, so a rule that fails takes its forwarding back with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from netns_kit import topology, validate
from netns_kit.engine.step import Step, on_machine
from netns_kit.errors import ValidationError
from netns_kit.lab.core import LabCore
from netns_kit.lab.holdings import LinkEnds
from netns_kit.objects import shaping
from netns_kit.objects.hostsfiles import HOSTS_DIR, HostsFiles
from netns_kit.objects.link import GRO_FROM, Bridge, VethPair
from netns_kit.objects.namespace import Namespace
from netns_kit.objects.nat import Masquerade, PortForward, Sysctl, overlap
from netns_kit.objects.qdisc_support import require
from netns_kit.objects.route import Route
from netns_kit.objects.vxlan import VxlanPair
from netns_kit.spec import (
    BridgeSpec,
    MasqueradeSpec,
    PortForwardSpec,
    RouteSpec,
    SysctlSpec,
    Topology,
)


class Builders(LabCore):
    """The builders of :class:`~netns_kit.Lab` (see the module)."""

    # -- namespaces, bridges, links ---------------------------------------------------
    @validate.renamed_keywords(host="machine")
    def namespace(self, name: str, *, machine: str | None = None) -> Namespace:
        """Create namespace ``name`` (exactly that name) with ``lo`` up, on ``machine``
        of a lab spread over machines (the first by default)."""
        home = self.placement.home(machine)
        ex = self.placement.executor_of(home)
        ns = Namespace(name, executor=ex, on_start=self.processes.append)
        if ns.name in self.held.namespaces or ns.name == self.host_side:
            raise ValidationError("name", name, f"is already a namespace of lab {self.name!r}")
        steps = ns.create_steps(self.tag)
        if self.ipv6_link_local:  # every link gets an IPv6 link-local address
            steps += self.held.prepare("ipv6", [ns.name])
        self._run(steps, home)
        self.held.add(ns, ns.name)
        if self.machines is not None and home is not None:
            self.machines.homes[ns.name] = home
        return ns

    @validate.renamed_keywords(host="machine")
    def bridge(
        self,
        name: str,
        address: str | None = None,
        *,
        namespace: Namespace | str | None = None,
        stp: bool = False,
        snooping: bool = False,
        machine: str | None = None,
    ) -> Bridge:
        """Create a bridge (a switch), up: on the host side (of ``machine``), or in
        ``namespace``.

        ``address`` is that namespace's own address on it.  ``stp=True`` runs spanning
        tree with the shortest timers the kernel takes, for rings: a build then waits
        until its ports settle (4-5 s).  ``snooping=True`` turns IGMP/MLD snooping on
        (off by default: a quiet bridge, see :class:`~netns_kit.objects.link.Bridge`).
        The bridge gets no IPv6 link-local address unless it has an IPv6 address or
        the lab has ``ipv6_link_local``.
        """
        where = self.held.side(namespace)
        home = self.placement.home_at(where, machine)
        if not isinstance(stp, bool):
            raise ValidationError("stp", stp, "must be True or False")
        if not isinstance(snooping, bool):
            raise ValidationError("snooping", snooping, "must be True or False")
        ex = self.placement.executor_of(home)
        bridge = Bridge(name, where, executor=ex, stp=stp, snooping=snooping)
        cidr = None if address is None else str(validate.interface(address, "address"))
        place = self.held.place(where)
        if self.held.names.is_taken(place, bridge.name):
            inside = place or "the host side"
            raise ValidationError("name", name, f"is already an interface in {inside}")
        steps = self.held.prepare("switch", [where], home)
        if cidr is not None and ":" in cidr:
            steps += self.held.prepare("ipv6", [where], home)
        link_local = self.ipv6_link_local or (cidr is not None and ":" in cidr)
        self._run(steps + bridge.steps(tag=self.tag, address=cidr, link_local=link_local), home)
        on = home if place is None and self.machines is not None else None
        self.held.add(bridge, BridgeSpec(bridge.name, cidr, place, stp, on, snooping))
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
        self.held.check_ports(ends)
        homes = (self.placement.end_home(ends.a), self.placement.end_home(ends.b))
        # Without an IPv6 address a link needs no IPv6 link-local address either, and
        # each of those starts DAD, MLD and router solicitations that a bridge floods
        # to every port: kernel work that grows with the square of the lab's size.
        link_local = self.ipv6_link_local or any(c and ":" in c for c in ends.addresses)
        if homes[0] != homes[1]:
            tunnel, steps = self.placement.tunnel(ends, homes, mtu, link_local, shape)
            self._run(steps)
            return self._linked(tunnel, ends, mtu)
        way = shaping.flipped(way) if ends.flipped else way  # in the pair's terms
        pair = ends.veth(self.placement.executor_of(homes[0]), mtu)
        if shape is not None:  # the kernel has the qdisc, or nothing runs
            require(self.placement.executor_of(homes[0]) or self.ex, shape.kind)
        where = [pair.namespace, pair.peer_namespace]
        steps = self.held.prepare("ipv6", where, homes[0]) if link_local else []
        steps += pair.steps(
            tag=self.tag,
            addresses=ends.veth_addresses(),
            mtu=mtu,
            ports=ends.ports(),
            link_local=link_local,
        )
        if self.held.flooded_with(ends) > GRO_FROM:  # a big broadcast domain: NAPI
            steps += [pair.end.gro_step(), pair.peer_end.gro_step()]
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

    # -- what acts once the links are there --------------------------------------
    def route(
        self,
        destination: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        namespace: Namespace | str | None = None,
    ) -> Route:
        """Add a route; ``namespace=None`` means the lab's host side."""
        where = self.held.side(namespace)
        home = self.placement.home_at(where)
        route = Route(destination, via, dev, where, executor=self.placement.executor_of(home))
        self._run([route.add_step()], home)
        spec_ns = None if namespace is None else where
        self.held.add(route, RouteSpec(route.destination, route.via, route.dev, spec_ns))
        return route

    def sysctl(
        self, key: str, value: str | int, namespace: Namespace | str | None = None
    ) -> Sysctl:
        """Set a kernel setting, by default on the host side.

        In the root namespace the old value is saved at the first change and restored
        once at teardown.  In the lab's own namespaces nothing needs restoring: they
        are deleted, and a setting inside one may be queued before it even exists.
        """
        where = self.held.side(namespace)
        home = self.placement.home_at(where)
        setting = Sysctl(key, value, where, executor=self.placement.executor_of(home))
        steps = self.held.setting_steps(setting)
        self._run(steps, home)
        self.held.saved(steps)
        spec_ns = None if namespace is None else where
        self.held.add(setting, SysctlSpec(setting.key, setting.value, spec_ns))
        return setting

    def masquerade(
        self,
        source: str,
        out_interface: str | None = None,
        *,
        namespace: Namespace | str | None = None,
    ) -> Masquerade:
        """NAT by masquerade for ``source``, with forwarding on, in ``namespace`` (the
        host side by default): the namespace becomes a NAT router."""
        where = self.held.side(namespace)
        ex = self.placement.executor_of(self.placement.home_at(where))
        rule = Masquerade(source, out_interface, where, self.tag, executor=ex)
        spec = MasqueradeSpec(rule.source, rule.out_interface, self.held.place(where))
        if spec in self.held.specs(MasqueradeSpec):
            # -C would skip the second -A, but its undo would delete the rule twice
            raise ValidationError("source", source, f"is already masqueraded by lab {self.name!r}")
        self._rule(rule, spec)
        return rule

    def port_forward(
        self,
        port: int | str,
        to: str,
        *,
        namespace: Namespace | str | None = None,
        in_interface: str | None = None,
        protocol: str = "tcp",
    ) -> PortForward:
        """Forward ``port`` (or a range ``"8000-8010"``) of ``namespace`` (the host side
        by default) to ``to`` (``ADDR`` or ``ADDR:PORT``), by DNAT, with forwarding on.
        See :class:`~netns_kit.objects.nat.PortForward` for ranges and UDP."""
        where = self.held.side(namespace)
        ex = self.placement.executor_of(self.placement.home_at(where))
        rule = PortForward(port, to, where, in_interface, protocol, self.tag, executor=ex)
        spec = rule.spec(self.held.place(where))
        for other in self.held.specs(PortForwardSpec):
            if overlap(spec, other):
                raise ValidationError(
                    "port", port, f"is already forwarded ({other.protocol} {other.port})"
                )
        self._rule(rule, spec)
        return rule

    def _rule(self, rule: Masquerade | PortForward, spec: Any) -> None:
        # forwarding and the rule are one builder: if the rule fails, forwarding is undone
        forwarding = self.held.setting_steps(rule.forwarding())
        self._run([*forwarding, rule.rule_step()], self.placement.home_at(rule.namespace))
        self.held.saved(forwarding)
        self.held.add(rule, spec)

    def hosts(self) -> HostsFiles:
        """Name every namespace: write ``/etc/netns/<ns>/hosts`` for each, so that
        ``red.run(["ping", "-c1", "blue"])`` works (see :mod:`netns_kit.objects.hostsfiles`).

        The files hold the addresses given so far; call it again after adding more.
        They are removed at teardown; the machine's /etc/hosts is never touched.
        """
        self._run([])  # opens a new lab: the listing below needs its runner
        files = self.held.hosts_files()
        if self.machines is not None:
            return self._hosts_on_machines(files)
        listing = self.journal.runner.run(files.list_command(), check=False)
        present = files.present(listing.returncode, listing.stdout)
        # /etc/netns made by another lab that is still up: ours to remove too, once
        # empty, whichever of us goes last (asked at this lab's first hosts() only)
        shared = (
            present is not None
            and not self.held.hosts_made
            and self.registry.owner_of("file", HOSTS_DIR) not in (None, self.name)
        )
        self._run(files.steps(present, self.held.hosts_made, shared=shared))
        self.held.add(files, None)
        return files

    def _hosts_on_machines(self, files: HostsFiles) -> HostsFiles:
        """Each machine's namespaces (its host side too) get the same text: names
        of namespaces on the other machines resolve as well."""
        machines = self.machines
        assert machines is not None
        side = (self.host_side,) if self.host_side else ()
        steps: list[Step] = []
        mine: dict[str, HostsFiles] = {}
        for machine in machines.names:
            here = tuple(n for n in files.namespaces if machines.homes.get(n) == machine) + side
            mine[machine] = HostsFiles(files.lab, here, files.lines)
            listing = self.journal.runner.executor_for(machine).execute(
                mine[machine].list_command()
            )
            present = mine[machine].present(listing.returncode, listing.stdout)
            made = machines.files_made.setdefault(machine, set())
            steps += on_machine(mine[machine].steps(present, made), machine)
        self._run(steps)
        for machine, written in mine.items():
            machines.files_made[machine].update(written.namespaces)
        self.held.add(files, None)
        return files

    # -- topologies ---------------------------------------------------------------
    def apply(self, blueprint: Topology) -> Self:
        """Check a whole topology, then build it in a handful of processes (a batch).

        Namespaces, bridges, links, routes, sysctls, NAT rules, then the hosts files,
        which name what came before.  Inside one batch, nothing runs until the end.
        """
        self._build(topology.check(blueprint).with_link_names())
        return self

    def _build(self, blueprint: Topology) -> None:
        """Call the builders ``blueprint`` (checked, link names filled in) stands for."""
        with self.batch():
            places: dict[str, Any] = {
                n: self._blueprint_namespace(blueprint, n) for n in blueprint.namespaces
            }
            for b in blueprint.bridges:
                places[b.name] = self.bridge(
                    b.name,
                    b.address,
                    namespace=b.namespace,
                    stp=b.stp,
                    snooping=b.snooping,
                    machine=b.machine,
                )
            for link in blueprint.links:
                self.link(
                    places[link.a],
                    places[link.b],
                    addresses=link.addresses,
                    names=link.names,
                    mtu=link.mtu,
                    direction=link.direction,
                    **shaping.settings(link.shape),
                )
            for r in blueprint.routes:
                self.route(r.destination, via=r.via, dev=r.dev, namespace=r.namespace)
            for s in blueprint.sysctls:
                self.sysctl(s.key, s.value, namespace=s.namespace)
            for m in blueprint.masquerades:
                self.masquerade(m.source, m.out_interface, namespace=m.namespace)
            for f in blueprint.port_forwards:
                self.port_forward(
                    f.port,
                    f.to,
                    namespace=f.namespace,
                    in_interface=f.in_interface,
                    protocol=f.protocol,
                )
            if blueprint.hosts:
                self.hosts()
            self._blueprint_rest(blueprint)

    def _blueprint_namespace(self, blueprint: Topology, name: str) -> Namespace:
        """A topology's namespace ``name`` (a subclass makes some of them routers)."""
        return self.namespace(name, machine=blueprint.machine_of(name))

    def _blueprint_rest(self, blueprint: Topology) -> None:
        """What a subclass builds of a topology after everything above (routing)."""
