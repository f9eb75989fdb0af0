"""The checks of what acts inside namespaces: routes, sysctls, masquerades, port forwards.

Each needs the interfaces the file makes in its namespace (a gateway must be in a
connected subnet, an ``out_interface`` must exist there), so these run after the
links.  Lookups go through indexes, as everywhere in the check: the cost per item
stays the same however big the file.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import attrs

from netns_kit import validate
from netns_kit.errors import ValidationError, bounded_repr
from netns_kit.objects.nat import PortForward
from netns_kit.objects.route import mismatch as route_mismatch
from netns_kit.objects.route import version as route_version
from netns_kit.spec import MasqueradeSpec, PortForwardSpec, RouteSpec, SysctlSpec
from netns_kit.topology.base import HOST, CheckerBase, at, given, where_text
from netns_kit.topology.places import Place, network_key
from netns_kit.topology.suggest import did_you_mean, short_list

_Items = list[tuple[str, Mapping[str, object]]]


def _dest(value: object, field: str) -> str:
    if value == "default":
        return "default"
    return str(validate.network(value, field))


class RuleChecks(CheckerBase):
    """Routes, sysctls, masquerades and port forwards (a part of the Checker)."""

    def check_routes(self, items: _Items) -> list[RouteSpec]:
        routes = []
        seen: dict[tuple[str | None, validate.IPNetwork], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            destination = via = dev = None
            if "destination" in item:
                destination = self.checked(at(path, "destination"), item["destination"], _dest)
            if given(item, "via"):
                via = self.checked(at(path, "via"), item["via"], validate.address)
            if given(item, "dev"):
                dev = self.checked(at(path, "dev"), item["dev"], validate.interface_name)
            if not given(item, "via") and not given(item, "dev"):
                self.add(path, "a route needs 'via' (a gateway) or 'dev' (an interface)")
                continue
            damaged = (via is None and given(item, "via")) or (dev is None and given(item, "dev"))
            if not known or destination is None or damaged:
                continue
            gateway = None if via is None else str(via)
            problem = route_mismatch(destination, gateway)
            if problem is not None:
                self.add(at(path, "via"), f"'{via}' {problem}")
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
                    f"a route to {destination} in {where_text(namespace)} is already "
                    f"given by {seen[namespace, network]}",
                )
                continue
            seen[namespace, network] = path
            if not self.route_reaches(path, namespace, via, dev):
                continue
            routes.append(RouteSpec(destination, gateway, dev, namespace))
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
                at(path, "dev"),
                f"{dev!r} is not an interface in {where_text(namespace)} (it has: {place.have()})"
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
            self.add(at(path, "via"), f"'{via}' is an address of {where_text(namespace)} itself")
            return False
        if not place.connects(via):
            subnets = place.subnets()
            onto = f" on {dev!r}" if dev is not None else ""
            have = f"connected: {short_list(subnets)}" if subnets else "it has no addresses" + onto
            self.add(
                at(path, "via"),
                f"'{via}' is not in a subnet connected to {where_text(namespace)}{onto} ({have})",
            )
            return False
        return True

    def check_sysctls(self, items: _Items) -> list[SysctlSpec]:
        sysctls = []
        seen: dict[tuple[str | None, str], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            key = value = None
            if "key" in item:
                key = self.checked(at(path, "key"), item["key"], validate.sysctl_key)
            if "value" in item:
                value = self.checked(at(path, "value"), item["value"], validate.sysctl_value)
            if not known or key is None or value is None:
                continue
            if (namespace, key) in seen:
                self.add(
                    at(path, "key"),
                    f"{key!r} is already set in {where_text(namespace)} by {seen[namespace, key]}",
                )
                continue
            seen[namespace, key] = path
            sysctls.append(SysctlSpec(key, value, namespace))
        return sysctls

    def interface_there(self, path: str, namespace: str | None, value: object) -> str | None:
        """An interface an item names (``out_interface``, ``in_interface``): it must be
        one the file makes in that namespace (not checked where that is unknown)."""
        name = self.checked(path, value, validate.interface_name)
        place = self.place(namespace)
        if name is None or place is None or name in place.ends:
            return name
        where = HOST if namespace is None else f"namespace {namespace!r}"
        self.add(
            path,
            f"{name!r} is not an interface {'on' if namespace is None else 'in'} {where} "
            f"(it has: {place.have()})" + did_you_mean(name, place.names()),
        )
        return None

    def check_masquerades(self, items: _Items) -> list[MasqueradeSpec]:
        masquerades = []
        seen: dict[tuple[str | None, str, str | None], str] = {}
        for path, item in items:
            known, namespace = self.where(path, item)
            source = out = None
            if "source" in item:
                source = self.checked(at(path, "source"), item["source"], validate.network)
            if given(item, "out_interface") and known:
                out = self.interface_there(
                    at(path, "out_interface"), namespace, item["out_interface"]
                )
                if out is None:
                    continue
            if source is None or not known:
                continue
            key = (namespace, str(source), out)
            if key in seen:
                self.add(path, f"the same masquerade is already given by {seen[key]}")
                continue
            seen[key] = path
            masquerades.append(MasqueradeSpec(str(source), out, namespace))
        return masquerades

    # -- port forwards ---------------------------------------------------------------
    def check_port_forwards(self, items: _Items, routes: list[RouteSpec]) -> list[PortForwardSpec]:
        routed = _Routed(routes)
        read: list[tuple[str, PortForwardSpec]] = []
        for path, item in items:
            known, namespace = self.where(path, item)
            inside = None
            if given(item, "in_interface") and known:
                inside = self.interface_there(
                    at(path, "in_interface"), namespace, item["in_interface"]
                )
                if inside is None:
                    continue
            rule = self.forward(path, item)
            if rule is None or not known:
                continue
            if not self.forward_reaches(path, namespace, rule, routed):
                continue
            read.append((path, attrs.evolve(rule.spec(namespace), in_interface=inside)))
        clashes = _overlaps([spec for _, spec in read])
        for index, other in sorted(clashes.items()):
            path, spec = read[index]
            self.add(
                at(path, "port"),
                f"{spec.protocol} {spec.port} is already forwarded in "
                f"{where_text(spec.namespace)} by {read[other][0]}",
            )
        return [spec for index, (_, spec) in enumerate(read) if index not in clashes]

    def forward(self, path: str, item: Mapping[str, object]) -> PortForward | None:
        """The rule an item stands for, every field checked (each problem at its key)."""
        fields = {"port": item.get("port"), "to": item.get("to")}
        fields["protocol"] = item.get("protocol", "tcp")
        broken = "port" not in item or "to" not in item  # reported as missing already
        for key, value in fields.items():
            if key not in item and key != "protocol":
                continue
            sample = {**_SAMPLE, key: value}
            try:
                PortForward(sample["port"], sample["to"], protocol=sample["protocol"])
            except ValidationError as error:
                self.add(at(path, key), f"{bounded_repr(error.value)} {error.reason}")
                broken = True
        if broken:
            return None
        try:
            return PortForward(fields["port"], fields["to"], protocol=fields["protocol"])
        except ValidationError as error:  # the fields fit, but not together
            self.add(at(path, error.field), f"{bounded_repr(error.value)} {error.reason}")
            return None

    def forward_reaches(
        self, path: str, namespace: str | None, rule: PortForward, routed: _Routed
    ) -> bool:
        """A forward's target must be in a subnet its namespace is connected to, or
        that it has a route to."""
        place = self.place(namespace)
        if place is None:
            return True
        target = rule.address
        if place.connects(target) or routed.reaches(namespace, target):
            return True
        subnets = place.subnets()
        have = f"connected: {short_list(subnets)}" if subnets else "it has no addresses"
        self.add(
            at(path, "to"),
            f"'{rule.to}' is not in a subnet {where_text(namespace)} reaches ({have}; "
            "and no route leads there)",
        )
        return False


#: Values that are right for every field of a PortForward, so that each field can be
#: checked alone, with its own path.
_SAMPLE: dict[str, object] = {"port": 1, "to": "192.0.2.1", "protocol": "tcp"}


class _Routed:
    """Which networks each namespace has a route to, indexed like a :class:`Place`."""

    def __init__(self, routes: list[RouteSpec]) -> None:
        self.places: dict[str | None, Place] = {}
        for route in routes:
            place = self.places.setdefault(route.namespace, Place())
            if route.destination == "default":
                version = route_version(route.destination, route.via)
                place.networks.add((version, 0, 0))
                place.prefixes.add((version, 0))
            else:
                network = ipaddress.ip_network(route.destination)
                bits = network_key(network.version, network.prefixlen, network.network_address)
                place.networks.add(bits)
                place.prefixes.add((network.version, network.prefixlen))

    def reaches(self, namespace: str | None, address: validate.IPAddress) -> bool:
        place = self.places.get(namespace)
        return place is not None and place.connects(address)


def _overlaps(specs: list[PortForwardSpec]) -> dict[int, int]:
    """Forwards that catch the connections of an earlier one: {index: the other's index}.

    One sweep per namespace and protocol, in port order, so a file of many forwards
    costs n log n: a forward on every interface meets any forward whose ports it
    shares; one on an interface meets those on the same interface or on every one.
    """
    groups: dict[tuple[str | None, str], list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault((spec.namespace, spec.protocol), []).append(index)
    found: dict[int, int] = {}
    for members in groups.values():
        spans = {i: validate.ports(specs[i].port) for i in members}
        members.sort(key=lambda i: spans[i])
        reach_all: tuple[int, int] | None = None  # (last port, index) over every forward
        reach_any: tuple[int, int] | None = None  # over the forwards on every interface
        reach_on: dict[str, tuple[int, int]] = {}
        for i in members:
            start, end = spans[i]
            on = specs[i].in_interface
            candidates = [reach_any, reach_all if on is None else reach_on.get(on)]
            hit = [c for c in candidates if c is not None and c[0] >= start]
            if hit:
                other = hit[0][1]
                later, earlier = max(i, other), min(i, other)
                found.setdefault(later, earlier)
            mine = (end, i)
            reach_all = mine if reach_all is None or end > reach_all[0] else reach_all
            if on is None:
                reach_any = mine if reach_any is None or end > reach_any[0] else reach_any
            else:
                old = reach_on.get(on)
                reach_on[on] = mine if old is None or end > old[0] else old
    return found
