"""See what crosses a link: packet capture, interactive exec and shell, flow telemetry.

:mod:`~netns_kit.capture.capture` (``lab.capture``), :mod:`~netns_kit.capture.pcap`
(classic pcap files, read without extras), :mod:`~netns_kit.capture.decode` (one-line
summaries through ``dpkt``), :mod:`~netns_kit.capture.where` (what a capture listens
on), :mod:`~netns_kit.capture.cli` (``netns-kit capture`` and ``shell``).
"""

from netns_kit.capture.capture import Capture, CaptureError, Packet, Summary, packets_of
from netns_kit.capture.pcap import PcapError, count, read

__all__ = [
    "Capture",
    "CaptureError",
    "Packet",
    "PcapError",
    "Summary",
    "count",
    "packets_of",
    "read",
]
