"""One-line packet summaries through ``dpkt`` (the ``capture`` extra), tcpdump-like.

``dpkt`` is pure Python and well kept; we hand it the network layer that
:func:`netns_kit.capture.pcap.network` found (so Linux cooked headers from ``-i any``
work the same as Ethernet).  Without it the summary is what
:func:`~netns_kit.capture.pcap.classify` knows: addresses, ports and protocol.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any

from netns_kit.capture.pcap import Basic, network


@functools.cache
def _dpkt() -> Any:
    """``dpkt`` (the capture extra), imported on first use: it takes 60 ms, which
    ``import netns_kit`` should not pay; ``None`` when it is not installed."""
    if importlib.util.find_spec("dpkt") is None:
        return None
    return importlib.import_module("dpkt")


_ICMP = {0: "echo reply", 3: "unreachable", 8: "echo request", 11: "time exceeded"}
_ICMP6 = {
    128: "echo request",
    129: "echo reply",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    133: "router solicitation",
}
_TCP_FLAGS = (("F", 0x01), ("S", 0x02), ("R", 0x04), ("P", 0x08), (".", 0x10))


def available() -> bool:
    """Whether ``dpkt`` is installed (``pip install netns-kit[capture]``)."""
    return _dpkt() is not None


def basic_summary(basic: Basic) -> str:
    """What the summary says without ``dpkt``."""
    if basic.sport is not None:
        return f"{basic.src}.{basic.sport} > {basic.dst}.{basic.dport}: {basic.protocol}"
    return f"{basic.src} > {basic.dst}: {basic.protocol}"


def summary(linktype: int, data: bytes, basic: Basic) -> str:
    """A tcpdump-like line for one packet (``dpkt`` when installed)."""
    dpkt = _dpkt()
    if dpkt is None:
        return basic_summary(basic)
    found = network(linktype, data)
    if found is None:
        return basic_summary(basic)
    kind, body, _, _ = found
    try:
        return _decoded(kind, body, basic) or basic_summary(basic)
    except (dpkt.UnpackError, ValueError, IndexError, AttributeError):
        return basic_summary(basic)


def _decoded(kind: int, body: bytes, basic: Basic) -> str | None:
    dpkt = _dpkt()
    if kind == 0x0806:
        arp: Any = dpkt.arp.ARP(body)
        if arp.op == dpkt.arp.ARP_OP_REQUEST:
            return f"ARP, who-has {basic.dst} tell {basic.src}"
        if arp.op == dpkt.arp.ARP_OP_REPLY:
            mac = ":".join(f"{b:02x}" for b in arp.sha)
            return f"ARP, {basic.src} is-at {mac}"
        return None
    if kind == 0x0800:
        packet: Any = dpkt.ip.IP(body)
    elif kind == 0x86DD:
        packet = dpkt.ip6.IP6(body)
    else:
        return None
    inner = packet.data
    if isinstance(inner, dpkt.icmp.ICMP | dpkt.icmp6.ICMP6):
        names = _ICMP if isinstance(inner, dpkt.icmp.ICMP) else _ICMP6
        what = names.get(inner.type, f"type {inner.type}")
        echo = inner.data
        if isinstance(echo, dpkt.icmp.ICMP.Echo | dpkt.icmp6.ICMP6.Echo):
            what += f", id {echo.id}, seq {echo.seq}"
        return f"{basic.src} > {basic.dst}: {basic.protocol} {what}, length {len(inner)}"
    if isinstance(inner, dpkt.tcp.TCP):
        flags = "".join(mark for mark, bit in _TCP_FLAGS if inner.flags & bit) or "none"
        return (
            f"{basic.src}.{inner.sport} > {basic.dst}.{inner.dport}: TCP [{flags}] "
            f"seq {inner.seq}, ack {inner.ack}, win {inner.win}, length {len(inner.data)}"
        )
    if isinstance(inner, dpkt.udp.UDP):
        return (
            f"{basic.src}.{inner.sport} > {basic.dst}.{inner.dport}: UDP, length {len(inner.data)}"
        )
    return None
