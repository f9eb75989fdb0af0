"""What a router is asked to run: pure values, checked when they are made.

The same values feed both suites' generators (:mod:`netns_kit.daemons.frr`,
:mod:`netns_kit.daemons.bird`), so a lab says *what* it wants once and the suite is
only a choice of output.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import attrs

from netns_kit import validate
from netns_kit.errors import ValidationError
from netns_kit.spec import OSPF_DEAD, OSPF_HELLO

SUITES = ("frr", "bird")

#: The lab's OSPF defaults: converge in about a second instead of 50 (measured, see
#: docs/routing.md): hello 1 s, dead 3 s, point-to-point links, SPF/LSA throttles off.
HELLO = OSPF_HELLO
DEAD = OSPF_DEAD


def suite(value: object) -> str:
    if value not in SUITES:
        raise ValidationError("suite", value, f"must be one of {', '.join(SUITES)}")
    return str(value)


def area(value: object) -> str:
    """An OSPF area: dotted quad, or a number (0 -> 0.0.0.0)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32:
        return str(ipaddress.IPv4Address(value))
    if isinstance(value, str):
        try:
            return str(ipaddress.IPv4Address(value))
        except ValueError:
            if value.isdigit() and int(value) < 2**32:
                return str(ipaddress.IPv4Address(int(value)))
    raise ValidationError("area", value, "must be an area id such as 0.0.0.0 or 0")


def asn(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value < 2**32:
        raise ValidationError("asn", value, "must be an AS number from 1 to 4294967295")
    return value


def seconds(value: object, field: str, maximum: int = 65535) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(field, value, f"must be a whole number of seconds, 1-{maximum}")
    return value


#: A router's loopback as the lab holds it: one CIDR, or an IPv4 and an IPv6 one.
Loopback = str | tuple[str, str] | None


def loopback(value: object) -> Loopback:
    """A router's loopback: a CIDR (IPv4 or IPv6), or a pair of them, one of each
    family (a dual-stack router), given as a list or tuple in any order.  Kept as one
    string when there is one, else as ``(IPv4, IPv6)``."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(validate.interface(value, "loopback"))
    if isinstance(value, Sequence) and 1 <= len(value) <= 2:
        cidrs = [validate.interface(v, "loopback") for v in value]
        if len(cidrs) == 1:
            return str(cidrs[0])
        four = [str(c) for c in cidrs if c.version == 4]
        six = [str(c) for c in cidrs if c.version == 6]
        if len(four) == 1 and len(six) == 1:
            return (four[0], six[0])
    raise ValidationError(
        "loopback", value, "must be a CIDR, or an IPv4 and an IPv6 CIDR (a dual-stack router)"
    )


def loopbacks(value: Loopback) -> tuple[str | None, str | None]:
    """A loopback's (IPv4, IPv6) CIDRs, ``None`` for a family it lacks."""
    if value is None:
        return None, None
    if isinstance(value, tuple):
        return value
    return (None, value) if ":" in value else (value, None)


@attrs.frozen
class Ospf:
    """OSPFv2 on a router: its area, timers, BFD, and the suite that runs it."""

    area: str = attrs.field(default="0.0.0.0", converter=area)
    hello: int = HELLO
    dead: int = DEAD
    bfd: bool = False
    #: Which ``lab.ospf`` call: routers of two calls form no adjacency (two domains,
    #: one AS each, say), their shared links are passive.
    instance: int = 0

    def __attrs_post_init__(self) -> None:
        seconds(self.hello, "hello")
        seconds(self.dead, "dead")
        if self.dead <= self.hello:
            raise ValidationError("dead", self.dead, f"must be longer than hello ({self.hello})")
        if not isinstance(self.bfd, bool):
            raise ValidationError("bfd", self.bfd, "must be True or False")


@attrs.frozen
class Interface:
    """One interface of a router as OSPF sees it.

    ``active``: another router is on it (OSPF forms an adjacency); otherwise it is
    passive and only its subnet is advertised (towards hosts).  ``p2p``: exactly
    one other router on it (a veth between routers), which skips the DR election.
    ``ipv6``: the link carries IPv6 (an IPv6 address on it, or the lab gives every
    link a link-local address), so OSPFv3 may run on it; ``peers``: the namespaces at
    its far end.
    """

    name: str
    address: str | None
    active: bool = False
    p2p: bool = False
    ipv6: bool = False
    peers: tuple[str, ...] = ()


@attrs.frozen
class Neighbor:
    """A BGP session: the peer router's name, its address and AS, and whether the
    session runs between loopbacks (iBGP with OSPF underneath)."""

    router: str
    address: str
    asn: int
    internal: bool
    multihop: bool = False
    source: str | None = None  # our own address for a session between loopbacks

    @property
    def ipv6(self) -> bool:
        """An IPv6 session: it carries IPv6 routes only (an IPv4 one, IPv4 only)."""
        return ":" in self.address


@attrs.frozen
class Bgp:
    asn: int = attrs.field(converter=asn)
    neighbors: tuple[Neighbor, ...] = ()
    networks: tuple[str, ...] = ()


@attrs.frozen
class RouterConfig:
    """Everything one router's daemons are configured with."""

    name: str
    suite: str
    router_id: str
    loopback: str | None = None
    interfaces: tuple[Interface, ...] = ()
    ospf: Ospf | None = None
    bgp: Bgp | None = None
    #: The IPv6 loopback (``loopback`` is the IPv4 one).
    loopback6: str | None = None

    @property
    def ipv4(self) -> bool:
        """Whether the router has an IPv4 address (OSPFv2 runs then)."""
        return self.loopback is not None or any(
            i.address is not None and ":" not in i.address for i in self.interfaces
        )

    @property
    def ipv6(self) -> bool:
        """Whether the router has an IPv6 address of its own, on ``lo`` or a link
        (OSPFv3 runs then, on its links that carry IPv6)."""
        return self.loopback6 is not None or any(
            i.address is not None and ":" in i.address for i in self.interfaces
        )

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(p for p, on in (("ospf", self.ospf), ("bgp", self.bgp)) if on is not None)
