"""Link shaping and faults on the real kernel, in isolated labs.  Needs root and iperf3.

The qdiscs are read back with ``tc -j qdisc show`` through ``subprocess``,
independently of the library.  Throughput is measured with iperf3 for 3 s a run, few
runs, with the ranges the issue gives: the machine is shared and loaded, and a
range is a bound on a rate, not a timing.  Traffic only runs between the lab's own
namespaces.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ci_require import feature_skip
from narrow import veth

from netns_kit import CommandError, KernelFeatureMissingError, Lab, VethPair

from .conftest import Kernel, sh

needs_iperf3 = pytest.mark.skipif(
    shutil.which("iperf3") is None, reason="iperf3 is not installed (apt-get install iperf3)"
)
RED, BLUE = "10.77.0.1", "10.77.0.2"


def netem_missing() -> str | None:
    """Why netem cannot be tested here, or None when the kernel has it."""
    probe = ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
    done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    if done.returncode == 0:
        return None
    return feature_skip("netem", f"is missing (no sch_netem qdisc): {done.stderr.strip()}")


NETEM_MISSING = netem_missing() if shutil.which("unshare") else "no unshare to probe netem"


def qdiscs(namespace: str) -> dict[str, dict[str, Any]]:
    """Each device's root qdisc, by device, as tc says: noqueue is left out."""
    out = sh("tc", "-n", namespace, "-j", "qdisc", "show")
    entries = json.loads(out) if out.strip() else []
    return {e["dev"]: e for e in entries if e.get("root") and e["kind"] != "noqueue"}


def operstate_up(namespace: str, dev: str) -> None:
    """Wait (bounded) until ``dev`` reports operstate UP: linkwatch sets it a little
    after the carrier, so a fresh link may carry pings and still say DOWN."""
    for _ in range(100):
        (entry,) = json.loads(sh("ip", "-n", namespace, "-j", "link", "show", "dev", dev))
        if entry.get("operstate") == "UP":
            return
        time.sleep(0.05)
    raise AssertionError(f"{namespace}/{dev} never reported UP")


@pytest.fixture
def pair_lab(prefix: str) -> Iterator[tuple[Lab, VethPair]]:
    """red and blue on one veth pair, addressed; the lab is torn down afterwards."""
    with Lab(prefix, isolated=True) as lab:
        red = lab.namespace(f"{prefix}-red")
        blue = lab.namespace(f"{prefix}-blue")
        pair = veth(lab.link(red, blue, addresses=(f"{RED}/24", f"{BLUE}/24"), names=("r0", "b0")))
        yield lab, pair


@needs_iperf3
def test_rate_change_and_unshape(prefix: str, kernel: Kernel) -> None:
    red, blue = f"{prefix}-red", f"{prefix}-blue"
    with Lab(prefix, isolated=True) as lab:
        lab.namespace(red)
        lab.namespace(blue)
        pair = veth(lab.link(red, blue, addresses=(f"{RED}/24", f"{BLUE}/24"), rate="20mbit"))
        for where, dev in ((red, pair.name), (blue, pair.peer)):
            found = qdiscs(where)
            assert list(found) == [dev]
            assert found[dev]["kind"] == "tbf"
            assert found[dev]["options"]["rate"] == 20_000_000 // 8  # bytes/s
        assert 14 <= lab.throughput(red, BLUE, seconds=3).mbit_per_s <= 21

        pair.shape(rate="5mbit")
        assert qdiscs(red)[pair.name]["options"]["rate"] == 5_000_000 // 8
        assert qdiscs(blue)[pair.peer]["options"]["rate"] == 5_000_000 // 8
        assert 3.5 <= lab.throughput(red, BLUE, seconds=3).mbit_per_s <= 5.3

        pair.unshape()
        assert qdiscs(red) == {} and qdiscs(blue) == {}
        assert lab.throughput(red, BLUE, seconds=3).mbit_per_s > 100
        snap = lab.snapshot()
        assert snap[red].link(pair.name).qdisc is None
        assert lab.processes == []  # every iperf3 server stopped
    assert not [n for n in kernel.namespaces() if n.startswith(prefix)]


@needs_iperf3
def test_one_way_shaping(pair_lab: tuple[Lab, VethPair]) -> None:
    lab, pair = pair_lab
    red = pair.namespace
    assert red is not None
    pair.shape(rate="5mbit", direction="a->b")
    assert list(qdiscs(red)) == [pair.name]
    assert pair.peer_namespace is not None and qdiscs(pair.peer_namespace) == {}
    assert 3.5 <= lab.throughput(red, BLUE, seconds=3).mbit_per_s <= 5.3
    # -R: blue sends, through its unshaped end
    assert lab.throughput(red, BLUE, seconds=3, reverse=True).mbit_per_s > 100


def test_shaping_reads_back_into_the_snapshot(pair_lab: tuple[Lab, VethPair]) -> None:
    lab, pair = pair_lab
    pair.shape(rate="10mbit", direction="b->a")
    snap = lab.snapshot()
    assert pair.namespace is not None and pair.peer_namespace is not None
    assert snap[pair.namespace].link(pair.name).qdisc is None
    blue_end = snap[pair.peer_namespace].link(pair.peer).qdisc
    assert blue_end is not None
    assert (blue_end.kind, blue_end.rate, blue_end.latency) == ("tbf", 10_000_000, 50_000)
    assert blue_end.label == "10mbit"
    (link,) = lab.topology().links
    assert (link.shape, link.direction) == (blue_end.shape, "b->a")


def test_down_stops_pings_and_up_restores_them(pair_lab: tuple[Lab, VethPair]) -> None:
    lab, pair = pair_lab
    red = lab[f"{lab.name}-red"]
    lab.route("10.88.0.0/16", via=BLUE, namespace=red)  # goes when red's end goes down
    assert red.ping(BLUE, count=1)
    pair.down("b")  # blue's end: red's end loses its carrier, keeps its routes
    assert not red.ping(BLUE, count=2, interval=0.2, timeout=0.5)
    pair.up("b")
    assert red.ping(BLUE, count=3, interval=0.2, timeout=2)

    pair.down()  # both ends: the kernel drops red's routes through its end
    kernel_routes = sh("ip", "-n", red.name, "-j", "route", "show")
    assert "10.88.0.0/16" not in kernel_routes
    with pytest.raises(CommandError, match="unreachable"):
        red.ping(BLUE, count=1, timeout=0.5)
    pair.up()
    assert red.ping(BLUE, count=3, interval=0.2, timeout=2)
    routes = json.loads(sh("ip", "-n", red.name, "-j", "route", "show"))
    assert {"dst": "10.88.0.0/16", "gateway": BLUE} in [
        {k: r.get(k) for k in ("dst", "gateway")} for r in routes
    ]  # put back by up()


@pytest.mark.skipif(
    NETEM_MISSING is None,
    reason=feature_skip("netem", "is present: the error path for a missing netem is moot"),
)
def test_missing_netem_leaves_the_lab_as_it_was(pair_lab: tuple[Lab, VethPair]) -> None:
    lab, pair = pair_lab
    pair.shape(rate="20mbit")
    assert pair.namespace is not None and pair.peer_namespace is not None
    operstate_up(pair.namespace, pair.name)  # the kernel sets it a moment after carrier
    operstate_up(pair.peer_namespace, pair.peer)
    before = lab.snapshot()
    tc_before = (qdiscs(pair.namespace), qdiscs(pair.peer_namespace))
    with pytest.raises(KernelFeatureMissingError, match="modprobe sch_netem") as raised:
        pair.shape(delay="10ms")
    assert raised.value.module == "sch_netem"
    with pytest.raises(KernelFeatureMissingError):
        lab.link(lab[f"{lab.name}-red"], lab[f"{lab.name}-blue"], delay="10ms", names=("x", "y"))
    assert lab.snapshot() == before  # no half-shaped link, no half-made one
    assert (qdiscs(pair.namespace), qdiscs(pair.peer_namespace)) == tc_before
    assert pair.shaping is not None and pair.shaping.rate == 20_000_000


@pytest.mark.skipif(NETEM_MISSING is not None, reason=NETEM_MISSING or "")
def test_delay_adds_to_the_round_trip(pair_lab: tuple[Lab, VethPair]) -> None:
    lab, pair = pair_lab
    red = lab[f"{lab.name}-red"]
    base = red.ping(BLUE, count=3, interval=0.2)
    pair.shape(delay="10ms")  # each way: the round trip grows by 20 ms
    slow = red.ping(BLUE, count=3, interval=0.2, timeout=2)
    assert base.rtt_avg is not None and slow.rtt_avg is not None
    assert slow.rtt_avg >= base.rtt_avg + 2 * 10
