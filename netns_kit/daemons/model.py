"""What a router is asked to run: pure values, checked when they are made.

The same values feed both suites' generators (:mod:`netns_kit.daemons.frr`,
:mod:`netns_kit.daemons.bird`), so a lab says *what* it wants once and the suite is
only a choice of output.
"""

from __future__ import annotations

import ipaddress

import attrs

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
    """

    name: str
    address: str | None
    active: bool = False
    p2p: bool = False


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

    @property
    def protocols(self) -> tuple[str, ...]:
        return tuple(p for p, on in (("ospf", self.ospf), ("bgp", self.bgp)) if on is not None)
