"""Ready means ready: when a build returns, IPv4 and IPv6 both work at once.

New IPv6 addresses stay tentative while duplicate address detection runs, and an
address added before its link has carrier stays unusable for about a second; a
router whose link-local address is tentative does not resolve its neighbours.  So
the first seconds of an IPv6 lab used to fail (issue 9, defect 6).  Every ping here
is the first packet after the build, with a one-second timeout.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from netns_kit import Lab


@pytest.mark.parametrize("batched", [False, True], ids=["builders", "batch"])
def test_an_ipv6_router_lab_pings_as_soon_as_it_is_built(
    batched: bool, uid: str, tmp_path: Path
) -> None:
    name = f"nk6-{uid}"
    with Lab(name, isolated=True, state_dir=tmp_path) as lab:
        with lab.batch() if batched else contextlib.nullcontext():
            a, b, r = (lab.namespace(f"{name}-{x}") for x in "abr")
            lab.link(a, r, addresses=("fd00:1::1/64", "fd00:1::2/64"))
            lab.link(r, b, addresses=("fd00:2::2/64", "fd00:2::1/64"))
            lab.route("default", via="fd00:1::2", namespace=a)
            lab.route("default", via="fd00:2::2", namespace=b)
            lab.sysctl("net.ipv6.conf.all.forwarding", 1, namespace=r)
        first = a.ping("fd00:2::1", count=1, timeout=1)
        assert first, first
        assert first.rtt_avg is not None and first.rtt_avg < 100  # no ND or DAD stall


@pytest.mark.parametrize("batched", [False, True], ids=["builders", "batch"])
def test_a_dual_stack_bridge_lab_pings_as_soon_as_it_is_built(
    batched: bool, uid: str, tmp_path: Path
) -> None:
    name = f"nkd-{uid}"
    with Lab(name, isolated=True, state_dir=tmp_path) as lab:
        with lab.batch() if batched else contextlib.nullcontext():
            bridge = lab.bridge("br0", "fd00:3::9/64")
            red, blue = lab.namespace(f"{name}-red"), lab.namespace(f"{name}-blue")
            lab.link(red, bridge, addresses=("fd00:3::1/64", None))
            lab.link(blue, bridge, addresses=("fd00:3::2/64", None))
            lab.link(red, blue, addresses=("10.5.0.1/24", "10.5.0.2/24"))
        for target in ("fd00:3::2", "fd00:3::9", "10.5.0.2"):
            first = red.ping(target, count=1, timeout=1)
            assert first, (target, first)
