"""Topology files: a whole lab in one TOML (or YAML) file, checked before anything runs.

A file is read into a plain dict (``tomllib``, or PyYAML's ``safe_load`` for ``.yaml``
and ``.yml`` when the ``yaml`` extra is installed), then checked *completely*: every
problem is collected, each with its path in the file, and all of them are raised
together in one :class:`TopologyError`.  Fixing a file should take one round, not one
round per typo, and nothing has touched the machine when the error comes.

The format (TOML; YAML has the same keys)::

    name = "bridge"            # required: the lab's name, namespace rules, <= 58 bytes
    isolated = true            # optional (default false): give the lab its own host-side
                               # namespace, so bridges, host routes, sysctls and NAT
                               # never touch the machine's root namespace
    ipv6_link_local = false    # optional (default false): see below
    hosts = true               # optional (default false): /etc/netns/<ns>/hosts for
                               # every namespace, so names resolve (Lab.hosts)
    namespaces = ["red", "blue"]   # or { name = "red", machine = "a" }: on machine a

    [machines.a]               # optional: a machine, by the lab's name for it (the first
    ssh = "root@10.0.0.1"      # is the default): how ssh reaches it; underlay, port,
                               # identity_file, sudo (topology/machines.py)

    [[bridges]]                # a switch
    name = "v-net-0"           # required, an interface name (1-15 bytes), unique in
                               # the file whatever namespace the bridge is in
    namespace = "red"          # optional: left out means the lab's host side
    address = "192.168.15.5/24"   # optional: that namespace's own address on it
    stp = true                 # optional (default false): spanning tree, for rings
    mcast_snooping = true      # optional (default false): IGMP/MLD snooping on
    machine = "a"              # optional: the machine of a host-side bridge

    [[links]]                  # a veth pair (a VXLAN tunnel between machines)
    a = "red"                  # required: a namespace or a bridge
    b = "v-net-0"              # required: another namespace or bridge; a bridge end
                               # is one of its ports (two bridges: switch to switch)
    addresses = ["192.168.15.1/24"]   # optional: one per end, [a] or [a, b];
                               # "" leaves an end without one; a bridge end
                               # usually has none (the bridge holds the address)
    names = ["veth-red", "veth-red-br"]   # optional: the two ends' interface names
    mtu = 1400                 # optional, 68-65535
    rate = "10mbit"            # optional: shaping (netns_kit.objects.shaping); a rate in tc's
                               # units or bits/s; a rate alone uses tbf
    delay = "20ms"             # optional: tc's units or seconds; delay, jitter and
    jitter = "5ms"             # loss (in percent) use netem, which the kernel may
    loss = 1                   # not have (sch_netem)
    direction = "a->b"         # optional: "both" (default), "a->b" or "b->a"

    [[routes]]
    namespace = "red"          # optional: left out means the lab's host side
    destination = "default"    # required: "default" or a network ("10.0.0.0/8")
    via = "192.168.15.5"       # a gateway, and/or
    dev = "veth-red"           # an interface; at least one of the two

    [[sysctls]]
    namespace = "red"          # optional: left out means the lab's host side
    key = "net.ipv4.ip_forward"   # required
    value = 1                  # required, a string or an integer

    [[masquerade]]             # NAT out, with forwarding on
    namespace = "router"       # optional: left out means the lab's host side
    source = "192.168.15.0/24" # required, a network
    out_interface = "wan0"     # optional: an interface in that namespace

    [[port_forwards]]          # DNAT in, with forwarding on
    namespace = "router"       # optional: left out means the lab's host side
    port = 8080                # required: a port, or a range "8000-8010"
    to = "192.168.15.1:80"     # required: ADDR, ADDR:PORT or [IPV6]:PORT; a range
                               # keeps its ports (no port, or the same range)
    protocol = "tcp"           # optional: "tcp" (default) or "udp"
    in_interface = "wan0"      # optional: only what arrives there

Default interface names follow :class:`netns_kit.spec.LinkNamer` (``veth-red`` /
``veth-blue`` between namespaces, ``veth-red`` / ``veth-red-br`` to a bridge, ``s1-s2``
/ ``s2-s1`` between switches in namespaces ``s1`` and ``s2``).

A link with no IPv6 address comes up without an IPv6 link-local address either
(``addrgenmode none``), unless ``ipv6_link_local = true``: every such address starts
DAD, MLD and router-solicitation traffic that a bridge floods to all its ports.

What is checked, beyond each value's own rules (:mod:`netns_kit.validate`): unknown keys
(with a "did you mean"), wrong types, missing required keys, references to namespaces or
bridges that are not defined, duplicate names (a namespace and a bridge may not share
one either, nor two bridges in different namespaces, nor a namespace and an isolated
lab's ``<name>-host``), two interfaces of the same name in one namespace (after default
naming), a link from a namespace or bridge to itself, a namespace linked to a bridge
inside it, the two ends of a link in different subnets, an address outside the subnet
of its segment (bridges joined by links are one segment: its bridge addresses give its
subnets, or else its first address does), an address used twice on one segment, a
network or broadcast address given to an interface, a route whose gateway is in none
of its namespace's connected subnets or whose ``dev`` is not there, a masquerade's
``out_interface`` or a port forward's ``in_interface`` that is not in its namespace, a
port forward whose target is in no subnet its namespace is connected to or has a route
to, the same route, sysctl or masquerade given twice, port forwards that catch the
same connections, and a link's shaping: units and ranges (a rate from 8bit to 1tbit,
times up to an hour, loss from 0 to 100), a jitter without a delay or larger than it,
and a direction with nothing to shape.  On the host side of a lab that is not isolated the root
namespace's own interfaces are unknown, so host-side ``dev``, ``via``,
``out_interface``, ``in_interface`` and ``to`` are only checked in isolated labs.

A file may come from anywhere, so reading one is bounded whatever it holds: at most
:data:`MAX_FILE_BYTES` are read, data nested deeper than :data:`MAX_DEPTH` levels or
holding more than :data:`MAX_VALUES` values is refused before any check walks it, and
every value a message shows goes through :func:`netns_kit.errors.bounded_repr`.  A
hostile file gets a :class:`TopologyError` like any other bad file, never a traceback.
Checking costs about the same per item however big the file, right or wrong: names
and interfaces are looked up in indexes, not scanned per item, and a message lists the
first :data:`SHOWN_PROBLEMS` problems and counts the rest.
"""

from __future__ import annotations

from netns_kit.topology.check import MAX_DEPTH, MAX_VALUES
from netns_kit.topology.dicts import check, from_dict, to_dict
from netns_kit.topology.files import MAX_FILE_BYTES, load, read
from netns_kit.topology.problems import SHOWN_PROBLEMS, TopologyError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "SHOWN_PROBLEMS",
    "TopologyError",
    "check",
    "from_dict",
    "load",
    "read",
    "to_dict",
]
