"""Reachability checks on the real kernel, and the fast snapshot against the old reader.

Labs are isolated and uniquely named (the ``prefix`` fixture: ``lb-<uid>``), with at
most 30 namespaces: the neighbour table is shared by the whole machine, and other
suites run beside this one.  Results are cross-checked independently of the library
with ``ip netns exec ... ping`` and ``ip -j neigh``; the neighbour limits are read
from ``/proc/sys`` before and after, and must come back as they were.
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

from netns_kit import Lab, ShellExecutor
from netns_kit.check import neighbours
from netns_kit.command import Command
from netns_kit.executors import Executor, Process
from netns_kit.executors.batch import Batch
from netns_kit.readback import reader as state
from netns_kit.record.registry import Registry
from netns_kit.result import Result

from .conftest import Kernel, sh

ROOT = Path(__file__).resolve().parents[2]
LIMITS = [f"net.ipv{v}.neigh.default.gc_thresh{i}" for v in (4, 6) for i in (1, 2, 3)]


def limits() -> dict[str, str]:
    return {key: Path("/proc/sys", *key.split(".")).read_text().strip() for key in LIMITS}


@pytest.fixture
def neighbour_limits() -> Iterator[dict[str, str]]:
    """The limits as found; afterwards they must be the same (put back if not)."""
    before = limits()
    yield before
    after = limits()
    for key, value in before.items():
        if after[key] != value:
            Path("/proc/sys", *key.split(".")).write_text(value)
    assert after == before, "the neighbour limits were not put back"


def ping(source: str, address: str) -> bool:
    argv = ["ip", "netns", "exec", source, "ping", "-n", "-q", "-c1", "-W1", address]
    return subprocess.run(argv, capture_output=True).returncode == 0


def bridge_lab(lab: Lab, n: int, *, six: int = 0) -> list[str]:
    """``n`` namespaces on bridge br0 (10.44.0.0/24); the first ``six`` get IPv6 too."""
    with lab.batch():
        bridge = lab.bridge("br0", "10.44.0.254/24")
        for i in range(n):
            ns = lab.namespace(f"{lab.name}-{i}")
            lab.link(ns, bridge, addresses=(f"10.44.0.{i + 1}/24", None), names=("eth0", f"p{i}"))
    for i in range(six):
        sh(
            "ip",
            "-n",
            f"{lab.name}-{i}",
            "addr",
            "add",
            f"fd44::{i + 1}/64",
            "dev",
            "eth0",
            "nodad",
        )
    return [ns.name for ns in lab.namespaces]


def test_thirty_namespaces_on_a_bridge_all_answer(
    prefix: str, kernel: Kernel, neighbour_limits: dict[str, str], tmp_path: Path
) -> None:
    with Lab(prefix, isolated=True, state_dir=tmp_path) as lab:
        names = bridge_lab(lab, 30, six=30)
        result = lab.reachability()
        assert result.ok, result.to_text(compact=True)
        assert len(result) == 2 * 30 * 29  # all pairs, IPv4 and IPv6
        assert result.method == "raw" and not result.paced
        assert any(note.startswith("raised net.ipv4") and "ipv6" in note for note in result.notes)
        assert all(rtt is not None and rtt < 1000 for rtt in result.matrix.values())
        # the same answers as ping gives, independently of the library
        for source, target in ((names[0], "10.44.0.30"), (names[29], "fd44::2")):
            assert ping(source, target)
            assert result[(source, target)] is not None
        # the limits are back, and the lab's neighbour tables were emptied first
        assert limits() == neighbour_limits
        assert kernel.ip_json("neigh", "show", namespace=names[5]) == []
        record = Registry(tmp_path).read(prefix)
        assert record is not None and not [e for e in record.resources if e.kind == "sysctl"]


@pytest.mark.parametrize("end", ["namespace", "bridge"])
def test_with_one_veth_end_down_exactly_the_pairs_through_it_fail(
    prefix: str, end: str, neighbour_limits: dict[str, str], tmp_path: Path
) -> None:
    with Lab(prefix, isolated=True, state_dir=tmp_path) as lab:
        names = bridge_lab(lab, 8)
        cut = names[3]
        if end == "namespace":
            sh("ip", "-n", cut, "link", "set", "dev", "eth0", "down")
        else:
            sh("ip", "-n", f"{prefix}-host", "link", "set", "dev", "p3", "down")
        result = lab.reachability(timeout=0.5)
        through = {
            (s, t.address)
            for s in names
            for t in result.targets
            if cut in (s, t.namespace) and s != t.namespace
        }
        failed = {(f.source, f.target.address) for f in result.failures()}
        assert failed == through
        assert len(failed) == 2 * 7
        said = result.to_text()
        assert f"{names[0]} -> 10.44.0.4 ({cut}/eth0)" in said
        assert f"{cut} -> 10.44.0.1 ({names[0]}/eth0)" in said
        assert not ping(names[0], "10.44.0.4") and ping(names[0], "10.44.0.5")


def nat_topology(prefix: str) -> str:
    """An isolated NAT lab: ``in`` behind the host side's masquerade, ``out`` outside
    with no route back into 10.45.1.0/24."""
    inside, outside = f"{prefix}-in", f"{prefix}-out"
    return f"""
name = "{prefix}"
isolated = true
namespaces = ["{inside}", "{outside}"]

[[bridges]]
name = "br-in"
address = "10.45.1.1/24"

[[bridges]]
name = "br-out"
address = "10.45.2.1/24"

[[links]]
a = "{inside}"
b = "br-in"
addresses = ["10.45.1.2/24"]

[[links]]
a = "{outside}"
b = "br-out"
addresses = ["10.45.2.2/24"]

[[routes]]
destination = "default"
via = "10.45.1.1"
namespace = "{inside}"

[[sysctls]]
key = "net.ipv4.ip_forward"
value = 1

[[masquerade]]
source = "10.45.1.0/24"
"""


def cli(*argv: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "netns_kit", "--state-dir", str(state_dir), *argv]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_a_nat_lab_matches_its_expect_file(
    prefix: str, kernel: Kernel, neighbour_limits: dict[str, str], tmp_path: Path
) -> None:
    topology = tmp_path / "nat.toml"
    topology.write_text(nat_topology(prefix))
    expect = tmp_path / "expect.toml"
    expect.write_text(
        f'# no route back into the NAT\n[[fail]]\nfrom = "{prefix}-out"\nto = "{prefix}-in"\n'
    )
    state_dir = tmp_path / "state"
    try:
        up = cli("up", str(topology), "--check", "--expect", str(expect), state_dir=state_dir)
        assert up.returncode == 0, up.stdout + up.stderr
        assert "1 pair(s) failed as expected" in up.stdout
        assert ping(f"{prefix}-in", "10.45.2.2") and not ping(f"{prefix}-out", "10.45.1.2")
        # the reply to the NAT'd ping came from the host side's masquerade
        rules = kernel.iptables_rules(f"{prefix}-host")
        assert any("MASQUERADE" in rule and prefix in rule for rule in rules)

        checked = cli("check", prefix, "--json", "--expect", str(expect), state_dir=state_dir)
        assert checked.returncode == 0, checked.stderr
        data = json.loads(checked.stdout)
        assert data["as_expected"] and not data["ok"]
        assert [(f["source"], f["address"]) for f in data["failures"]] == [
            (f"{prefix}-out", "10.45.1.2")
        ]

        plain = cli("check", prefix, state_dir=state_dir)  # without --expect: a failure
        assert plain.returncode == 1
        assert f"{prefix}-out -> 10.45.1.2 ({prefix}-in/" in plain.stdout
        expect.write_text('[[fail]]\nfrom = "*"\nto = "*"\n')
        wrong = cli("check", prefix, "--expect", str(expect), state_dir=state_dir)
        assert wrong.returncode == 1 and "answered but should not" in wrong.stdout
    finally:
        cli("down", prefix, state_dir=state_dir)


def test_a_check_killed_while_it_holds_the_limits_is_undone_by_cleanup(
    prefix: str, kernel: Kernel, neighbour_limits: dict[str, str], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    topology = tmp_path / "lab.toml"
    body = f'name = "{prefix}"\nisolated = true\nnamespaces = ['
    body += ", ".join(f'"{prefix}-{i}"' for i in range(30)) + ']\n[[bridges]]\nname = "br0"\n'
    for i in range(30):
        body += f'[[links]]\na = "{prefix}-{i}"\nb = "br0"\naddresses = ["10.46.0.{i + 1}/24"]\n'
    topology.write_text(body)
    assert cli("up", str(topology), state_dir=state_dir).returncode == 0
    try:
        first = f"{prefix}-0"
        (end,) = [name for name in kernel.links(first) if name != "lo"]
        sh("ip", "-n", first, "link", "set", "dev", end, "down")  # its probes wait 20 s
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "netns_kit", "--state-dir", str(state_dir)]
        check = subprocess.Popen([*argv, "check", prefix, "--timeout", "20"], env=env)
        lease = state_dir / f"{prefix}:check.json"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and limits() == neighbour_limits:
            time.sleep(0.02)
        assert limits() != neighbour_limits, "the check never raised the limits"
        assert lease.exists()
        os.kill(check.pid, signal.SIGKILL)  # our own child, by its pid
        check.wait()
        assert limits() != neighbour_limits  # still raised: nobody put them back
        assert Registry(state_dir).read(f"{prefix}:check") is not None
        listed = cli("ls", "--json", state_dir=state_dir)
        assert {"name": f"{prefix}:check", "state": "stale"}.items() <= next(
            x for x in json.loads(listed.stdout) if x["name"] == f"{prefix}:check"
        ).items()
        cleaned = cli("cleanup", state_dir=state_dir)
        assert cleaned.returncode == 0, cleaned.stderr
        assert limits() == neighbour_limits
        assert not lease.exists()
        # a check after the crash works, and leaves no lock file behind
        again = cli("check", prefix, "--timeout", "0.2", state_dir=state_dir)
        assert again.returncode == 1 and "no source reached" in again.stdout
        assert not neighbours.LOCK_PATH.exists()
        assert limits() == neighbour_limits
    finally:
        cli("down", prefix, state_dir=state_dir)


class NoProbe:
    """The shell executor without its probe: checks fall back to fping."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.parallel = getattr(inner, "parallel", 1)

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        return self.inner.execute(command, timeout)

    def execute_batch(self, batch: Batch) -> Result:
        return self.inner.execute_batch(batch)

    def start(self, command: Command) -> Process:
        return self.inner.start(command)


@pytest.mark.skipif(
    shutil.which("fping") is None, reason="fping is not installed: apt-get install fping"
)
def test_the_fping_fallback(prefix: str, neighbour_limits: dict[str, str], tmp_path: Path) -> None:
    with Lab(prefix, isolated=True, state_dir=tmp_path, executor=NoProbe(ShellExecutor())) as lab:
        bridge_lab(lab, 6, six=2)
        result = lab.reachability()
        assert result.method == "fping"
        assert result.ok, result.to_text()
        assert len(result) == 6 * 5 + 2  # IPv6 only between the two that have it


def test_a_rootless_lab_is_paced_and_says_so(neighbour_limits: dict[str, str], uid: str) -> None:
    """In a sandbox the root namespace's limits are out of reach: the check paces its
    probes (fping in the sandbox, rounds within the limits) and says so."""
    if shutil.which("fping") is None:
        pytest.skip("fping is not installed: apt-get install fping")
    with Lab(f"rr-{uid}", rootless=True) as lab:
        assert lab.rootless
        with lab.batch():
            bridge = lab.bridge("br0", "10.49.0.254/24")
            for i in range(30):
                ns = lab.namespace(f"rr-{uid}-{i}")
                lab.link(
                    ns, bridge, addresses=(f"10.49.0.{i + 1}/24", None), names=("eth0", f"p{i}")
                )
        result = lab.reachability()
        assert result.ok, result.to_text(compact=True)
        assert result.method == "fping" and result.paced and result.rounds > 1
        assert result.notes and "neighbour limits" in result.notes[0]
        assert "paced in" in result.summary()
        assert limits() == neighbour_limits  # never touched


def test_the_prober_keeps_few_sockets_open_and_still_hears_everyone(
    prefix: str, neighbour_limits: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for one namespace's sockets at a time per worker, every reply is still
    matched to its request, and a dead address costs its own timeout only."""
    from netns_kit.executors import shell as executor

    monkeypatch.setattr(executor, "file_budget", lambda lanes: 1)
    with Lab(prefix, isolated=True, state_dir=tmp_path) as lab:
        names = bridge_lab(lab, 8, six=8)
        drop = ["iptables", "-w", "-A", "INPUT", "-p", "icmp", "--icmp-type", "echo-request"]
        drop += ["-d", "10.44.0.1", "-j", "DROP"]
        sh("ip", "netns", "exec", names[0], *drop)  # in the lab's namespace: goes with it
        result = lab.reachability(timeout=0.3)
        failed = {(f.source, f.target.address) for f in result.failures()}
        assert failed == {(s, "10.44.0.1") for s in names[1:]}
        assert len(result) == 2 * 8 * 7


def test_the_fast_snapshot_equals_reading_one_command_at_a_time(
    prefix: str, tmp_path: Path
) -> None:
    with Lab(prefix, isolated=True, state_dir=tmp_path) as lab:
        names = bridge_lab(lab, 4, six=1)
        red, blue = lab.namespace(f"{prefix}-red"), lab.namespace(f"{prefix}-blue")
        lab.link(red, blue, addresses=("10.47.0.1/30", "10.47.0.2/30"), mtu=1400)
        lab.route("10.48.0.0/16", via="10.47.0.2", namespace=red)
        reader = state.Reader(lab.ex)
        everything = [lab.host_side, *names, red.name, blue.name]
        for _ in range(50):  # settled: links up, nothing changing
            fast = lab.snapshot()
            slow = state.Snapshot(tuple(reader.state(ns) for ns in everything))
            if fast == slow:
                break
            reader = state.Reader(lab.ex)
            time.sleep(0.1)
        assert fast == slow
        (direct,) = [link for link in fast[red.name].links if link.mtu == 1400]
        assert direct.peer is not None and direct.peer.namespace == blue.name
        port = fast[lab.host_side].link("p2")
        assert port.peer is not None and (port.peer.name, port.peer.namespace) == ("eth0", names[2])
