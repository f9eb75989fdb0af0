"""Classic pcap files, read with :mod:`struct`: headers, records, and what each packet is.

tcpdump ``-w`` writes classic pcap (not pcapng): a 24-byte file header, then per
packet a 16-byte record header (seconds, micro- or nanoseconds, captured length,
length on the wire) and the captured bytes.  Reading that needs no library, so a
capture can always be counted.  :func:`classify` names each packet's addresses and
protocol from its first headers (Ethernet, Linux cooked v1/v2 for ``-i any``, raw
IP; ARP, IPv4, IPv6; TCP, UDP, ICMP), enough for counts by protocol and by pair;
:mod:`netns_kit.capture.decode` adds one-line summaries through ``dpkt`` when the
``capture`` extra is installed.

A file that a capture is still writing, or that a killed tcpdump left, may end in
the middle of a record: :func:`read` stops before it and says so (``complete``).
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import attrs

from netns_kit.errors import NetnsKitError

#: Link types (``DLT``/``LINKTYPE`` numbers) this reader knows.
ETHERNET = 1
RAW = 101
LINUX_SLL = 113
LINUX_SLL2 = 276

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", False),
    b"\xa1\xb2\xc3\xd4": (">", False),
    b"\x4d\x3c\xb2\xa1": ("<", True),
    b"\xa1\xb2\x3c\x4d": (">", True),
}

_IP_PROTOCOLS = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP"}
_ETHERTYPES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP", 0x8100: "802.1Q", 0x88CC: "LLDP"}


class PcapError(NetnsKitError):
    """Not a classic pcap file (a pcapng file, say, or no file at all)."""


@attrs.frozen
class Header:
    """A pcap file's header: its byte order, time resolution, snap length, link type."""

    order: str
    nanoseconds: bool
    snaplen: int
    linktype: int


@attrs.frozen
class Record:
    """One packet as the file holds it: when, its length on the wire, the bytes kept."""

    time: float
    length: int
    data: bytes = attrs.field(repr=False)


@attrs.frozen
class PcapFile:
    """A whole file: its header, its records, and whether it ended on a record's end."""

    header: Header
    records: tuple[Record, ...]
    complete: bool
    trailing: int = 0  # bytes of a record cut short

    @property
    def packets(self) -> int:
        return len(self.records)

    @property
    def bytes(self) -> int:
        return sum(r.length for r in self.records)


def parse_header(data: bytes) -> Header:
    if len(data) < 24:
        raise PcapError(f"too short for a pcap header ({len(data)} bytes)")
    found = _MAGIC.get(data[:4])
    if found is None:
        hint = " (a pcapng file: tcpdump -w writes classic pcap)" if data[:4] == b"\n\r\r\n" else ""
        raise PcapError(f"not a classic pcap file: magic {data[:4].hex()}{hint}")
    order, nano = found
    _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(order + "HHiIII", data[4:24])
    return Header(order, nano, snaplen, linktype & 0x0FFFFFFF)


def parse(data: bytes) -> PcapFile:
    """A file's bytes as header and records; a record cut short ends the reading."""
    header = parse_header(data)
    fmt = struct.Struct(header.order + "IIII")
    scale = 1e-9 if header.nanoseconds else 1e-6
    records: list[Record] = []
    at = 24
    end = len(data)
    while at + 16 <= end:
        seconds, fraction, kept, wire = fmt.unpack_from(data, at)
        if at + 16 + kept > end:
            break
        body = data[at + 16 : at + 16 + kept]
        records.append(Record(seconds + fraction * scale, wire, body))
        at += 16 + kept
    return PcapFile(header, tuple(records), at == end, end - at)


def read(path: str | os.PathLike[str]) -> PcapFile:
    """Read a classic pcap file (see :func:`parse`)."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise PcapError(f"cannot read {os.fspath(path)}: {error.strerror}") from None
    return parse(data)


def count(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Packets and bytes (on the wire) in a pcap file."""
    found = read(path)
    return found.packets, found.bytes


@attrs.frozen
class Basic:
    """What a packet is, from its first headers: addresses, protocol, ports."""

    src: str
    dst: str
    protocol: str
    sport: int | None = None
    dport: int | None = None
    #: The first byte past the IP header (ICMP type, say), when there is one.
    kind: int | None = None


def network(linktype: int, data: bytes) -> tuple[int, bytes, str, str] | None:
    """The network layer: (ethertype, its bytes, link source, link destination)."""
    if linktype == ETHERNET and len(data) >= 14:
        kind = struct.unpack_from("!H", data, 12)[0]
        offset = 14
        while kind == 0x8100 and len(data) >= offset + 4:  # VLAN tags
            kind = struct.unpack_from("!H", data, offset + 2)[0]
            offset += 4
        return kind, data[offset:], _mac(data[6:12]), _mac(data[0:6])
    if linktype == LINUX_SLL and len(data) >= 16:
        size = struct.unpack_from("!H", data, 4)[0]
        source = _mac(data[6 : 6 + min(size, 8)])
        return struct.unpack_from("!H", data, 14)[0], data[16:], source, ""
    if linktype == LINUX_SLL2 and len(data) >= 20:
        size = data[11]
        source = _mac(data[12 : 12 + min(size, 8)])
        return struct.unpack_from("!H", data, 0)[0], data[20:], source, ""
    if linktype == RAW and data:
        return (0x0800 if data[0] >> 4 == 4 else 0x86DD), data, "", ""
    return None


def classify(linktype: int, data: bytes) -> Basic:
    """Addresses and protocol of one captured packet (``?`` where unknown)."""
    found = network(linktype, data)
    if found is None:
        return Basic("?", "?", f"linktype {linktype}")
    kind, body, link_src, link_dst = found
    if kind == 0x0806 and len(body) >= 28:
        return Basic(_ip4(body[14:18]), _ip4(body[24:28]), "ARP", kind=body[7])
    if kind == 0x0800 and len(body) >= 20:
        head = (body[0] & 0x0F) * 4
        proto = body[9]
        return _transport(_ip4(body[12:16]), _ip4(body[16:20]), proto, body[head:])
    if kind == 0x86DD and len(body) >= 40:
        src, dst = str(ipaddress.IPv6Address(body[8:24])), str(ipaddress.IPv6Address(body[24:40]))
        return _transport(src, dst, body[6], body[40:])
    name = _ETHERTYPES.get(kind, f"ethertype 0x{kind:04x}")
    return Basic(link_src or "?", link_dst or "?", name)


def _transport(src: str, dst: str, proto: int, rest: bytes) -> Basic:
    name = _IP_PROTOCOLS.get(proto, f"IP proto {proto}")
    if proto in (6, 17, 132) and len(rest) >= 4:
        sport, dport = struct.unpack_from("!HH", rest, 0)
        return Basic(src, dst, name, sport, dport)
    return Basic(src, dst, name, kind=rest[0] if rest else None)


def _ip4(data: bytes) -> str:
    return str(ipaddress.IPv4Address(data))


def _mac(data: bytes) -> str:
    return ":".join(f"{b:02x}" for b in data)


def records(path: str | os.PathLike[str]) -> Iterator[Record]:
    yield from read(path).records
