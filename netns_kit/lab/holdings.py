"""What a lab holds: one registry instead of five overlapping ones.

Every builder call that succeeds (or is queued in a batch) adds one :class:`Held`:
the object it returned and the inert description of it (a :mod:`~netns_kit.spec`
value).  Everything else is derived from it or kept beside it: the lab's namespaces
and bridges, the resources in creation order, the topology pictures are drawn from,
the interface names taken in each namespace, and the settings made once per
namespace.  It also answers the questions builders ask about names: which namespace
or bridge an argument means, and what a link's ends are called.

This is the one place a link's ends are resolved (:meth:`Holdings.ends`): a
namespace, or a bridge wherever it lives.  A bridge is known by the place it lives
in and its name, since two namespaces may each hold a ``br0``; a builder takes the
:class:`~netns_kit.objects.link.Bridge` object, its name when no other bridge of the lab has
it, or ``NAMESPACE/NAME``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from netns_kit import validate
from netns_kit.engine.step import Step
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor
from netns_kit.objects import shaping
from netns_kit.objects.hostsfiles import Address, HostsFiles, entries
from netns_kit.objects.link import (
    MAX_BRIDGE_PORTS,
    MAX_BROADCAST_LINKS,
    Bridge,
    VethPair,
    too_many_ports,
    too_wide,
)
from netns_kit.objects.namespace import Namespace
from netns_kit.objects.nat import Sysctl
from netns_kit.spec import (
    BridgeSpec,
    Endpoint,
    Ends,
    LinkNamer,
    LinkSpec,
    MasqueradeSpec,
    PortForwardSpec,
    RouteSpec,
    SysctlSpec,
    Topology,
)

Spec = (
    str | BridgeSpec | LinkSpec | RouteSpec | SysctlSpec | MasqueradeSpec | PortForwardSpec | None
)  # None: something a topology shows as a flag (the hosts files)

#: A bridge in a lab's own namespace is a plain switch: bridged frames do not pass
#: that namespace's iptables (br_netfilter sends them there by default, so a
#: masquerade or a FORWARD policy would act on traffic between two ports).
SWITCH_SETTINGS = tuple(
    (f"net.bridge.bridge-nf-call-{table}", 0) for table in ("iptables", "ip6tables", "arptables")
)
#: Duplicate address detection off for the links a namespace makes from now on: a
#: lab's addresses are checked up front, and one in DAD is unusable for seconds.
NO_DAD = (("net.ipv6.conf.default.accept_dad", 0),)
#: The first interface index a lab gives a veth end itself (see :meth:`Holdings.ends`).
#: The kernel numbers a namespace's interfaces from 1 up and never jumps to an index
#: given explicitly, so indexes from here on never meet the ones it picks.
INDEX_BASE = 1_000_000

_BridgeKey = tuple[str | None, str]  # (place: None for the host side, name)


@attrs.frozen
class Held:
    """One thing a lab made: the object a builder returned, and its description."""

    obj: Any
    spec: Spec
    flipped: bool = False  # a link whose veth starts at the spec's b end


@attrs.frozen
class LinkEnd:
    """One end of a link as a builder resolved it.

    ``endpoint`` says it in a topology's terms (``None`` for the host side); ``where``
    is the namespace the kernel puts the interface in (the host side's own, which is
    the root namespace, ``None``, when the lab is not isolated).
    """

    endpoint: Endpoint
    where: str | None
    bridge: Bridge | None = None

    @property
    def key(self) -> str:
        """How the lab's own record of the link names this end (never ambiguous)."""
        spec = self.endpoint.bridge
        return self.endpoint.name if spec is None else spec.key


@attrs.frozen
class LinkEnds:
    """A link's two ends as a builder resolved them, in the order given."""

    a: LinkEnd
    b: LinkEnd
    names: tuple[str, str]
    addresses: tuple[str | None, str | None]
    indexes: tuple[int | None, int | None] = (None, None)

    @property
    def flipped(self) -> bool:
        """Whether the veth starts at ``b``: the seed puts a namespace end first, so a
        link given as (bridge, namespace) is made from the namespace.  Shaping words
        (``a->b``) turn round with it."""
        return self.a.bridge is not None and self.b.bridge is None

    def _order(self) -> tuple[int, int]:
        return (1, 0) if self.flipped else (0, 1)

    def veth(self, executor: Executor | None, mtu: int | None = None) -> VethPair:
        first, second = self._order()
        ends = (self.a, self.b)
        return VethPair(
            self.names[first],
            self.names[second],
            ends[first].where,
            ends[second].where,
            executor=executor,
            index=self.indexes[first],
            peer_index=self.indexes[second],
            mtu=mtu,
        )

    def ports(self) -> tuple[Bridge | None, Bridge | None]:
        """The bridges the veth's ends are ports of, in the veth's order."""
        first, second = self._order()
        ends = (self.a, self.b)
        return ends[first].bridge, ends[second].bridge

    def veth_addresses(self) -> tuple[str | None, str | None]:
        first, second = self._order()
        return self.addresses[first], self.addresses[second]


class Holdings:
    """The lab's objects in the order it made them, with indexes by name."""

    def __init__(self, lab: str, host_side: str | None) -> None:
        self.lab = lab
        self.host_side = host_side
        self.items: list[Held] = []
        self.namespaces: dict[str, Namespace] = {}
        self.bridges: dict[_BridgeKey, Bridge] = {}
        self._bridge_names: dict[str, list[_BridgeKey]] = {}
        self.names = LinkNamer()
        #: Spanning-tree bridges that got ports since the lab last waited for them.
        self.unsettled: dict[_BridgeKey, Bridge] = {}
        #: How many ports the lab gave each bridge (the kernel takes 1,023 at most).
        self.ports: dict[_BridgeKey, int] = {}
        #: Broadcast domains: bridges joined by links (a union-find), and how many
        #: links each domain's root bridge holds.
        self._domain: dict[_BridgeKey, _BridgeKey] = {}
        self._flooded: dict[_BridgeKey, int] = {}
        self._done: set[tuple[str, str | None]] = set()
        self._indexes = 0
        self._written: dict[tuple[str, str], str] = {}  # settings made in lab namespaces
        self._pending: dict[int, tuple[tuple[str, str], str]] = {}  # ... once they ran
        #: Namespaces whose /etc/netns directory this lab made (Lab.hosts).
        self.hosts_made: set[str] = set()

    def add(self, obj: Any, spec: Spec, *, flipped: bool = False) -> None:
        self.items.append(Held(obj, spec, flipped))
        if isinstance(obj, Namespace):
            self.namespaces[obj.name] = obj
        elif isinstance(obj, Bridge):
            key = (self.place(obj.namespace), obj.name)
            self.bridges[key] = obj
            self._bridge_names.setdefault(obj.name, []).append(key)
            self.names.take(key[0], obj.name)
        elif isinstance(obj, HostsFiles):
            self.hosts_made.update(obj.namespaces)

    def check_ports(self, ends: LinkEnds) -> None:
        """ValidationError, before anything runs, when the link would give a bridge
        more ports than the kernel takes (:data:`MAX_BRIDGE_PORTS`), or a broadcast
        domain more links than a broadcast survives (:data:`MAX_BROADCAST_LINKS`)."""
        wanted: dict[_BridgeKey, int] = {}
        for end in (ends.a, ends.b):
            if end.bridge is not None:
                key = (end.endpoint.namespace, end.bridge.name)
                wanted[key] = wanted.get(key, self.ports.get(key, 0)) + 1
        for (place, name), count in wanted.items():
            if count > MAX_BRIDGE_PORTS:
                bridge = name if place is None else f"{place}/{name}"
                raise ValidationError("bridge", bridge, too_many_ports(count))
        count = self.flooded_with(ends)
        if count > MAX_BROADCAST_LINKS:
            place, name = sorted(wanted, key=str)[0]
            bridge = name if place is None else f"{place}/{name}"
            raise ValidationError("bridge", bridge, too_wide(count))

    def flooded_with(self, ends: LinkEnds) -> int:
        """How many links the broadcast domain of this link's bridges holds once it is
        made (0: the link touches no bridge)."""
        keys = [(e.endpoint.namespace, e.bridge.name) for e in (ends.a, ends.b) if e.bridge]
        roots = {self._root(key) for key in keys}
        return sum(self._flooded.get(root, 0) for root in roots) + 1 if roots else 0

    def _root(self, key: _BridgeKey) -> _BridgeKey:
        while self._domain.get(key, key) != key:
            key = self._domain[key]
        return key

    def _flood(self, keys: Sequence[_BridgeKey]) -> None:
        """One more link in the domain of ``keys`` (the bridges its ends are ports of),
        which it joins into one."""
        roots = list(dict.fromkeys(self._root(key) for key in keys))
        if not roots:
            return
        total = sum(self._flooded.pop(root, 0) for root in roots) + 1
        for root in roots[1:]:
            self._domain[root] = roots[0]
        self._domain.setdefault(roots[0], roots[0])
        self._flooded[roots[0]] = total

    def add_link(self, pair: Any, ends: LinkEnds, mtu: int | None) -> None:
        """A link made: its names are taken, and its spanning-tree bridges must settle."""
        joined: list[_BridgeKey] = []
        for end, name in zip((ends.a, ends.b), ends.names, strict=True):
            if end.bridge is not None:
                key = (end.endpoint.namespace, end.bridge.name)
                self.ports[key] = self.ports.get(key, 0) + 1
                joined.append(key)
            self.names.take(end.endpoint.namespace, name)
            if end.bridge is not None and end.bridge.stp:
                self.unsettled[(end.endpoint.namespace, end.bridge.name)] = end.bridge
        self._flood(joined)
        spec = LinkSpec(ends.a.key, ends.b.key, ends.names, ends.addresses, mtu)
        self.add(pair, spec, flipped=ends.flipped)

    @property
    def resources(self) -> list[Any]:
        return [held.obj for held in self.items]

    def specs(self, kind: type[Any]) -> tuple[Any, ...]:
        return tuple(held.spec for held in self.items if isinstance(held.spec, kind))

    def host_bridges(self) -> bool:
        """Whether any bridge lives on the host side."""
        return any(place is None for place, _ in self.bridges)

    def links(self) -> tuple[LinkSpec, ...]:
        """The links, each with the shaping its pair has now (it changes while the lab
        runs), its direction in the link's own terms (``a`` is what the builder was
        given first; the pair may start at the other end: :meth:`LinkEnds.veth`)."""
        found = []
        for held in self.items:
            if not isinstance(held.spec, LinkSpec):
                continue
            spec, pair = held.spec, held.obj
            if isinstance(pair, VethPair):
                way = shaping.flipped(pair.direction) if held.flipped else pair.direction
                spec = attrs.evolve(spec, shape=pair.shaping, direction=way)
            found.append(spec)
        return tuple(found)

    def addressed(self) -> Iterator[tuple[str | None, str, str]]:
        """Every address the lab gave, in the order it gave them: (the namespace the
        kernel holds it in, the interface, the CIDR)."""
        for held in self.items:
            spec = held.spec
            if isinstance(spec, BridgeSpec) and spec.address is not None:
                yield (
                    (self.host_side if spec.namespace is None else spec.namespace),
                    spec.name,
                    (spec.address),
                )
            elif isinstance(spec, LinkSpec):
                assert spec.names is not None
                for key, name, cidr in zip(
                    (spec.a, spec.b), spec.names, spec.addresses, strict=True
                ):
                    # a bridge port's key is NAMESPACE/BRIDGE ("/BRIDGE": the host side)
                    where = key if "/" not in key else (key.split("/")[0] or self.host_side)
                    if cidr is not None:
                        yield where, name, cidr

    def owner(self, address: validate.IPAddress) -> str | None:
        """The namespace the lab gave ``address`` to: one of its namespaces, or its
        host side (``None`` when that is the root).  KeyError if it gave it to none."""
        for where, _, cidr in self.addressed():
            if ipaddress.ip_interface(cidr).ip == address:
                return where
        raise KeyError(str(address))

    def topology(self, isolated: bool, ipv6_link_local: bool) -> Topology:
        """What the lab built, as an inert description (for pictures and files)."""
        bridges = self.specs(BridgeSpec)
        ends = Ends(tuple(self.namespaces), bridges)

        def ref(key: str) -> str:
            return ends.ref(ends.by_key[key]) if key in ends.by_key else key

        links = tuple(attrs.evolve(link, a=ref(link.a), b=ref(link.b)) for link in self.links())
        return Topology(
            self.lab,
            isolated,
            self.specs(str),
            bridges,
            links,
            self.specs(RouteSpec),
            self.specs(SysctlSpec),
            self.specs(MasqueradeSpec),
            ipv6_link_local=ipv6_link_local,
            port_forwards=self.specs(PortForwardSpec),
            hosts=any(isinstance(held.obj, HostsFiles) for held in self.items),
        )

    def hosts_files(self) -> HostsFiles:
        """The hosts files for every namespace of the lab (its host namespace too),
        from the addresses it gave, in the order it gave them."""
        found = [Address(w, name, cidr) for w, name, cidr in self.addressed() if w is not None]
        namespaces = tuple(self.namespaces) + ((self.host_side,) if self.host_side else ())
        return HostsFiles(self.lab, namespaces, tuple(entries(found)))

    # -- names ------------------------------------------------------------------------
    def side(self, namespace: object) -> str | None:
        """``None`` means the lab's host side; anything else must be the lab's own."""
        if namespace is None:
            return self.host_side
        name = validate.optional_namespace(namespace)
        if name not in self.namespaces and name != self.host_side:
            raise ValidationError("namespace", namespace, f"is not a namespace of lab {self.lab!r}")
        return name

    def place(self, where: str | None) -> str | None:
        """A kernel namespace in a topology's terms: ``None`` for the host side."""
        return None if where == self.host_side else where

    def endpoint(self, value: object, field: str) -> LinkEnd:
        """A builder argument as a link end; it must be something this lab made."""
        if isinstance(value, Bridge):
            found = self.bridges.get((self.place(value.namespace), value.name))
            if found is None:
                raise ValidationError(field, value, f"is not a bridge of lab {self.lab!r}")
            return self._bridge_end(found)
        name = getattr(value, "name", value)
        if isinstance(name, str) and "/" not in name and name in self.namespaces:
            return LinkEnd(Endpoint(name, name), name)
        if isinstance(name, str) and not isinstance(value, Namespace):
            keys = self._bridge_keys(name)
            if len(keys) == 1:
                return self._bridge_end(self.bridges[keys[0]])
            if len(keys) > 1:
                where = ", ".join(repr(place or "the host side") for place, _ in keys)
                raise ValidationError(
                    field,
                    value,
                    f"names bridges in {where}: pass the Bridge object, or 'NAMESPACE/NAME'",
                )
        raise ValidationError(field, value, f"is not a namespace or bridge of lab {self.lab!r}")

    def _bridge_keys(self, name: str) -> list[_BridgeKey]:
        if "/" in name:
            place, _, bridge = name.partition("/")
            key = (place or None, bridge)
            return [key] if key in self.bridges else []
        return self._bridge_names.get(name, [])

    def _bridge_end(self, bridge: Bridge) -> LinkEnd:
        place = self.place(bridge.namespace)
        spec = BridgeSpec(bridge.name, namespace=place, stp=bridge.stp)
        return LinkEnd(Endpoint(bridge.name, place, spec), bridge.namespace, bridge)

    def ends(
        self,
        a: object,
        b: object,
        addresses: Sequence[str | None] | None,
        names: Sequence[str] | None,
    ) -> LinkEnds:
        """Check a link's arguments; pick its names and, where it matters, an index.

        A veth end that is a bridge port while its peer lives in another namespace
        gets an interface index of its own (from :data:`INDEX_BASE`, on the end in one
        of the lab's namespaces).  With equal indexes at both ends (two fresh switch
        namespaces joined by a veth both number it 3), the kernel delays the port's
        carrier event, and the port stays ``disabled`` for about a second: measured
        1.0 s to the first ping, against 0.07 ms with distinct indexes.
        """
        end_a, end_b = self.endpoint(a, "a"), self.endpoint(b, "b")
        addrs = list(addresses) if addresses is not None else [None, None]
        if len(addrs) != 2:
            raise ValidationError("addresses", addresses, "must give one address (or None) per end")
        if end_a.key == end_b.key:
            what = "bridge" if end_a.bridge is not None else "namespace"
            raise ValidationError("b", b, f"is the same {what} as a")
        one_bridge = (end_a.bridge is None) != (end_b.bridge is None)
        if one_bridge and end_a.where == end_b.where:
            raise ValidationError(
                "b", b, "joins a namespace to a bridge inside it: give the bridge an address"
            )
        cidrs = [
            None if x is None else str(validate.interface(x, f"addresses[{i}]"))
            for i, x in enumerate(addrs)
        ]
        picked = self.names.pick(end_a.endpoint, end_b.endpoint, names)
        indexes: tuple[int | None, int | None] = (None, None)
        if end_a.where != end_b.where and (end_a.bridge or end_b.bridge):
            self._indexes += 1
            index = INDEX_BASE + self._indexes
            indexes = (index, None) if end_a.where is not None else (None, index)
        return LinkEnds(end_a, end_b, picked, (cidrs[0], cidrs[1]), indexes)

    def take_unsettled(self) -> list[Bridge]:
        """The spanning-tree bridges to wait for now; forgotten once handed out."""
        bridges = list(self.unsettled.values())
        self.unsettled.clear()
        return bridges

    # -- settings made once -----------------------------------------------------------
    def prepare(
        self, what: str, namespaces: Sequence[str | None], machine: str | None = None
    ) -> list[Step]:
        """Once per lab namespace (never the root): ``switch`` settings for a namespace
        that holds a bridge, ``ipv6`` ones (no DAD) for one whose links get IPv6.

        Marked done at once: a later builder call needs no second step, and a
        builder that fails leaves the namespace with the setting or without the
        namespace altogether.  ``machine`` is the machine of a lab spread over several
        (each has a host side of the same name); the caller places the steps there.
        """
        settings = SWITCH_SETTINGS if what == "switch" else NO_DAD
        steps = []
        for ns in dict.fromkeys(namespaces):
            key = (what, ns if machine is None else f"{machine}:{ns}")  # ':' is in no name
            if ns is not None and key not in self._done:
                self._done.add(key)
                steps.append(Namespace(ns).setting_step(*settings, missing_ok=what == "switch"))
        return steps

    def setting_steps(self, setting: Sysctl) -> list[Step]:
        """A kernel setting's write; in the root namespace, at its first change, with
        the restore of the value it had (read now)."""
        self._pending.clear()  # what an earlier builder left, if it failed
        if setting.namespace is not None:
            # a lab's own namespace: no restore; the same value twice is written once
            # (a masquerade and a port forward both want forwarding on)
            where = (setting.namespace, setting.key)
            setting.changed = True
            if self._written.get(where) == setting.value:
                return []
            steps = setting.steps(None, restore=False)
            self._pending.update({id(step): (where, setting.value) for step in steps})
            return steps
        if ("saved", setting.key) in self._done:
            setting.changed = True
            return setting.steps(None, restore=False)
        current = setting.read()
        setting.previous = current or None
        steps = setting.steps(current)
        setting.changed = bool(steps)
        return steps

    def saved(self, steps: Sequence[Step]) -> None:
        """Mark settings made once their writes ran (or queued): a root setting is
        saved, a lab namespace's need not be written again."""
        for step in steps:
            if step.undo and step.entry is not None and step.entry.kind == "sysctl":
                self._done.add(("saved", step.entry.name))
            written = self._pending.pop(id(step), None)
            if written is not None:
                self._written[written[0]] = written[1]
