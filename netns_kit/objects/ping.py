"""Ping results.

``ping`` has no JSON output, so reading its summary lines is the one piece of text
parsing the library does.  Its loss and round-trip figures are what a notebook user
wants to look at after an experiment.
"""

from __future__ import annotations

import re

import attrs

_TRANSMITTED = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_LOSS = re.compile(r"([\d.]+)% packet loss")
_RTT = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/[\d.]+ ms")


@attrs.frozen
class PingResult:
    """How a ping went.  Truthy when at least one reply came back."""

    address: str
    sent: int = 0
    received: int = 0
    loss: float = 100.0
    rtt_min: float | None = None
    rtt_avg: float | None = None
    rtt_max: float | None = None

    def __bool__(self) -> bool:
        return self.received > 0

    @classmethod
    def parse(cls, address: str, output: str) -> PingResult:
        counts = _TRANSMITTED.search(output)
        if counts is None:
            return cls(address)
        loss = _LOSS.search(output)
        rtt = _RTT.search(output)
        times = tuple(float(x) for x in rtt.groups()) if rtt else (None, None, None)
        return cls(
            address,
            sent=int(counts.group(1)),
            received=int(counts.group(2)),
            loss=float(loss.group(1)) if loss else 100.0,
            rtt_min=times[0],
            rtt_avg=times[1],
            rtt_max=times[2],
        )
