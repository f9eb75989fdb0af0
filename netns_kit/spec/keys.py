"""The keys of a topology file, declared once: each table's keys, their JSON types,
which are required, and a description with an example each.

Both readers of this table must agree, so they read the same one: the whole-file
check (:mod:`netns_kit.topology.base`, ``keys()``: unknown and missing keys) and the
JSON Schema that editors use (:mod:`netns_kit.topology.schema`).  To add a key, add a
:class:`Key` to its :class:`Table` here (a new table: add it to :data:`TABLES` and give
the top-level key that holds it an ``items`` shape pointing at it), then read its value
in the checker; ``netns-kit schema > schemas/topology.schema.json`` refreshes the copy.

``shape`` is a JSON Schema fragment for the value (type, enum, bounds): the shape only.
Everything that needs more than one value at a time (a link naming a namespace that
exists, a gateway in a connected subnet) stays the checker's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from netns_kit.validate import LAB_NAME_MAX

_STRING: Mapping[str, Any] = {"type": "string", "minLength": 1}
_BOOL: Mapping[str, Any] = {"type": "boolean"}
#: A namespace's name (interface names are shorter, but share the characters).
_NAME: Mapping[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
_IFNAME: Mapping[str, Any] = {"type": "string", "minLength": 1, "maxLength": 15}
#: A rate, a time or a percentage: a number, or a string with a unit.
_AMOUNT: Mapping[str, Any] = {"type": ["string", "number"]}


def ref(table: str) -> dict[str, Any]:
    """The shape of a value that is one of :data:`TABLES`."""
    return {"$ref": f"#/$defs/{table}"}


def array_of(table: str) -> dict[str, Any]:
    """The shape of an array of tables (``[[links]]`` in TOML)."""
    return {"type": "array", "items": ref(table)}


def _frozen(shape: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(shape))


@attrs.frozen
class Key:
    """One key of a table: its name, the JSON Schema shape of its value, whether it is
    required, and what it means (shown by editors on hover), with an example value."""

    name: str
    shape: Mapping[str, Any] = attrs.field(converter=_frozen)
    description: str
    example: object
    required: bool = False


@attrs.frozen
class Table:
    """A table of a file (the top level, a ``[[links]]`` item, a machine...)."""

    name: str
    description: str
    keys: tuple[Key, ...]
    #: Whether keys other than :attr:`keys` are allowed (an event's action arguments).
    open: bool = False

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys if key.required)

    def key(self, name: str) -> Key:
        return next(key for key in self.keys if key.name == name)


NAMESPACE = Table(
    "namespace",
    "A namespace placed on one of the machines of [machines].",
    (
        Key("name", _NAME, "The namespace's name.", "red", required=True),
        Key("machine", _NAME, "The machine of [machines] it lives on.", "a"),
        Key("router", _BOOL, "A router: forwarding on, routing daemons when asked.", True),
        Key(
            "loopback",
            {"anyOf": [_STRING, {"type": "array", "items": _STRING, "minItems": 1, "maxItems": 2}]},
            "A router's loopback: a CIDR (IPv4 or IPv6), or an IPv4 and an IPv6 CIDR "
            "(dual-stack). The IPv4 one is its id.",
            "10.255.0.1/32",
        ),
    ),
)

BRIDGE = Table(
    "bridge",
    "A Linux bridge (a switch): on the lab's host side, or inside a namespace.",
    (
        Key("name", _IFNAME, "The bridge's interface name (unique in the file).", "br0", True),
        Key("address", _STRING, "Its own address, with a prefix length.", "10.0.0.254/24"),
        Key("namespace", _NAME, "The namespace it lives in (default: the host side).", "s1"),
        Key("stp", _BOOL, "Run the spanning tree protocol (loops; slower to forward).", True),
        Key("machine", _NAME, "The machine of [machines] a host-side bridge lives on.", "a"),
        Key(
            "mcast_snooping",
            _BOOL,
            "IGMP/MLD snooping on (default false: a quiet bridge, see docs/scale.md).",
            True,
        ),
    ),
)

#: The keys of a link that shape it (read by :mod:`netns_kit.topology.shaped`).
SHAPING = (
    Key("rate", _AMOUNT, "Rate limit: bits per second, or a string with a unit.", "10mbit"),
    Key("delay", _AMOUNT, "Added one-way delay: seconds, or a string with a unit.", "20ms"),
    Key("jitter", _AMOUNT, "Variation of the delay (needs delay).", "5ms"),
    Key("loss", _AMOUNT, "Packets dropped, percent (0-100).", "1%"),
    Key(
        "direction",
        {"type": "string", "enum": ["both", "a->b", "b->a"]},
        "Which way the shaping applies (default: both).",
        "a->b",
    ),
)

LINK = Table(
    "link",
    "A veth pair between two namespaces, a namespace and a bridge, or two bridges.",
    (
        Key("a", _NAME, "One end: a namespace or a bridge (NS/NAME if shared).", "red", True),
        Key("b", _NAME, "The other end: a namespace or a bridge.", "blue", required=True),
        Key(
            "addresses",
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
            "One address per end, with a prefix length ('' leaves an end without one).",
            ["10.0.0.1/24", "10.0.0.2/24"],
        ),
        Key(
            "names",
            {"type": "array", "items": _IFNAME, "minItems": 2, "maxItems": 2},
            "The two interface names (default: veth-A and veth-B).",
            ["eth0", "eth0"],
        ),
        Key(
            "mtu",
            {"type": "integer", "minimum": 68, "maximum": 65535},
            "The MTU of both ends.",
            9000,
        ),
        *SHAPING,
    ),
)

ROUTE = Table(
    "route",
    "A route in a namespace (or on the host side).",
    (
        Key("namespace", _NAME, "Where the route is (default: the host side).", "red"),
        Key(
            "destination",
            _STRING,
            "A network, or 'default'.",
            "default",
            required=True,
        ),
        Key("via", _STRING, "The gateway's address (in a connected subnet).", "10.0.0.254"),
        Key("dev", _IFNAME, "The interface it leaves by.", "veth-red"),
    ),
)

SYSCTL = Table(
    "sysctl",
    "A kernel setting in a namespace (or on the host side).",
    (
        Key("namespace", _NAME, "Where it is set (default: the host side).", "router"),
        Key("key", _STRING, "The setting's name.", "net.ipv4.ip_forward", required=True),
        Key(
            "value",
            {"type": ["string", "integer"]},
            "Its value.",
            1,
            required=True,
        ),
    ),
)

MASQUERADE = Table(
    "masquerade",
    "Source NAT of a network's traffic (iptables MASQUERADE).",
    (
        Key("namespace", _NAME, "Where the rule is (default: the host side).", "router"),
        Key("source", _STRING, "The network whose traffic is rewritten.", "10.0.0.0/24", True),
        Key("out_interface", _IFNAME, "Only traffic leaving by this interface.", "wan0"),
    ),
)

PORT_FORWARD = Table(
    "port_forward",
    "Destination NAT: connections to a port are forwarded to another address.",
    (
        Key("namespace", _NAME, "Where the rule is (default: the host side).", "router"),
        Key(
            "port",
            {"type": ["integer", "string"]},
            "A port (1-65535) or a range 'FIRST-LAST'.",
            8080,
            required=True,
        ),
        Key("to", _STRING, "ADDR, ADDR:PORT or [IPV6]:PORT.", "10.0.0.1:80", required=True),
        Key(
            "protocol",
            {"type": "string", "enum": ["tcp", "udp"]},
            "tcp (default) or udp.",
            "tcp",
        ),
        Key("in_interface", _IFNAME, "Only connections arriving on this interface.", "wan0"),
    ),
)

MACHINE = Table(
    "machine",
    "A machine of a lab spread over several, reached over ssh.",
    (
        Key("ssh", _STRING, "[user@]address, as ssh takes it.", "root@10.0.0.1", required=True),
        Key("underlay", _STRING, "The address the other machines reach it at.", "10.0.0.1"),
        Key("port", {"type": "integer", "minimum": 1, "maximum": 65535}, "ssh's port.", 22),
        Key("identity_file", _STRING, "ssh's -i.", "~/.ssh/lab"),
        Key("sudo", _BOOL, "Run every command through sudo -n.", False),
    ),
)

_PAIR: Mapping[str, Any] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "minItems": 2,
    "maxItems": 2,
}

EVENT = Table(
    "event",
    "An action at a set time of a run (netns-kit run); any other key is its argument.",
    (
        Key("at", _AMOUNT, "When, from the start of the run.", "2s", required=True),
        Key(
            "do",
            _STRING,
            "The action: down, up, shape, unshape, isolate, rejoin, partition, heal.",
            "down",
            required=True,
        ),
        Key(
            "target",
            {"anyOf": [_NAME, {"type": "array", "items": {"anyOf": [_NAME, _PAIR]}}]},
            "A namespace, a link by its two ends, or (partition) a list of links.",
            ["r", "h2"],
            required=True,
        ),
    ),
    open=True,
)

WATCH = Table(
    "watch",
    "The pairs a run probes, how often and for how long.",
    (
        Key(
            "pairs",
            {"type": "array", "items": _PAIR, "minItems": 1},
            "[source, target] pairs: namespaces (their first address) or addresses.",
            [["h1", "h2"]],
            required=True,
        ),
        Key("interval", _AMOUNT, "Time between two probes of a pair (default 10ms).", "10ms"),
        Key("until", _AMOUNT, "How long the run lasts.", "6s"),
        Key("timeout", _AMOUNT, "A later reply counts as lost (default 100ms).", "100ms"),
    ),
)

EXPECT_PAIR = Table(
    "expect_pair",
    "One watched pair's own bounds.",
    (
        Key("pair", _PAIR, "The pair, as [watch] names it.", ["h1", "h2"], required=True),
        Key("max_outage", _AMOUNT, "Its longest outage.", "2.5s"),
        Key("lost", {"type": "integer", "minimum": 0}, "Its lost probes at most.", 300),
    ),
)

EXPECT_FAIL = Table(
    "expect_fail",
    "A pair expected not to answer in a reachability check.",
    (
        Key("from", _STRING, "The source namespace, or * for any.", "outside", required=True),
        Key(
            "to",
            _STRING,
            "A namespace (all its addresses), or one address.",
            "inside",
            required=True,
        ),
    ),
)

EXPECT = Table(
    "expect",
    "What a check or a run must find: pairs that may fail, and a run's bounds.",
    (
        Key("fail", array_of("expect_fail"), "Pairs expected not to answer.", []),
        Key("max_outage", _AMOUNT, "No watched pair is cut off longer than this.", "3s"),
        Key("lost", {"type": "integer", "minimum": 0}, "No watched pair loses more.", 0),
        Key(
            "pairs",
            array_of("expect_pair"),
            "Pairs with bounds of their own ([[expect.pairs]] in TOML).",
            [{"pair": ["h1", "h2"], "max_outage": "2.5s"}],
        ),
    ),
)

_SUITE: Mapping[str, Any] = {"type": "string", "enum": ["frr", "bird"]}
_ASN: Mapping[str, Any] = {"type": "integer", "minimum": 1, "maximum": 4294967295}

OSPF = Table(
    "ospf",
    "An OSPF domain: its routers and timers (fast convergence by default).",
    (
        Key(
            "routers",
            {"type": "array", "items": _NAME},
            "Its routers (default: every router).",
            ["r1", "r2"],
        ),
        Key("area", _STRING, "The OSPF area.", "0.0.0.0"),
        Key("hello", {"type": "integer", "minimum": 1}, "Hello interval, seconds.", 1),
        Key("dead", {"type": "integer", "minimum": 1}, "Dead interval, seconds.", 3),
        Key("suite", _SUITE, "frr (default) or bird.", "frr"),
        Key("bfd", _BOOL, "BFD on its links (sub-second failure detection).", False),
    ),
)

BGP = Table(
    "bgp",
    "A router's BGP: its AS, its neighbours (by router name) and what it announces.",
    (
        Key("router", _NAME, "The router.", "r1", required=True),
        Key("asn", _ASN, "Its autonomous system number.", 65001, required=True),
        Key(
            "neighbors",
            {"type": "array", "items": _NAME},
            "Its neighbours, by router name (the lab finds the addresses).",
            ["r4"],
            required=True,
        ),
        Key(
            "networks",
            {"type": "array", "items": _STRING},
            "Prefixes it announces (default: its loopback and its host subnets).",
            ["192.168.1.0/24"],
        ),
        Key("suite", _SUITE, "frr (default) or bird.", "frr"),
    ),
)

TOP = Table(
    "topology",
    "A netns_kit lab: namespaces, bridges, links and what acts inside them.",
    (
        Key(
            "name",
            {"type": "string", "minLength": 1, "maxLength": LAB_NAME_MAX},
            "The lab's name (its namespaces' names add a suffix to it).",
            "demo",
            required=True,
        ),
        Key(
            "isolated",
            _BOOL,
            "Give the lab a host side of its own (a namespace) instead of the machine's.",
            True,
        ),
        Key("ipv6_link_local", _BOOL, "Keep IPv6 link-local addresses on every link.", False),
        Key(
            "namespaces",
            {"type": "array", "items": {"anyOf": [_NAME, ref("namespace")]}},
            "The lab's namespaces: names, or tables placing them on machines.",
            ["red", "blue"],
        ),
        Key("bridges", array_of("bridge"), "Bridges ([[bridges]] in TOML).", [{"name": "br0"}]),
        Key(
            "links",
            array_of("link"),
            "Links ([[links]] in TOML).",
            [{"a": "red", "b": "blue"}],
        ),
        Key(
            "routes",
            array_of("route"),
            "Routes ([[routes]] in TOML).",
            [{"namespace": "red", "destination": "default", "via": "10.0.0.254"}],
        ),
        Key(
            "sysctls",
            array_of("sysctl"),
            "Kernel settings ([[sysctls]] in TOML).",
            [{"key": "net.ipv4.ip_forward", "value": 1}],
        ),
        Key(
            "masquerade",
            array_of("masquerade"),
            "Source NAT rules ([[masquerade]] in TOML).",
            [{"source": "10.0.0.0/24", "out_interface": "wan0"}],
        ),
        Key(
            "port_forwards",
            array_of("port_forward"),
            "Port forwards ([[port_forwards]] in TOML).",
            [{"port": 8080, "to": "10.0.0.1:80"}],
        ),
        Key(
            "hosts",
            _BOOL,
            "true: write /etc/netns/NS/hosts (hosts files) so names resolve.",
            True,
        ),
        Key(
            "hosts_files",
            _BOOL,
            "The same as hosts = true (read for files written before 0.3).",
            True,
        ),
        Key(
            "machines",
            {"type": "object", "additionalProperties": ref("machine")},
            "The machines of a lab spread over several, by name ([machines.NAME] in TOML).",
            {"a": {"ssh": "root@10.0.0.1"}, "b": {"ssh": "root@10.0.0.2"}},
        ),
        Key("events", array_of("event"), "A run's timeline ([[events]] in TOML).", []),
        Key(
            "watch", ref("watch"), "What a run probes ([watch] in TOML).", {"pairs": [["h1", "h2"]]}
        ),
        Key("expect", ref("expect"), "What a check or a run must find.", {"max_outage": "3s"}),
        Key(
            "ospf",
            {"anyOf": [ref("ospf"), array_of("ospf")]},
            "OSPF: one domain ([ospf]) or several ([[ospf]]).",
            {"suite": "frr"},
        ),
        Key("bgp", array_of("bgp"), "BGP per router ([[bgp]] in TOML).", []),
    ),
)

#: Every table other than the top level, by the name the schema's $defs use.
TABLES: dict[str, Table] = {
    table.name: table
    for table in (
        NAMESPACE,
        BRIDGE,
        LINK,
        ROUTE,
        SYSCTL,
        MASQUERADE,
        PORT_FORWARD,
        MACHINE,
        EVENT,
        WATCH,
        EXPECT,
        EXPECT_PAIR,
        EXPECT_FAIL,
        OSPF,
        BGP,
    )
}

#: The top-level keys that hold arrays of tables, and the table each item is.
SECTIONS: dict[str, Table] = {
    "bridges": BRIDGE,
    "links": LINK,
    "routes": ROUTE,
    "sysctls": SYSCTL,
    "masquerade": MASQUERADE,
    "port_forwards": PORT_FORWARD,
}
