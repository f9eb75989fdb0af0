"""Probes: what a reachability check asks an executor to send, and the packets.

A check (:mod:`netns_kit.check.checker`) hands the executor *probe jobs*: from one
namespace, echo requests to many addresses, and before them the namespace's
*introductions*.  An executor that can enter namespaces sends them from raw sockets
opened there (:mod:`netns_kit.executors.pinger`); this module holds what it sends and what it
looks for, as pure functions, so the packet formats are tested without a socket.

Echoes.  A raw socket receives every ICMP message of its namespace, so replies are
matched by identifier and sequence number (and source address), never by arrival.
The kernel fills in an ICMPv6 checksum itself; an ICMPv4 checksum is ours.  Socket
filters keep everything but echo replies out of the socket's buffer.

Introductions.  Before probing, two namespaces on one Ethernet segment must learn
each other's MAC address.  Left to the kernel, that is one broadcast ARP request
(or multicast neighbour solicitation) per pair, which a bridge floods to every
port: N^2 requests delivered N times each.  At 200 namespaces on one bridge that
flood was most of the check's time (measured: 3.1 of 3.5 s).  So each namespace
first sends a *unicast* ARP request (IPv4) or neighbour solicitation (IPv6) from
its own address straight to the MAC address of each peer it will exchange probes
with.  The peer's kernel handles it as it handles any request for its address,
learns the sender's address from it, and answers; nothing is written into a
neighbour table by us.  A peer that ignores the request (``arp_ignore``, a filter)
learns nothing, and the probe that follows resolves its neighbour the usual way:
introductions only ever save time, they never make a pair answer.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Iterable

import attrs

ECHO_REQUEST = {4: 8, 6: 128}
ECHO_REPLY = {4: 0, 6: 129}
_HEADER = struct.Struct("!BBHHH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
ETH_ARP = 0x0806
ETH_IPV6 = 0x86DD
NEIGHBOUR_SOLICITATION = 135

#: ``setsockopt(SOL_RAW, ICMP_FILTER, mask)``: a set bit drops that ICMPv4 type.
SOL_RAW = 255
ICMP_FILTER = 1
#: ``setsockopt(IPPROTO_ICMPV6, ICMP6_FILTER, 8 words)``: a set bit blocks that type.
ICMP6_FILTER = 1
IPPROTO_ICMPV6 = 58


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _times(value: Iterable[float | None]) -> tuple[float | None, ...]:
    return tuple(value)


def _reasons(value: Iterable[str | None]) -> tuple[str | None, ...]:
    return tuple(value)


def _introductions(value: Iterable[Introduction]) -> tuple[Introduction, ...]:
    return tuple(value)


@functools.lru_cache(maxsize=65536)
def _mac_text(value: str) -> str:
    text = value.lower()
    if len(bytes.fromhex(text.replace(":", ""))) != 6:
        raise ValueError(f"not a MAC address: {value!r}")
    return text


def _mac(value: object) -> str:
    return _mac_text(str(value))


@attrs.frozen
class Introduction:
    """A unicast ARP request (or neighbour solicitation) from ``address`` on
    ``interface`` (whose MAC is ``mac``) to ``peer_address`` at ``peer_mac``."""

    interface: str
    mac: str = attrs.field(converter=_mac)
    address: str
    peer_mac: str = attrs.field(converter=_mac)
    peer_address: str

    @property
    def family(self) -> int:
        return family_of(self.address)

    def frame(self) -> bytes:
        """The Ethernet frame to send on ``interface``."""
        if self.family == 4:
            return arp_request(self.mac, self.address, self.peer_mac, self.peer_address)
        return neighbour_solicitation(self.mac, self.address, self.peer_mac, self.peer_address)


@attrs.frozen
class ProbeJob:
    """From ``namespace``: its ``introductions``, then ``count`` echo requests to each
    of ``addresses`` (plain IPv4 or IPv6 addresses, any order; answers keep it)."""

    namespace: str
    addresses: tuple[str, ...] = attrs.field(converter=_strings)
    introductions: tuple[Introduction, ...] = attrs.field(default=(), converter=_introductions)

    @property
    def probes(self) -> int:
        return len(self.addresses)


@attrs.frozen
class ProbeAnswer:
    """What came back for a :class:`ProbeJob`, address by address.

    ``rtts`` holds the best round-trip time in milliseconds, ``None`` where no reply
    came.  ``errors`` holds why a request could not even be sent (``No buffer space
    available`` when the neighbour table is full, ``Network is unreachable``...),
    ``None`` where it went out.
    """

    namespace: str
    rtts: tuple[float | None, ...] = attrs.field(converter=_times)
    errors: tuple[str | None, ...] = attrs.field(converter=_reasons)


@functools.lru_cache(maxsize=65536)
def family_of(address: str) -> int:
    """4 or 6 (a check asks this of the same few hundred addresses many times)."""
    return 4 if ipaddress.ip_address(address).version == 4 else 6


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# -- echoes -----------------------------------------------------------------------------
def echo_request(family: int, ident: int, sequence: int, payload: bytes = b"") -> bytes:
    """An ICMP (``family`` 4) or ICMPv6 (6) echo request, checksummed where it is ours."""
    kind = ECHO_REQUEST[family]
    head = _HEADER.pack(kind, 0, 0, ident & 0xFFFF, sequence & 0xFFFF)
    if family == 6:
        return head + payload
    total = checksum(head + payload)
    return _HEADER.pack(kind, 0, total, ident & 0xFFFF, sequence & 0xFFFF) + payload


def parse_reply(family: int, packet: bytes) -> tuple[int, int] | None:
    """``(identifier, sequence)`` of an echo reply, ``None`` for anything else.

    An IPv4 raw socket hands over the IP header too; an IPv6 one only the ICMPv6
    message.
    """
    if family == 4:
        if len(packet) < 20:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < _HEADER.size:
        return None
    kind, code, _, ident, sequence = _HEADER.unpack_from(packet)
    if kind != ECHO_REPLY[family] or code != 0:
        return None
    return ident, sequence


def reply_filter(family: int) -> tuple[int, int, bytes]:
    """``(level, option, value)`` for ``setsockopt``: let only echo replies in."""
    if family == 4:
        return SOL_RAW, ICMP_FILTER, struct.pack("=I", ~(1 << ECHO_REPLY[4]) & 0xFFFFFFFF)
    words = [0xFFFFFFFF] * 8
    kind = ECHO_REPLY[6]
    words[kind >> 5] &= ~(1 << (kind & 31)) & 0xFFFFFFFF
    return IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words)


# -- introductions ----------------------------------------------------------------------
@functools.lru_cache(maxsize=65536)
def _packed(address: str) -> bytes:
    """An address's bytes (a check builds tens of thousands of frames from a few
    hundred addresses)."""
    return ipaddress.ip_address(address).packed


@functools.lru_cache(maxsize=65536)
def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _ethernet(destination: str, source: str, kind: int) -> bytes:
    return _mac_bytes(destination) + _mac_bytes(source) + struct.pack("!H", kind)


def arp_request(mac: str, address: str, peer_mac: str, peer_address: str) -> bytes:
    """Who has ``peer_address``? Tell ``address`` (at ``mac``): sent to ``peer_mac``."""
    body = _ARP.pack(
        1,  # Ethernet
        0x0800,  # IPv4
        6,
        4,
        1,  # request
        _mac_bytes(mac),
        _packed(address),
        bytes(6),
        _packed(peer_address),
    )
    return _ethernet(peer_mac, mac, ETH_ARP) + body


def neighbour_solicitation(mac: str, address: str, peer_mac: str, peer_address: str) -> bytes:
    """An RFC 4861 neighbour solicitation for ``peer_address``, unicast to it, from
    ``address`` with our MAC in a source link-layer address option (hop limit 255,
    as the receiver insists)."""
    source, target = _packed(address), _packed(peer_address)
    option = struct.pack("!BB", 1, 1) + _mac_bytes(mac)
    message = struct.pack("!BBHI", NEIGHBOUR_SOLICITATION, 0, 0, 0) + target + option
    pseudo = source + target + struct.pack("!I3xB", len(message), IPPROTO_ICMPV6)
    total = checksum(pseudo + message)
    message = message[:2] + struct.pack("!H", total) + message[4:]
    header = struct.pack("!IHBB", 6 << 28, len(message), IPPROTO_ICMPV6, 255)
    return _ethernet(peer_mac, mac, ETH_IPV6) + header + source + target + message


#: A probe whose reply took longer than this (seconds) counts as lost.
TIMEOUT = 0.1


@attrs.frozen
class Probe:
    """One echo request: ``sent`` and ``answered`` (``None``: no reply), in seconds."""

    sent: float
    answered: float | None = None

    def ok(self, timeout: float = TIMEOUT) -> bool:
        """Answered, and within ``timeout`` of being sent."""
        return self.answered is not None and self.answered - self.sent <= timeout
