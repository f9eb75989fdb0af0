"""IPv6 routing on the real kernel: OSPFv3 and IPv6 BGP, FRR and BIRD.

Every lab here has a unique name starting with ``qb`` (namespaces are global), and
every test checks the kernel apart from the library: ``ip -6 -j route``, ``ping -6``,
``/proc``.  A suite that is not installed skips its tests with the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netns_kit import Lab
from netns_kit.daemons import examples, frr

from .test_daemons_real import REPLY_WAIT, ip_json, ping

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="routing daemons need root")

HAVE = {
    "frr": os.access(f"{frr.BIN}/ospf6d", os.X_OK),
    "bird": shutil.which("bird") is not None,
}
SUITES = [
    pytest.param(
        s, marks=pytest.mark.skipif(not HAVE[s], reason=f"{s} is not installed (bootstrap.sh)")
    )
    for s in ("frr", "bird")
]


def ping6(ns: str, address: str, source: str | None = None) -> bool:
    argv = ["ip", "netns", "exec", ns, "ping", "-6", "-c1", f"-W{REPLY_WAIT}"]
    argv += ["-I", source] if source else []
    return subprocess.run([*argv, address], capture_output=True).returncode == 0


def programs(pids: list[int]) -> set[str]:
    """The daemons' program names, read from /proc."""
    found = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            found.add(Path(f"/proc/{pid}/comm").read_text().strip())
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(what: str, condition: Callable[[], bool], bound: float = 10.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < bound:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {bound} s")


@pytest.fixture
def name() -> str:
    return f"qb{secrets.token_hex(3)}"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(tmp_path / "state"))
    yield tmp_path / "state"


def _namespaces(prefix: str) -> list[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize("suite", SUITES)
def test_dual_stack_triangle_every_loopback_pings_every_other(
    suite: str, name: str, state: Path
) -> None:
    started = time.monotonic()
    with Lab(name) as lab:
        r = examples.dual_stack_triangle(lab, name, suite=suite)
        built = time.monotonic() - started
        pids = [d.process.pid for ds in lab.routing.running.values() for d in ds]
        if suite == "frr":
            assert {"zebra", "ospfd", "ospf6d"} <= programs(pids)
        loops6 = {f"fd00:255::{i}" for i in (1, 2, 3)}
        for i, router in enumerate(r, 1):
            mine = f"fd00:255::{i}"
            # the kernel's IPv6 table, read apart from the library: the other
            # loopbacks, through link-local next hops
            routes = {e["dst"]: e for e in ip_json(router.name, "-6", "route", "show")}
            for other in loops6 - {mine}:
                assert other in routes, (router.name, sorted(routes))
                hops = routes[other].get("nexthops") or [routes[other]]
                assert all(h["gateway"].startswith("fe80:") for h in hops), routes[other]
            for other in sorted(loops6 - {mine}):
                assert ping6(router.name, other, source=mine), (router.name, other)
            for j in (1, 2, 3):  # and IPv4 as before
                assert ping(router.name, f"10.255.0.{j}"), (router.name, j)
        print(f"{suite}: dual-stack triangle built and converged in {built:.2f} s")
    wait_for("daemons gone", lambda: not any(alive(p) for p in pids))
    assert not _namespaces(name)


@pytest.mark.parametrize("suite", SUITES)
def test_ipv6_ebgp_hosts_reach_each_other(suite: str, name: str, state: Path) -> None:
    with Lab(name) as lab:
        n = examples.ebgp6(lab, name, suite=suite)
        got = ip_json(n["r1"].name, "-6", "route", "show", "fd00:2::/64")
        assert got and got[0]["protocol"] in ("bgp", "bird"), got
        assert ping6(n["h1"].name, "fd00:2::10")
        assert ping6(n["h2"].name, "fd00:1::10")
        assert ping6(n["h1"].name, "fd00:255::2")  # r2's loopback, announced by r2
        if suite == "frr":
            said = lab.vtysh(n["r1"], "show bgp ipv6 unicast summary")
            assert "fd00:12::2" in said, said
        else:
            said = lab.birdc(n["r1"], "show", "protocols")
            assert "bgp6_" in said and "Established" in said, said
    assert not _namespaces(name)


@pytest.mark.parametrize("suite", SUITES)
def test_ospfv3_over_link_local_only_links(suite: str, name: str, state: Path) -> None:
    """A lab that gives every link a link-local address runs OSPFv3 on its IPv4
    links: the IPv6 loopbacks route through them."""
    with Lab(name, ipv6_link_local=True) as lab:
        with lab.batch():
            r = [
                lab.router(f"{name}r{i}", loopback=[f"10.255.0.{i}/32", f"fd00:255::{i}/128"])
                for i in (1, 2, 3)
            ]
            lab.link(r[0], r[1], addresses=("10.0.12.1/24", "10.0.12.2/24"))
            lab.link(r[1], r[2], addresses=("10.0.23.2/24", "10.0.23.3/24"))
            lab.link(r[2], r[0], addresses=("10.0.13.3/24", "10.0.13.1/24"))
            lab.ospf(suite=suite)
        for i, router in enumerate(r, 1):
            for j in {1, 2, 3} - {i}:
                assert ping6(router.name, f"fd00:255::{j}", source=f"fd00:255::{i}")
    assert not _namespaces(name)


@pytest.mark.parametrize("suite", SUITES)
def test_dual_stack_two_as_ibgp_between_ipv6_loopbacks(suite: str, name: str, state: Path) -> None:
    """iBGP between the IPv6 loopbacks (over OSPFv3) and eBGP over IPv6 carry each
    side's IPv6 host subnet to the other; IPv4 works as before."""
    with Lab(name) as lab:
        n = examples.two_as(lab, name, suite=suite, ipv6=True)
        got = ip_json(n["a2"].name, "-6", "route", "show", "fd00:2::/64")
        assert got and got[0]["protocol"] in ("bgp", "bird"), got  # learned over iBGP
        assert ping6(n["h1"].name, "fd00:2::10")
        assert ping6(n["h2"].name, "fd00:1::10")
        assert ping(n["h1"].name, "192.168.2.10")
        if suite == "frr":
            said = lab.vtysh(n["a2"], "show bgp ipv6 unicast summary")
            assert "fd00:255:1::1" in said, said
        else:
            said = lab.birdc(n["a2"], "show", "protocols")
            up = [ln for ln in said.splitlines() if ln.startswith("bgp6_") and "Established" in ln]
            assert len(up) == 2, said  # a1 and a3, between the IPv6 loopbacks
    assert not _namespaces(name)
