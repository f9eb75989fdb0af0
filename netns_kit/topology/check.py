"""The whole-file check: every problem of a topology, each with its path in the file.

Items with a problem in their own fields are left out of the checks that need the
whole item (names, subnets), so that one typo is reported once, not again as a
consequence elsewhere.  Everything is looked up in indexes: checking costs about the
same per item however big the file, right or wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from netns_kit import validate
from netns_kit.objects.link import (
    MAX_BRIDGE_PORTS,
    MAX_BROADCAST_LINKS,
    too_many_ports,
    too_wide,
)
from netns_kit.spec import BridgeSpec, LinkSpec, Topology
from netns_kit.spec.keys import TOP
from netns_kit.topology import shaped
from netns_kit.topology.base import TOP_KEYS, at, given, kind, where_text
from netns_kit.topology.in_namespaces import RuleChecks
from netns_kit.topology.machines import MachineChecks
from netns_kit.topology.places import End
from netns_kit.topology.problems import TopologyError
from netns_kit.topology.segments import Segments

LAB_NAME_MAX = validate.LAB_NAME_MAX
#: The deepest nesting of tables and arrays accepted.  A topology needs 4 (the top
#: table, [[links]], a link, its addresses); deeper data is refused before anything
#: walks it, so that no check recurses or loops on it.
MAX_DEPTH = 32
#: The most values (tables, arrays, keys, scalars) walked in one topology.  YAML
#: aliases share one value among many places, so a small file can stand for billions
#: of values ("billion laughs"); each use counts, and the walk stops at this many.
MAX_VALUES = 1_000_000

#: Where a value is: (its container's trail, its key or index, whether it is an index);
#: None at the top.  Built only for tables and arrays, and only made a path on error.
_Trail = tuple["_Trail", object, bool] | None
#: What a file's values mostly are, known by their type alone: much cheaper than asking
#: isinstance(value, Mapping) of each of a million values.
_LEAVES = frozenset({str, int, float, bool, type(None)})
_BRANCHES = frozenset({dict, list, tuple})
#: The longest path shown for data nested too deep (its first levels are enough).
_TRAIL_MAX = 120


def _trail_path(trail: _Trail) -> str:
    """A trail as a path in the file's terms: ``links[0].addresses[1][0]``."""
    keys: list[tuple[object, bool]] = []
    while trail is not None:
        trail, key, index = trail
        keys.append((key, index))
    path = ""
    for key, index in reversed(keys):
        path = f"{path}[{key}]" if index else at(path, key)
        if len(path) > _TRAIL_MAX:
            return path[:_TRAIL_MAX] + "…"
    return path


class Checker(RuleChecks, MachineChecks):
    """Reads a topology dict section by section, collecting problems as it goes.

    Items with a problem in their own fields are left out of the checks that need
    the whole item (names, subnets), so that one typo is reported once, not again
    as a consequence elsewhere.  Names that were written but were invalid still
    count as defined, for the same reason.
    """

    # -- the whole -------------------------------------------------------------------
    def topology(self, data: object) -> Topology:
        if not isinstance(data, Mapping):
            self.add("", f"the top level must be a table of keys, not {kind(data)}")
            raise TopologyError(self.problems, self.source)
        self.bounded(data)
        self.keys("", data, TOP_KEYS, TOP.required)
        name = self.lab_name(data)
        self.isolated = self.flag(data, "isolated")
        link_local = self.flag(data, "ipv6_link_local")
        machines = self.read_machines(data)
        hosts = self.flag(data, "hosts_files") | self.flag(data, "hosts")
        written = data.get("namespaces")
        host_side = f"{name}-host" if self.isolated and name is not None else None
        namespaces = self.read_namespaces([] if written is None else written, host_side)
        bridges = [b for b in map(self.read_bridge, self.array(data, "bridges")) if b]
        links = [link for link in map(self.read_link, self.array(data, "links")) if link]
        self.check_ends(links)
        # the timeline and routing sections load with their first file, not with netns_kit
        from netns_kit.daemons import files as routing_files
        from netns_kit.timeline.files import check_sections

        self.run_plan = check_sections(data, namespaces, [(s.a, s.b) for _, s in links], self.add)
        routes = self.check_routes(self.array(data, "routes"))
        sysctls = self.check_sysctls(self.array(data, "sysctls"))
        masquerades = self.check_masquerades(self.array(data, "masquerade"))
        forwards = self.check_port_forwards(self.array(data, "port_forwards"), routes)
        routing, problems = routing_files.read(data, [spec for _, spec in links])
        for path, text in problems:
            self.add(path, text)
        if self.problems or name is None:
            raise TopologyError(self.problems, self.source)
        return Topology(
            name=name,
            isolated=self.isolated,
            ipv6_link_local=link_local,
            namespaces=tuple(namespaces),
            bridges=tuple(bridges),
            links=tuple(spec for _, spec in links),
            routes=tuple(routes),
            sysctls=tuple(sysctls),
            masquerades=tuple(masquerades),
            port_forwards=tuple(forwards),
            hosts=hosts,
            machines=machines,
            placement=tuple(self.placement.items()),
            routing=routing or None,
        )

    def flag(self, data: Mapping[str, object], key: str) -> bool:
        value = data.get(key, False)
        if key == "hosts" and isinstance(value, Mapping):  # the table of machines before 0.3
            self.add(key, "renamed to machines in 0.3 (a table of machines: [machines.NAME])")
            return False
        if not isinstance(value, bool):
            self.add(key, f"must be true or false, not {kind(value)}")
            return False
        return value

    def lab_name(self, data: Mapping[str, object]) -> str | None:
        if "name" not in data:
            return None
        name = self.checked("name", data["name"], validate.namespace_name)
        if name is not None and len(name.encode()) > LAB_NAME_MAX:
            self.add(
                "name",
                f"{name!r} is longer than {LAB_NAME_MAX} bytes "
                "(the lab's namespace names add a suffix to it)",
            )
            return None
        return name

    def bounded(self, data: Mapping[Any, object]) -> None:
        """Refuse data nested deeper than MAX_DEPTH or holding more than MAX_VALUES.

        This runs before any other check, and walks with a list of its own rather than
        by recursion, so that no later check meets data that could exhaust the stack
        (a list nested a thousand deep) or take forever (YAML aliases that fan out to
        billions of uses of a few values).  Only tables and arrays are walked: every
        other value is a leaf to the checks as well.
        """
        count = 0
        pending: list[tuple[object, int, _Trail]] = [(data, 1, None)]
        while pending:
            value, depth, trail = pending.pop()
            children: Iterable[tuple[object, object]]
            index = isinstance(value, list | tuple)
            if index:
                assert isinstance(value, list | tuple)
                count += len(value)
                children = enumerate(value)
            else:
                assert isinstance(value, Mapping)
                count += 2 * len(value)  # its keys and their values
                children = value.items()
            if count > MAX_VALUES:
                raise TopologyError(
                    [
                        f"holds more than {MAX_VALUES:,} values (tables, arrays, keys and "
                        "values; each use of a YAML alias counts): a topology is far smaller"
                    ],
                    self.source,
                )
            for key, child in children:
                kind = type(child)
                if kind in _LEAVES or (
                    kind not in _BRANCHES and not isinstance(child, Mapping | list | tuple)
                ):
                    continue
                if depth >= MAX_DEPTH:
                    where = _trail_path((trail, key, index))
                    said = f"is nested more than {MAX_DEPTH} levels deep (a topology needs 4)"
                    raise TopologyError([f"{where}: {said}"], self.source)
                pending.append((child, depth + 1, (trail, key, index)))

    # -- namespaces and bridges ------------------------------------------------------
    def read_namespaces(self, value: object, host_side: str | None) -> list[str]:
        if not isinstance(value, list):
            self.add("namespaces", f"must be an array of names, not {kind(value)}")
            return []
        names = []
        for index, item in enumerate(value):
            path = f"namespaces[{index}]"
            raw, machine = self.unplaced(path, item)
            if isinstance(raw, str):
                self.written.add(raw)
            name = self.checked(path, raw, validate.namespace_name)
            if name is None:
                continue
            if name in self.namespaces:
                self.add(path, f"{name!r} is listed twice (also at {self.namespaces[name]})")
                continue
            if name == host_side:
                self.add(
                    path, f"{name!r} is the name of the isolated lab's own host-side namespace"
                )
                continue
            self.namespaces[name] = path
            names.append(name)
            if machine is not None:
                self.placement[name] = machine
        return names

    def read_bridge(self, entry: tuple[str, Mapping[str, object]]) -> BridgeSpec | None:
        path, item = entry
        raw = item.get("name")
        if isinstance(raw, str):
            self.written.add(raw)
        known, namespace = self.where(path, item)
        machine = self.bridge_machine(path, item, namespace)
        name = None
        if "name" in item:
            name = self.checked(at(path, "name"), raw, validate.interface_name)
        stp = item.get("stp", False)
        if not isinstance(stp, bool):
            self.add(at(path, "stp"), f"must be true or false, not {kind(stp)}")
            return None
        snooping = item.get("mcast_snooping", False)
        if not isinstance(snooping, bool):
            self.add(at(path, "mcast_snooping"), f"must be true or false, not {kind(snooping)}")
            return None
        address = None
        if given(item, "address"):
            address = self.checked(at(path, "address"), item["address"], validate.interface)
            if address is None:
                return None
            self.host_address(at(path, "address"), address)
        if name is None or not known:
            return None
        if name in self.namespaces:
            self.add(
                at(path, "name"),
                f"{name!r} is already the name of a namespace ({self.namespaces[name]})",
            )
            return None
        if name in self.bridges:
            self.add(
                at(path, "name"),
                f"{name!r} is already the name of {self.bridges[name][0]} (a file names each "
                "bridge once, whatever namespace it is in)",
            )
            return None
        cidr = None if address is None else str(address)
        spec = BridgeSpec(name, cidr, namespace, stp, machine, snooping)
        self.bridges[name] = (path, spec)
        self.ends.append(End(namespace, name, address, at(path, "name")))
        return spec

    # -- links -----------------------------------------------------------------------
    def read_link(self, entry: tuple[str, Mapping[str, object]]) -> tuple[str, LinkSpec] | None:
        path, item = entry
        a = self.reference(at(path, "a"), item["a"], bridges=True) if "a" in item else None
        b = self.reference(at(path, "b"), item["b"], bridges=True) if "b" in item else None
        whole = a is not None and b is not None and self.two_ends(path, a, b)
        names = None
        if given(item, "names"):
            names = self.link_names(at(path, "names"), item["names"])
            whole = whole and names is not None
        addresses: tuple[str | None, str | None] = (None, None)
        if given(item, "addresses"):
            read = self.link_addresses(at(path, "addresses"), item["addresses"])
            whole = whole and read is not None
            addresses = read or addresses
        mtu = None
        if given(item, "mtu"):
            mtu = self.checked(at(path, "mtu"), item["mtu"], _mtu)
            whole = whole and mtu is not None
        shaping = shaped.read_shaping(self, path, item)
        if not whole or a is None or b is None or shaping is None:
            return None
        return path, LinkSpec(a, b, names, addresses, mtu, *shaping)

    def two_ends(self, path: str, a: str, b: str) -> bool:
        """A link needs two ends, and a namespace is not linked to a bridge inside it."""
        if a == b:
            what = "bridge" if a in self.bridges else "namespace"
            self.add(at(path, "b"), f"{b!r} is the same {what} as 'a': a link needs two ends")
            return False
        for end, other, key in ((a, b, "b"), (b, a, "a")):
            bridge = self.bridges.get(other)
            if end in self.namespaces and bridge is not None and bridge[1].namespace == end:
                self.add(
                    at(path, key),
                    f"{other!r} is a bridge inside namespace {end!r} ({bridge[0]}.namespace): "
                    "the namespace is on it through the bridge's own address",
                )
                return False
        return True

    def link_names(self, path: str, value: object) -> tuple[str, str] | None:
        if not isinstance(value, list) or len(value) != 2:
            self.add(path, f"must be an array of two interface names, not {kind(value)}")
            return None
        first = self.checked(f"{path}[0]", value[0], validate.interface_name)
        second = self.checked(f"{path}[1]", value[1], validate.interface_name)
        return None if first is None or second is None else (first, second)

    def link_addresses(self, path: str, value: object) -> tuple[str | None, str | None] | None:
        if not isinstance(value, list) or not 1 <= len(value) <= 2:
            self.add(
                path,
                f"must be an array of one or two addresses (one per end), not {kind(value)}",
            )
            return None
        found: list[str | None] = [None, None]
        ok = True
        for end, raw in enumerate(value):
            if raw is None or raw == "":
                continue
            address = self.checked(f"{path}[{end}]", raw, validate.interface)
            if address is None:
                ok = False
                continue
            self.host_address(f"{path}[{end}]", address)
            found[end] = str(address)
        return (found[0], found[1]) if ok else None

    def check_ends(self, links: list[tuple[str, LinkSpec]]) -> None:
        """Names after default naming, and addresses against the other end or segment."""
        bridges = tuple(spec for _, spec in self.bridges.values())
        named = Topology(
            "check",
            namespaces=tuple(self.namespaces),
            links=tuple(spec for _, spec in links),
            bridges=bridges,
        )
        resolve = named.ends()
        by_name = {(end.namespace, end.name): end.path for end in self.ends}
        segments = Segments(self.bridges, [spec for _, spec in links])
        for problem in segments.problems:
            self.add(*problem)
        ports: dict[tuple[str | None, str], int] = {}
        domains = _Domains()
        for (path, given_link), link in zip(links, named.with_link_names().links, strict=True):
            assert link.names is not None
            ends = (resolve.end(link.a), resolve.end(link.b))
            joined = []
            for end in ends:
                if end is not None and end.bridge:
                    key = (end.namespace, end.name)
                    joined.append(key)
                    ports[key] = ports.get(key, 0) + 1
                    if ports[key] == MAX_BRIDGE_PORTS + 1:  # said once, at the first too many
                        self.add(path, f"bridge {end.name!r} {too_many_ports(ports[key])}")
            if domains.join(joined) == MAX_BROADCAST_LINKS + 1:  # once per domain
                self.add(path, f"bridge {joined[0][1]!r} {too_wide(MAX_BROADCAST_LINKS + 1)}")
            addresses = [None if a is None else ipaddress.ip_interface(a) for a in link.addresses]
            for index, end in enumerate(ends):
                assert end is not None
                where, name = end.namespace, link.names[index]
                if given_link.names is not None:
                    name_path = f"{path}.names[{index}]"
                    said = f"{name!r}"
                else:
                    name_path = path
                    said = f"its default interface name {name!r}"
                if name == "lo":
                    self.add(name_path, f"{said} is the loopback's name in every namespace")
                elif (where, name) in by_name:
                    self.add(
                        name_path,
                        f"{said} is already used in {where_text(where)} by {by_name[where, name]}",
                    )
                else:
                    by_name[where, name] = name_path
                    self.ends.append(End(where, name, addresses[index], name_path))
            # every address of a link to a bridge is on that bridge's segment
            bridge = next((e.name for e in ends if e is not None and e.bridge), None)
            if bridge is None:
                self.link_subnets(path, addresses)
                continue
            for index, address in enumerate(addresses):
                if address is not None:
                    clash = segments.attach(f"{path}.addresses[{index}]", bridge, address)
                    if clash is not None:
                        self.add(*clash)

    def link_subnets(self, path: str, addresses: list[validate.IPInterface | None]) -> None:
        """Between two namespaces: both ends in one subnet, at two addresses."""
        first, second = addresses
        if first is None or second is None:
            return
        where = f"{path}.addresses[1]"
        if first.network != second.network:
            self.add(
                where,
                f"'{second}' is not in the same subnet as the other end's "
                f"'{first}' ({first.network}): a link's two ends share one",
            )
        elif first.ip == second.ip:
            self.add(where, f"'{second}' is the same address as the other end's")


def _mtu(value: object, field: str) -> int:
    return validate.positive_int(value, field, minimum=68, maximum=65535)


class _Domains:
    """Broadcast domains of a file: bridges joined by links, and their links."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str | None, str], tuple[str | None, str]] = {}
        self.links: dict[tuple[str | None, str], int] = {}

    def root(self, key: tuple[str | None, str]) -> tuple[str | None, str]:
        while self.parent.get(key, key) != key:
            key = self.parent[key]
        return key

    def join(self, keys: list[tuple[str | None, str]]) -> int:
        """One more link, between the bridges ``keys``: the links of its domain now
        (0 for a link between namespaces)."""
        roots = list(dict.fromkeys(self.root(key) for key in keys))
        if not roots:
            return 0
        total = sum(self.links.pop(root, 0) for root in roots) + 1
        for root in roots[1:]:
            self.parent[root] = roots[0]
        self.links[roots[0]] = total
        return total
