"""Labs over time on the real kernel: measured outages, a spanning-tree ring, shaping
at a set time, and Ctrl-C in the middle of `netns-kit run`.

Every name carries the test's uid and the ``tl`` prefix; every wait is bounded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, Namespace
from netns_kit.objects.link import STP_TIMERS, Bridge, VethPair

from .conftest import Kernel, sh

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean(kernel: Kernel, uid: str, tmp_path: Path) -> Iterator[Path]:
    """The test's state directory; afterwards no namespace with the uid is left."""
    state = tmp_path / "state"
    yield state
    left = [n for n in kernel.namespaces() if uid in n]
    for ns in left:
        sh("ip", "netns", "delete", ns, check=False)
    assert not left, f"namespaces left behind: {left}"


def chain(lab: Lab, uid: str) -> tuple[Namespace, Namespace, Namespace, VethPair]:
    """h1 - r - h2 with static routes; the r - h2 link."""
    h1, r, h2 = (lab.namespace(f"tl{role}-{uid}") for role in ("h1", "r", "h2"))
    lab.link(h1, r, addresses=["10.21.1.1/24", "10.21.1.2/24"])
    far = lab.link(r, h2, addresses=["10.21.2.1/24", "10.21.2.2/24"])
    assert isinstance(far, VethPair)
    lab.route("10.21.2.0/24", via="10.21.1.2", namespace=h1)
    lab.route("10.21.1.0/24", via="10.21.2.1", namespace=h2)
    lab.sysctl("net.ipv4.ip_forward", 1, namespace=r)
    return h1, r, h2, far


def test_a_link_down_for_two_seconds_is_one_outage_of_two_seconds(uid: str, clean: Path) -> None:
    with Lab(f"tl-c-{uid}", isolated=True, state_dir=clean) as lab:
        h1, r, h2, far = chain(lab, uid)
        t = lab.timeline()
        t.at("1s", far.down)
        t.at("3s", "up", target=far)
        run = t.run(watch=[(h1, h2), (h1, r)], interval="10ms", until="4s")
    assert run.method == "raw"
    (outage,) = run.outages((h1, h2))
    assert outage.duration == pytest.approx(2.0, abs=0.1)
    down, up = run.events
    assert down.started - 0.03 <= outage.start <= down.finished
    assert up.started - 0.02 <= outage.end <= up.finished + 0.03
    assert outage.ended and outage.began
    assert outage.after == f"{r.name}--{h2.name} down"
    assert outage.lost == pytest.approx(200, abs=12)
    assert run.outages((h1, r)) == []  # does not cross the link
    assert run.lost((h1, r)) == 0
    converged = run.converged_at(0)  # the down event: when h1 reached h2 again
    assert converged is not None and converged == pytest.approx(3.0, abs=0.1)
    first = run.series[0]
    assert first.sent == pytest.approx(400, abs=20)  # 4 s at 100 Hz


def ring_ports(namespace: str) -> dict[str, str]:
    out = sh("ip", "netns", "exec", namespace, "bridge", "-j", "link", "show")
    return {entry["ifname"]: entry["state"] for entry in json.loads(out or "[]")}


def test_cutting_the_spanning_tree_link_in_use_heals_within_the_bridge_timers(
    uid: str, clean: Path
) -> None:
    with Lab(f"tl-s-{uid}", isolated=True, state_dir=clean) as lab:
        switches = [lab.namespace(f"tls{i}-{uid}") for i in range(3)]
        bridges: list[Bridge] = [lab.bridge("br0", namespace=s, stp=True) for s in switches]
        ring: list[VethPair] = []
        hosts = []
        with lab.batch():  # returns once spanning tree has settled
            for i in range(3):
                pair = lab.link(bridges[i], bridges[(i + 1) % 3])
                assert isinstance(pair, VethPair)
                ring.append(pair)
            for i, bridge in enumerate(bridges):
                host = lab.namespace(f"tlh{i}-{uid}")
                lab.link(host, bridge, addresses=(f"10.21.0.{i + 1}/24", None))
                hosts.append(host)
        states: dict[tuple[str | None, str], str] = {}
        for s in switches:
            states.update({(s.name, port): state for port, state in ring_ports(s.name).items()})
        # a ring link whose two ends forward: the one its two switches' hosts use
        used = next(
            i
            for i, pair in enumerate(ring)
            if states[(pair.namespace, pair.name)] == "forwarding"
            and states[(pair.peer_namespace, pair.peer)] == "forwarding"
        )
        a, b = hosts[used], hosts[(used + 1) % 3]
        other = hosts[(used + 2) % 3]
        t = lab.timeline()
        t.at("1s", ring[used].down)
        run = t.run(watch=[(a, b)], interval="10ms", until="14s")
    timers = dict(STP_TIMERS)
    bound = (timers["max_age"] + 2 * timers["forward_delay"]) / 100 + 1.0
    (outage,) = run.outages((a, b))
    assert outage.ended, "the tree did not heal by itself"
    assert 0.0 < outage.duration <= bound
    assert outage.start >= 0.9
    print(f"STP ring outage: {outage}")  # shown with -s; the notes quote it
    assert other.name  # the third host exists: the ring has a way round


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")
def test_a_shaping_change_at_a_set_time_shows_in_the_throughput(uid: str, clean: Path) -> None:
    with Lab(f"tl-t-{uid}", isolated=True, state_dir=clean) as lab:
        h1, h2 = lab.namespace(f"tlh1-{uid}"), lab.namespace(f"tlh2-{uid}")
        pair = lab.link(h1, h2, addresses=["10.21.3.1/24", "10.21.3.2/24"])
        rates: list[float] = []
        t = lab.timeline()
        t.at(0, lambda: rates.append(lab.throughput(h1, "10.21.3.2", seconds=3).mbit_per_s))
        t.at("3.5s", "shape", target=[h1.name, h2.name], rate="5mbit")
        t.at("3.6s", lambda: rates.append(lab.throughput(h1, "10.21.3.2", seconds=3).mbit_per_s))
        run = t.run(watch=[(h1, h2)], interval="100ms", until="7s")
        assert isinstance(pair, VethPair) and pair.shaping is not None
    before, after = rates
    assert after < 6.0 < 20.0 < before
    assert [e.label.split()[-1] for e in run.events][1] == "shape"


def test_ctrl_c_during_netns_kit_run_leaves_nothing(
    kernel: Kernel, uid: str, clean: Path, tmp_path: Path
) -> None:
    text = (ROOT / "scripts" / "labs" / "chain-events.toml").read_text()
    text = text.replace('"tl-chain"', f'"tl-k-{uid}"').replace('"4s"', '"60s"')
    for role in ("h1", "r", "h2"):
        text = text.replace(f'"tl-{role}"', f'"tl{role}-{uid}"')
    path = tmp_path / "events.toml"
    path.write_text(text)
    argv = [sys.executable, "-m", "netns_kit", "--state-dir", str(clean), "run", str(path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "down" not in seen and time.monotonic() < deadline:  # built, probing, cut
            line = child.stdout.readline()
            if not line:
                break
            seen += line
        assert "down" in seen, seen + (child.stderr.read() if child.stderr else "")
        during = [n for n in kernel.namespaces() if uid in n]
        assert len(during) == 4  # and the lab's host namespace
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    assert child.returncode == 130, err
    assert "outages:" in out and "torn down" in out
    assert [n for n in kernel.namespaces() if uid in n] == []
    assert not clean.exists() or [p.name for p in clean.iterdir() if p.suffix == ".json"] == []
    mine = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if uid.encode() in cmdline and b"pytest" not in cmdline:
                mine.append(cmdline.decode(errors="replace"))
    assert mine == []  # no fping, no server, nothing of the run's
    assert uid not in sh("iptables-save")


@pytest.mark.skipif(shutil.which("fping") is None, reason="fping is not installed")
def test_a_rootless_lab_probes_with_fping_loops_and_measures_the_same(
    uid: str, clean: Path
) -> None:
    from netns_kit.errors import RootlessUnavailableError

    try:
        lab = Lab(f"tl-f-{uid}", rootless=True, state_dir=clean).open()
    except RootlessUnavailableError as refused:
        pytest.skip(f"no rootless sandbox here: {refused}")
    with lab:
        h1, r, h2, far = chain(lab, uid)
        t = lab.timeline()
        t.at("1s", "down", target=far)
        t.at("2s", "up", target=far)
        run = t.run(watch=[(h1, h2), (h1, r)], interval="10ms", until="3s")
    assert run.method == "fping"
    (outage,) = run.outages((h1, h2))
    # Each action runs a few nsenter processes in a sandbox (30-120 ms here, varying
    # with the machine's load), so the link is down from inside the down action to
    # inside the up action: the outage must lie in those windows, give or take a probe.
    down, up = run.events
    assert down.started - 0.03 <= outage.start <= down.finished, run.table()
    assert up.started - 0.02 <= outage.end <= up.finished + 0.05, run.table()
    assert outage.duration == pytest.approx(1.0, abs=0.2), run.table()
    assert run.outages((h1, r)) == [], run.table()
    assert run.series[0].sent == pytest.approx(300, abs=15)


def test_the_plugin_lab_fixture_runs_a_timeline_unchanged(lab: Lab, uid: str) -> None:
    """The pytest plugin's ``lab`` as it is: build, run, assert a maximum outage."""
    h1, _r, h2, far = chain(lab, uid)
    t = lab.timeline()
    t.at("0.5s", far.down)
    t.at("1.5s", "up", target=far)
    run = t.run(watch=[(h1, h2)], until="2.5s")
    assert run.max_outage((h1, h2)) == pytest.approx(1.0, abs=0.1)
