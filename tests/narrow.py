"""Narrowing helpers the tests share (for ``mypy --strict`` over the tests)."""

from __future__ import annotations

from netns_kit import VethPair
from netns_kit.objects.vxlan import VxlanPair


def veth(pair: VethPair | VxlanPair) -> VethPair:
    """``Lab.link`` on one machine: a veth pair (a VXLAN pair only across machines)."""
    assert isinstance(pair, VethPair), f"expected a veth pair, got {pair!r}"
    return pair
