"""The whole-file check: every problem of a topology, each with its path in the file.

Items with a problem in their own fields are left out of the checks that need the
whole item (names, subnets), so that one typo is reported once, not again as a
consequence elsewhere.  Everything is looked up in indexes: checking costs about the
same per item however big the file, right or wrong.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from .. import validate
from ..errors import ValidationError, bounded_repr
from ..route import mismatch as route_mismatch
from ..route import version as route_version
from ..spec import BridgeSpec, LinkSpec, MasqueradeSpec, RouteSpec, SysctlSpec, Topology
from . import shaped
from .places import End, Place
from .problems import TopologyError
from .suggest import Names, did_you_mean, short_list, suggest

LAB_NAME_MAX = validate.LAB_NAME_MAX
#: The deepest nesting of tables and arrays accepted.  A topology needs 4 (the top
#: table, [[links]], a link, its addresses); deeper data is refused before anything
#: walks it, so that no check recurses or loops on it.
MAX_DEPTH = 32
#: The most values (tables, arrays, keys, scalars) walked in one topology.  YAML
#: aliases share one value among many places, so a small file can stand for billions
#: of values ("billion laughs"); each use counts, and the walk stops at this many.
MAX_VALUES = 1_000_000

_T = TypeVar("_T")

_TOP_KEYS = (
    "name",
    "isolated",
    "ipv6_link_local",
    "namespaces",
    "bridges",
    "links",
    "routes",
    "sysctls",
    "masquerade",
)
#: Each section's keys, and which of them are required.
_SECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bridges": (("name", "address"), ("name",)),
    "links": (("a", "b", "addresses", "names", "mtu", *shaped.KEYS), ("a", "b")),
    "routes": (("namespace", "destination", "via", "dev"), ("destination",)),
    "sysctls": (("namespace", "key", "value"), ("key", "value")),
    "masquerade": (("source", "out_interface"), ("source",)),
}
_HOST = "the lab's host side"

#: The longest key written as-is in a path; longer or odd ones are shown by bounded_repr.
_KEY_MAX = 64


def _key_text(key: object) -> str:
    """A key as a path shows it: plain when it is a short printable string (all real
    keys are), else bounded (a YAML key may be a huge number or a megabyte of text)."""
    if isinstance(key, str) and 0 < len(key) <= _KEY_MAX and key.isprintable():
        return key
    return bounded_repr(key)


def _at(path: str, key: object) -> str:
    text = _key_text(key)
    return text if not path else f"{path}.{text}"


def _kind(value: object) -> str:
    kinds = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
        type(None): "null",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if not isinstance(value, bool | int | float | str):
        return kind
    shown = bounded_repr(value)
    return shown if shown.startswith(kind) else f"{kind} ({shown})"  # "an integer of N digits"


def _given(item: Mapping[str, object], key: str) -> bool:
    """An optional key is given when present and not null (YAML's ``~``)."""
    return item.get(key) is not None


def _where(namespace: str | None) -> str:
    return _HOST if namespace is None else f"namespace {namespace!r}"


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
        path = f"{path}[{key}]" if index else _at(path, key)
        if len(path) > _TRAIL_MAX:
            return path[:_TRAIL_MAX] + "…"
    return path


class Checker:
    """Reads a topology dict section by section, collecting problems as it goes.

    Items with a problem in their own fields are left out of the checks that need
    the whole item (names, subnets), so that one typo is reported once, not again
    as a consequence elsewhere.  Names that were written but were invalid still
    count as defined, for the same reason.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []
        self.isolated = False
        self.namespaces: dict[str, str] = {}  # name -> path
        self.bridges: dict[str, tuple[str, BridgeSpec]] = {}  # name -> (path, spec)
        self.written: set[str] = set()  # every namespace/bridge name written, valid or not
        self.ends: list[End] = []
        # Built on first use, for the checks that look things up once per item: a
        # scan of every name or interface per item made whole-file checks quadratic.
        self._choices: dict[tuple[bool, int, int], Names] = {}
        self._places: dict[str | None, Place] = {}
        self._placed = 0  # how many of self.ends self._places holds

    # -- helpers ---------------------------------------------------------------------
    def add(self, path: str, text: str) -> None:
        self.problems.append(f"{path}: {text}" if path else text)

    def checked(self, path: str, value: object, check: Callable[[object, str], _T]) -> _T | None:
        try:
            return check(value, path)
        except ValidationError as error:
            self.add(path, f"{bounded_repr(error.value)} {error.reason}")
            return None

    def keys(
        self,
        path: str,
        table: Mapping[Any, object],
        allowed: Sequence[str],
        required: Sequence[str],
    ) -> None:
        for key in table:
            if key not in allowed:
                self.add(_at(path, key), "unknown key" + suggest(key, allowed))
        for key in required:
            if key not in table:
                self.add(_at(path, key), "required key is missing")

    def array(self, top: Mapping[str, object], key: str) -> list[tuple[str, Mapping[str, object]]]:
        value = top.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(key, f"must be an array of tables ([[{key}]] in TOML), not {_kind(value)}")
            return []
        allowed, required = _SECTIONS[key]
        items = []
        for index, item in enumerate(value):
            path = f"{key}[{index}]"
            if not isinstance(item, Mapping):
                self.add(path, f"must be a table, not {_kind(item)}")
                continue
            self.keys(path, item, allowed, required)
            items.append((path, item))
        return items

    def reference(self, path: str, value: object, *, bridges: bool) -> str | None:
        """A namespace (or bridge, when ``bridges``) the item names; None if undefined."""
        name = self.checked(path, value, validate.namespace_name)
        if name is None:
            return None
        if name in self.namespaces or (bridges and name in self.bridges):
            return name
        if name in self.bridges:
            self.add(path, f"{name!r} is a bridge, not a namespace")
        elif name not in self.written:
            what = "a namespace or bridge" if bridges else "a namespace"
            self.add(
                path,
                f"{name!r} is not {what} of this lab"
                + suggest(name, self.choices(bridges=bridges), listing="defined"),
            )
        return None

    def choices(self, *, bridges: bool) -> Names:
        """The names a reference may use, indexed once (until more are defined)."""
        key = (bridges, len(self.namespaces), len(self.bridges))
        if key not in self._choices:
            names = list(self.namespaces) + (list(self.bridges) if bridges else [])
            self._choices[key] = Names(names)
        return self._choices[key]

    # -- the whole -------------------------------------------------------------------
    def topology(self, data: object) -> Topology:
        if not isinstance(data, Mapping):
            self.add("", f"the top level must be a table of keys, not {_kind(data)}")
            raise TopologyError(self.problems, self.source)
        self.bounded(data)
        self.keys("", data, _TOP_KEYS, ("name",))
        name = self.lab_name(data)
        isolated = data.get("isolated", False)
        if not isinstance(isolated, bool):
            self.add("isolated", f"must be true or false, not {_kind(isolated)}")
            isolated = False
        self.isolated = isolated
        link_local = data.get("ipv6_link_local", False)
        if not isinstance(link_local, bool):
            self.add("ipv6_link_local", f"must be true or false, not {_kind(link_local)}")
            link_local = False
        written = data.get("namespaces")
        host = f"{name}-host" if isolated and name is not None else None
        namespaces = self.read_namespaces([] if written is None else written, host)
        bridges = [b for b in map(self.read_bridge, self.array(data, "bridges")) if b]
        links = [link for link in map(self.read_link, self.array(data, "links")) if link]
        self.check_ends(links)
        routes = self.check_routes(self.array(data, "routes"))
        sysctls = self.check_sysctls(self.array(data, "sysctls"))
        masquerades = self.check_masquerades(self.array(data, "masquerade"))
        if self.problems or name is None:
            raise TopologyError(self.problems, self.source)
        return Topology(
            name=name,
            isolated=isolated,
            ipv6_link_local=link_local,
            namespaces=tuple(namespaces),
            bridges=tuple(bridges),
            links=tuple(spec for _, spec in links),
            routes=tuple(routes),
            sysctls=tuple(sysctls),
            masquerades=tuple(masquerades),
        )

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
    def read_namespaces(self, value: object, host: str | None) -> list[str]:
        if not isinstance(value, list):
            self.add("namespaces", f"must be an array of names, not {_kind(value)}")
            return []
        names = []
        for index, raw in enumerate(value):
            path = f"namespaces[{index}]"
            if isinstance(raw, str):
                self.written.add(raw)
            name = self.checked(path, raw, validate.namespace_name)
            if name is None:
                continue
            if name in self.namespaces:
                self.add(path, f"{name!r} is listed twice (also at {self.namespaces[name]})")
                continue
            if name == host:
                self.add(path, f"{name!r} is the name of the isolated lab's own host namespace")
                continue
            self.namespaces[name] = path
            names.append(name)
        return names

    def read_bridge(self, entry: tuple[str, Mapping[str, object]]) -> BridgeSpec | None:
        path, item = entry
        raw = item.get("name")
        if isinstance(raw, str):
            self.written.add(raw)
        name = None
        if "name" in item:
            name = self.checked(_at(path, "name"), raw, validate.interface_name)
        address = None
        if _given(item, "address"):
            address = self.checked(_at(path, "address"), item["address"], validate.interface)
            if address is None:
                return None
            self.host_address(_at(path, "address"), address)
        if name is None:
            return None
        if name in self.namespaces:
            self.add(
                _at(path, "name"),
                f"{name!r} is already the name of a namespace ({self.namespaces[name]})",
            )
            return None
        if name in self.bridges:
            self.add(_at(path, "name"), f"{name!r} is already the name of {self.bridges[name][0]}")
            return None
        spec = BridgeSpec(name, None if address is None else str(address))
        self.bridges[name] = (path, spec)
        self.ends.append(End(None, name, address, _at(path, "name")))
        return spec

    def host_address(self, path: str, address: validate.IPInterface) -> None:
        """Refuse a subnet's network or broadcast address as an interface's own."""
        network = address.network
        if network.version != 4 or network.prefixlen >= 31:
            return
        if address.ip == network.network_address:
            self.add(path, f"'{address}' is the network address of {network}, not a host's")
        elif address.ip == network.broadcast_address:
            self.add(path, f"'{address}' is the broadcast address of {network}, not a host's")

    # -- links -----------------------------------------------------------------------
    def read_link(self, entry: tuple[str, Mapping[str, object]]) -> tuple[str, LinkSpec] | None:
        path, item = entry
        a = self.reference(_at(path, "a"), item["a"], bridges=False) if "a" in item else None
        b = self.reference(_at(path, "b"), item["b"], bridges=True) if "b" in item else None
        whole = a is not None and b is not None
        if a is not None and a == b:
            self.add(_at(path, "b"), f"{b!r} is the same namespace as 'a': a link needs two ends")
            whole = False
        names = None
        if _given(item, "names"):
            names = self.link_names(_at(path, "names"), item["names"])
            whole = whole and names is not None
        addresses: tuple[str | None, str | None] = (None, None)
        if _given(item, "addresses"):
            read = self.link_addresses(_at(path, "addresses"), item["addresses"])
            whole = whole and read is not None
            addresses = read or addresses
        mtu = None
        if _given(item, "mtu"):
            mtu = self.checked(_at(path, "mtu"), item["mtu"], _mtu)
            whole = whole and mtu is not None
        shaping = shaped.read_shaping(self, path, item)
        if not whole or a is None or b is None or shaping is None:
            return None
        return path, LinkSpec(a, b, names, addresses, mtu, *shaping)

    def link_names(self, path: str, value: object) -> tuple[str, str] | None:
        if not isinstance(value, list) or len(value) != 2:
            self.add(path, f"must be an array of two interface names, not {_kind(value)}")
            return None
        first = self.checked(f"{path}[0]", value[0], validate.interface_name)
        second = self.checked(f"{path}[1]", value[1], validate.interface_name)
        return None if first is None or second is None else (first, second)

    def link_addresses(self, path: str, value: object) -> tuple[str | None, str | None] | None:
        if not isinstance(value, list) or not 1 <= len(value) <= 2:
            self.add(
                path,
                f"must be an array of one or two addresses (one per end), not {_kind(value)}",
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
        """Names after default naming, and addresses against the other end or bridge."""
        bridges = tuple(spec for _, spec in self.bridges.values())
        named = Topology("check", links=tuple(spec for _, spec in links), bridges=bridges)
        by_name = {(end.namespace, end.name): end.path for end in self.ends}
        on_bridge: dict[str, dict[validate.IPAddress, str]] = {}
        for name, (path, spec) in self.bridges.items():
            if spec.address is not None:
                on_bridge[name] = {ipaddress.ip_interface(spec.address).ip: _at(path, "address")}
        for (path, given), link in zip(links, named.with_link_names().links, strict=True):
            assert link.names is not None
            bridge = self.bridges.get(link.b)
            places = (link.a, None if bridge else link.b)
            addresses = [None if a is None else ipaddress.ip_interface(a) for a in link.addresses]
            for end in (0, 1):
                where, name = places[end], link.names[end]
                if given.names is not None:
                    name_path = f"{path}.names[{end}]"
                    said = f"{name!r}"
                else:
                    name_path = path
                    said = f"its default interface name {name!r}"
                if name == "lo":
                    self.add(name_path, f"{said} is the loopback's name in every namespace")
                elif (where, name) in by_name:
                    hint = "" if given.names is not None else "; give this link 'names'"
                    self.add(
                        name_path,
                        f"{said} is already used in {_where(where)} by "
                        f"{by_name[where, name]}{hint}",
                    )
                else:
                    by_name[where, name] = name_path
                    self.ends.append(End(where, name, addresses[end], name_path))
            self.link_subnets(path, link, addresses, bridge, on_bridge)

    def link_subnets(
        self,
        path: str,
        link: LinkSpec,
        addresses: list[validate.IPInterface | None],
        bridge: tuple[str, BridgeSpec] | None,
        on_bridge: dict[str, dict[validate.IPAddress, str]],
    ) -> None:
        first, second = addresses
        if bridge is not None:
            bridge_path, spec = bridge
            used = on_bridge.setdefault(spec.name, {})
            for end, address in enumerate(addresses):
                if address is None:
                    continue
                where = f"{path}.addresses[{end}]"
                if spec.address is not None:
                    own = ipaddress.ip_interface(spec.address)
                    if address.network != own.network:
                        self.add(
                            where,
                            f"'{address}' is not in the subnet of bridge {spec.name!r} "
                            f"({own.network}, from {bridge_path}.address)",
                        )
                        continue
                if address.ip in used:
                    self.add(
                        where,
                        f"'{address}' is already used on bridge {spec.name!r} "
                        f"by {used[address.ip]}",
                    )
                    continue
                used[address.ip] = where
            return
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

    # -- routes, sysctls, masquerade -------------------------------------------------
    def where(self, path: str, item: Mapping[str, object]) -> tuple[bool, str | None]:
        """The namespace an item acts in (None: the host side), and whether it is known."""
        if not _given(item, "namespace"):
            return True, None
        name = self.reference(_at(path, "namespace"), item["namespace"], bridges=False)
        return name is not None, name

    def place(self, namespace: str | None) -> Place | None:
        """The interfaces the lab makes there, indexed; None when unknown (the host side
        of a lab that is not isolated)."""
        if namespace is None and not self.isolated:
            return None
        if self._placed != len(self.ends):
            self._places = {}
            for end in self.ends:
                self._places.setdefault(end.namespace, Place()).add(end)
            self._placed = len(self.ends)
        found = self._places.get(namespace)
        return found if found is not None else Place()

    def check_routes(self, items: list[tuple[str, Mapping[str, object]]]) -> list[RouteSpec]:
        routes = []
        seen: dict[tuple[str | None, validate.IPNetwork], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            destination = via = dev = None
            if "destination" in item:
                destination = self.checked(_at(path, "destination"), item["destination"], _dest)
            if _given(item, "via"):
                via = self.checked(_at(path, "via"), item["via"], validate.address)
            if _given(item, "dev"):
                dev = self.checked(_at(path, "dev"), item["dev"], validate.interface_name)
            if not _given(item, "via") and not _given(item, "dev"):
                self.add(path, "a route needs 'via' (a gateway) or 'dev' (an interface)")
                continue
            damaged = (via is None and _given(item, "via")) or (dev is None and _given(item, "dev"))
            if not known or destination is None or damaged:
                continue
            gateway = None if via is None else str(via)
            problem = route_mismatch(destination, gateway)
            if problem is not None:
                self.add(_at(path, "via"), f"'{via}' {problem}")
                continue
            version = route_version(destination, gateway)
            network = ipaddress.ip_network(
                ("0.0.0.0/0" if version == 4 else "::/0")
                if destination == "default"
                else destination
            )
            if (namespace, network) in seen:
                self.add(
                    path,
                    f"a route to {destination} in {_where(namespace)} is already "
                    f"given by {seen[namespace, network]}",
                )
                continue
            seen[namespace, network] = path
            if not self.route_reaches(path, namespace, via, dev):
                continue
            routes.append(
                RouteSpec(
                    destination,
                    via=None if via is None else str(via),
                    dev=dev,
                    namespace=namespace,
                )
            )
        return routes

    def route_reaches(
        self,
        path: str,
        namespace: str | None,
        via: validate.IPAddress | None,
        dev: str | None,
    ) -> bool:
        place = self.place(namespace)
        if place is None:
            return True
        if dev is not None and dev != "lo" and dev not in place.ends:
            self.add(
                _at(path, "dev"),
                f"{dev!r} is not an interface in {_where(namespace)} (it has: {place.have()})"
                + did_you_mean(dev, place.names()),
            )
            return False
        if via is None or (via.version == 6 and via.is_link_local):
            return True
        if dev is not None:  # only that interface's own subnet
            end = place.ends.get(dev)
            place = Place()
            if end is not None:
                place.add(end)
        if via in place.own:
            self.add(_at(path, "via"), f"'{via}' is an address of {_where(namespace)} itself")
            return False
        if not place.connects(via):
            subnets = place.subnets()
            onto = f" on {dev!r}" if dev is not None else ""
            have = f"connected: {short_list(subnets)}" if subnets else "it has no addresses" + onto
            self.add(
                _at(path, "via"),
                f"'{via}' is not in a subnet connected to {_where(namespace)}{onto} ({have})",
            )
            return False
        return True

    def check_sysctls(self, items: list[tuple[str, Mapping[str, object]]]) -> list[SysctlSpec]:
        sysctls = []
        seen: dict[tuple[str | None, str], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            key = value = None
            if "key" in item:
                key = self.checked(_at(path, "key"), item["key"], validate.sysctl_key)
            if "value" in item:
                value = self.checked(_at(path, "value"), item["value"], validate.sysctl_value)
            if not known or key is None or value is None:
                continue
            if (namespace, key) in seen:
                self.add(
                    _at(path, "key"),
                    f"{key!r} is already set in {_where(namespace)} by {seen[namespace, key]}",
                )
                continue
            seen[namespace, key] = path
            sysctls.append(SysctlSpec(key, value, namespace))
        return sysctls

    def check_masquerades(
        self, items: list[tuple[str, Mapping[str, object]]]
    ) -> list[MasqueradeSpec]:
        masquerades = []
        seen: dict[tuple[str, str | None], str] = {}
        for path, item in items:
            source = out = None
            if "source" in item:
                source = self.checked(_at(path, "source"), item["source"], validate.network)
            if _given(item, "out_interface"):
                out = self.checked(
                    _at(path, "out_interface"), item["out_interface"], validate.interface_name
                )
                host = self.place(None)
                if out is not None and host is not None and out not in host.ends:
                    self.add(
                        _at(path, "out_interface"),
                        f"{out!r} is not an interface on {_HOST} (it has: {host.have()})",
                    )
                    continue
                if out is None:
                    continue
            if source is None:
                continue
            if (str(source), out) in seen:
                self.add(path, f"the same masquerade is already given by {seen[str(source), out]}")
                continue
            seen[str(source), out] = path
            masquerades.append(MasqueradeSpec(str(source), out))
        return masquerades


def _mtu(value: object, field: str) -> int:
    return validate.positive_int(value, field, minimum=68, maximum=65535)


def _dest(value: object, field: str) -> str:
    if value == "default":
        return "default"
    return str(validate.network(value, field))
