"""The commonest ``ip -batch`` lines of a lab, sent as rtnetlink requests, without a process.

At 10,000 namespaces a build spends most of its time starting ``ip``: each namespace
gets its own ``ip -n NS -batch -`` (its addresses, links up, routes), and one ``ip``
process costs 2-3 ms, whatever it then does in well under a millisecond.  The shell
executor already enters a namespace from one of its threads (``setns``) to start that
process; for the few line shapes a lab writes most, this module lets the thread send
the same requests itself, on a netlink socket opened inside the namespace.

It is not an iproute2 replacement: :func:`parse` knows exactly these shapes, as
:mod:`netns_kit.objects` writes them, and says ``None`` for anything else, so the
whole batch then goes to ``ip`` as before:

* ``link set dev DEV [up|down] [alias WORD] [master DEV] [nomaster]`` and
  ``link set dev DEV addrgenmode none`` (each line one request, as ``ip`` sends it);
* ``addr add CIDR dev DEV [nodad]``;
* ``route add PREFIX|default via ADDRESS [dev DEV]`` and ``route add PREFIX dev DEV``.

What comes back is what ``ip -batch`` would print: ``Error: MESSAGE.`` when the kernel
explains (extended ack), else ``RTNETLINK answers: REASON``, then ``Command failed
-:LINE``; the batch stops at the first failure unless forced, and exits 1.  So the
runner's split of a batch into per-command results works unchanged.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Sequence

import attrs

# linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h, linux/netlink.h
_RTM_NEWLINK, _RTM_NEWADDR, _RTM_NEWROUTE = 16, 20, 24
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_NLMSG_ERROR = 2
_NLM_F_ACK_TLVS = 0x200
_NLMSGERR_ATTR_MSG = 1
_NETLINK_CAP_ACK, _NETLINK_EXT_ACK = 10, 11
_SOL_NETLINK = 270
_IFF_UP = 0x1
_IFLA_MASTER, _IFLA_IFALIAS, _IFLA_AF_SPEC = 10, 20, 26
_IFLA_INET6_ADDR_GEN_MODE = 8
_IN6_ADDR_GEN_MODE_NONE = 1
_IFA_ADDRESS, _IFA_LOCAL, _IFA_FLAGS = 1, 2, 8
_IFA_F_NODAD = 0x02
_RTA_DST, _RTA_OIF, _RTA_GATEWAY = 1, 4, 5
_RT_TABLE_MAIN, _RTPROT_BOOT, _RTN_UNICAST = 254, 3, 1
_RT_SCOPE_UNIVERSE, _RT_SCOPE_LINK = 0, 253


@attrs.frozen
class LinkSet:
    """``link set dev DEV ...``: flags to change, and attributes to set."""

    device: str
    up: bool | None = None
    alias: str | None = None
    master: str | None = None  # "" for nomaster
    addrgen_none: bool = False


@attrs.frozen
class AddrAdd:
    """``addr add CIDR dev DEV [nodad]``."""

    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    device: str
    nodad: bool = False


@attrs.frozen
class RouteAdd:
    """``route add PREFIX|default [via ADDRESS] [dev DEV]``."""

    prefix: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # None: default
    via: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    device: str | None


Request = LinkSet | AddrAdd | RouteAdd


def parse(line: str) -> Request | None:
    """The request a batch line stands for, or ``None`` when it is not one of the
    shapes above (then ``ip`` runs the batch)."""
    words = line.split()
    try:
        if words[:3] == ["link", "set", "dev"] and len(words) >= 5:
            return _link_set(words[3], words[4:])
        if words[:2] == ["addr", "add"] and len(words) in (5, 6) and words[3] == "dev":
            if len(words) == 6 and words[5] != "nodad":
                return None
            address = ipaddress.ip_interface(words[2])
            if "/" not in words[2] or (address.version == 4 and address.ip.is_loopback):
                return None  # ip gives 127.0.0.0/8 host scope: leave it to ip
            return AddrAdd(address, words[4], len(words) == 6)
        if words[:2] == ["route", "add"] and len(words) >= 5:
            return _route_add(words[2], words[3:])
    except ValueError:
        return None
    return None


def _link_set(device: str, rest: list[str]) -> LinkSet | None:
    if rest == ["addrgenmode", "none"]:
        return LinkSet(device, addrgen_none=True)
    up: bool | None = None
    alias: str | None = None
    master: str | None = None
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in ("up", "down") and up is None:
            up, i = word == "up", i + 1
        elif word == "alias" and alias is None and i + 1 < len(rest):
            alias, i = rest[i + 1], i + 2
        elif word == "master" and master is None and i + 1 < len(rest):
            master, i = rest[i + 1], i + 2
        elif word == "nomaster" and master is None:
            master, i = "", i + 1
        else:
            return None
    return LinkSet(device, up, alias, master)


def _route_add(target: str, rest: list[str]) -> RouteAdd | None:
    prefix = None if target == "default" else ipaddress.ip_network(target, strict=True)
    via = device = None
    i = 0
    while i + 1 < len(rest):
        if rest[i] == "via" and via is None:
            via = ipaddress.ip_address(rest[i + 1])
        elif rest[i] == "dev" and device is None:
            device = rest[i + 1]
        else:
            return None
        i += 2
    if i != len(rest) or (via is None and device is None):
        return None
    if via is not None and prefix is not None and via.version != prefix.version:
        return None  # a gateway of the other family is RTA_VIA: leave it to ip
    if prefix is None and via is None:
        return None
    return RouteAdd(prefix, via, device)


def parse_all(lines: Sequence[str]) -> list[Request] | None:
    """Every line's request, or ``None`` if any line is not a known shape."""
    requests = []
    for line in lines:
        request = parse(line)
        if request is None:
            return None
        requests.append(request)
    return requests


# -- messages ---------------------------------------------------------------------------
def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


class Fatal(Exception):
    """A line ``ip`` itself refuses before it asks the kernel: it ends the whole
    batch (forced or not) with exit code 255 and these words."""


def _index(device: str) -> int:
    """The device's index in the calling thread's namespace; OSError(ENODEV) if none."""
    try:
        return socket.if_nametoindex(device)
    except OSError:
        raise OSError(errno.ENODEV, f'Cannot find device "{device}"') from None


def message(request: Request, seq: int) -> tuple[int, int, bytes]:
    """(type, flags, body) of the netlink message for ``request``; devices are
    looked up in the calling thread's namespace."""
    if isinstance(request, LinkSet):
        index = _index(request.device)
        flags = change = 0
        if request.up is not None:
            change = _IFF_UP
            flags = _IFF_UP if request.up else 0
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)
        if request.alias is not None:
            body += _attr(_IFLA_IFALIAS, request.alias.encode() + b"\0")
        if request.master is not None:
            try:
                master = _index(request.master) if request.master else 0
            except OSError:
                raise Fatal(
                    f'Error: argument "{request.master}" is wrong: Device does not exist\n'
                ) from None
            body += _attr(_IFLA_MASTER, struct.pack("=I", master))
        if request.addrgen_none:
            mode = _attr(_IFLA_INET6_ADDR_GEN_MODE, struct.pack("=B", _IN6_ADDR_GEN_MODE_NONE))
            body += _attr(_IFLA_AF_SPEC, _attr(socket.AF_INET6, mode))
        return _RTM_NEWLINK, 0, body
    if isinstance(request, AddrAdd):
        index = _index(request.device)
        address = request.address
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        ifa_flags = _IFA_F_NODAD if request.nodad else 0
        body = struct.pack("=BBBBI", family, address.network.prefixlen, ifa_flags, 0, index)
        packed = address.ip.packed
        body += _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed)
        if ifa_flags:
            body += _attr(_IFA_FLAGS, struct.pack("=I", ifa_flags))
        return _RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL, body
    prefix, via = request.prefix, request.via
    version = prefix.version if prefix is not None else (via.version if via is not None else 4)
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    scope = _RT_SCOPE_LINK if via is None and version == 4 else _RT_SCOPE_UNIVERSE
    length = prefix.prefixlen if prefix is not None else 0
    body = struct.pack(
        "=BBBBBBBBI",
        family,
        length,
        0,
        0,
        _RT_TABLE_MAIN,
        _RTPROT_BOOT,
        scope,
        _RTN_UNICAST,
        0,
    )
    if prefix is not None:
        body += _attr(_RTA_DST, prefix.network_address.packed)
    if via is not None:
        body += _attr(_RTA_GATEWAY, via.packed)
    if request.device is not None:
        body += _attr(_RTA_OIF, struct.pack("=i", _index(request.device)))
    return _RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL, body


def _said(code: int, extack: str | None) -> str:
    """What ``ip`` prints for a refused request."""
    if extack:
        return f"Error: {extack}."
    return f"RTNETLINK answers: {os.strerror(code)}"


def _ack(reply: bytes, seq: int) -> tuple[int, str | None] | None:
    """(error, extended-ack message) of the reply to ``seq``; None if it is not one."""
    offset = 0
    while offset + 16 <= len(reply):
        length, kind, flags, got, _ = struct.unpack_from("=IHHII", reply, offset)
        if length < 16:
            break
        if kind == _NLMSG_ERROR and got == seq:
            (code,) = struct.unpack_from("=i", reply, offset + 16)
            message: str | None = None
            if code and flags & _NLM_F_ACK_TLVS:
                # after the error code: our request's header (capped), then the TLVs
                at = offset + 20 + 16
                while at + 4 <= offset + length:
                    size, attr = struct.unpack_from("=HH", reply, at)
                    if size < 4:
                        break
                    if attr == _NLMSGERR_ATTR_MSG:
                        message = reply[at + 4 : at + size].split(b"\0", 1)[0].decode()
                    at += size + (-size % 4)
            return -code, message
        offset += length + (-length % 4)
    return None


def run_batch(requests: Sequence[Request], force: bool) -> tuple[int, str]:
    """Send ``requests`` (one per line of a batch) from the calling thread's network
    namespace, in order, each acknowledged before the next: ``(exit code, stderr)``
    as ``ip [-force] -batch -`` gives them."""
    said: list[str] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0) as rtnl:
        rtnl.setsockopt(_SOL_NETLINK, _NETLINK_EXT_ACK, 1)
        rtnl.setsockopt(_SOL_NETLINK, _NETLINK_CAP_ACK, 1)  # an error quotes only our header
        rtnl.bind((0, 0))
        for number, request in enumerate(requests, 1):
            try:
                kind, flags, body = message(request, number)
            except Fatal as fatal:
                return 255, "".join(f"{line}\n" for line in said) + f"{fatal}\n"
            except OSError as error:  # a device that is not there
                said += [error.strerror or str(error), f"Command failed -:{number}"]
                if not force:
                    break
                continue
            header = struct.pack(
                "=IHHII", 16 + len(body), kind, _NLM_F_REQUEST | _NLM_F_ACK | flags, number, 0
            )
            rtnl.send(header + body)
            answer = None
            while answer is None:
                answer = _ack(rtnl.recv(65536), number)
            code, extack = answer
            if code:
                said += [_said(code, extack), f"Command failed -:{number}"]
                if not force:
                    break
    return (1 if said else 0), "".join(f"{line}\n" for line in said)
