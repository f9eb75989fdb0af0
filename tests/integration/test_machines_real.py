"""A lab spread over two machines: fake machines (real sshd, real kernel, one machine).

What each machine holds is read back independently of the library, through the machine's
own sshd namespaces (``nsenter`` and ``ip -j``, see ``test_ssh_real``).  The
traffic stays in the machines' namespaces: VXLAN over their private underlay.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netns_kit import FakeMachines, Lab, MachineUnreachableError, VxlanPair, recover

from .test_ssh_real import machine_json, machine_namespaces

Machines = Callable[..., FakeMachines]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists(),
    reason="fake machines need sshd: apt-get install openssh-server",
)


@pytest.fixture
def two(fake_machines: Machines) -> FakeMachines:
    return fake_machines(2, prefix="mh")


def lab_on(two: FakeMachines, name: str, state: Path, **options: Any) -> Lab:
    return Lab(
        name,
        machines={"a": two[0].executor(), "b": two[1].executor()},
        underlay={"a": two[0].address, "b": two[1].address},
        state_dir=state,
        **options,
    )


def test_red_on_a_and_blue_on_b_ping_over_vxlan(
    two: FakeMachines, uid: str, tmp_path: Path
) -> None:
    name = f"mh-{uid}"
    with lab_on(two, name, tmp_path, isolated=True) as lab:
        red = lab.namespace(f"{name}-red", machine="a")
        blue = lab.namespace(f"{name}-blue", machine="b")
        pair = lab.link(red, blue, addresses=("192.168.50.1/24", "192.168.50.2/24"))
        assert isinstance(pair, VxlanPair)
        # each machine has its own namespaces, and its own host side
        assert machine_namespaces(two[0]) == sorted([f"{name}-red", f"{name}-host"])
        assert machine_namespaces(two[1]) == sorted([f"{name}-blue", f"{name}-host"])
        (near,) = machine_json(two[0], "-d", "-n", f"{name}-red", "link", "show", pair.name)
        (far,) = machine_json(two[1], "-d", "-n", f"{name}-blue", "link", "show", pair.peer)
        for end, local, remote in ((near, two[0], two[1]), (far, two[1], two[0])):
            data = end["linkinfo"]["info_data"]
            assert end["linkinfo"]["info_kind"] == "vxlan"
            assert data["id"] == pair.vni
            assert (data["local"], data["remote"]) == (local.address, remote.address)
            assert data["port"] == 4789
            assert end["mtu"] == 1450  # the underlay's 1500 less the encapsulation
        assert red.ping("192.168.50.2", timeout=2)
        assert blue.ping("192.168.50.1", timeout=2)
        record = json.loads((tmp_path / f"{name}.json").read_text())
        assert set(record["machines"]) == {"a", "b"}
        vnis = [e.get("value") for e in record["resources"] if e["kind"] == "link"]
        assert vnis == [str(pair.vni), str(pair.vni)]
    assert machine_namespaces(two[0]) == [] and machine_namespaces(two[1]) == []
    assert not (tmp_path / f"{name}.json").exists()


def test_a_bridge_on_each_machine_joined_across_machines_is_one_segment(
    two: FakeMachines, uid: str, tmp_path: Path
) -> None:
    name = f"mh-{uid}"
    with lab_on(two, name, tmp_path, isolated=True) as lab:
        with lab.batch():
            switches = {h: lab.bridge(f"sw-{h}", machine=h) for h in ("a", "b")}
            machines: dict[str, Any] = {}
            for i, h in enumerate("aabb"):
                ns = lab.namespace(f"{name}-n{i}", machine=h)
                machines[f"192.168.60.{i + 1}"] = ns
                lab.link(ns, switches[h], addresses=(f"192.168.60.{i + 1}/24", None))
            joined = lab.link(switches["a"], switches["b"])
        for index, machine in enumerate(two):
            (port,) = machine_json(machine, "-d", "-n", f"{name}-host", "link", "show", joined.name
                                if index == 0 else joined.peer)  # fmt: skip
            assert port["linkinfo"]["info_kind"] == "vxlan"
            assert port["master"] == f"sw-{'ab'[index]}"
        for (src, ns), (dst, _) in itertools.permutations(machines.items(), 2):
            assert ns.ping(dst, timeout=2), f"{src} cannot reach {dst}"
    assert machine_namespaces(two[0]) == [] and machine_namespaces(two[1]) == []


CHILD = """
import json, sys
from netns_kit import Lab, SSHExecutor
spec = json.loads(sys.argv[1])
machines = {k: SSHExecutor.from_description(v) for k, v in spec["machines"].items()}
lab = Lab(spec["name"], machines=machines, underlay=spec["underlay"], isolated=True,
          state_dir=spec["state"])
lab.open()
print("open", flush=True)
for i in range(400):
    ns = lab.namespace(f"{spec['name']}-{i}", machine="ab"[i % 2])
    print("made", i, flush=True)
"""


def test_kill_9_during_a_two_machine_build_then_recover_leaves_nothing(
    two: FakeMachines, uid: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = f"mh-{uid}"
    executors = [two[0].executor(), two[1].executor()]
    spec = {
        "name": name,
        "state": str(tmp_path),
        "machines": {"a": executors[0].describe(), "b": executors[1].describe()},
        "underlay": {"a": two[0].address, "b": two[1].address},
    }
    # the child's ssh sockets, which it cannot clean up (short: a socket's path is)
    scratch = Path(tempfile.mkdtemp(prefix="mh-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    try:
        assert child.stdout is not None
        made = 0
        for line in child.stdout:
            made += line.startswith("made")
            if made >= 6:
                break
        assert made >= 6, "the build never got going"
    finally:
        os.kill(child.pid, signal.SIGKILL)  # our own child, by its PID
        child.wait()
    assert any(n.startswith(name) for n in machine_namespaces(two[0]))
    assert any(n.startswith(name) for n in machine_namespaces(two[1]))
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert {e.get("machine") for e in record["resources"]} == {"a", "b"}
    removed = recover(name, state_dir=tmp_path)  # the record says how to reach each machine
    assert any(r.endswith(" on a") for r in removed) and any(r.endswith(" on b") for r in removed)
    deadline = time.monotonic() + 10
    while (
        machine_namespaces(two[0]) or machine_namespaces(two[1])
    ) and time.monotonic() < deadline:
        time.sleep(0.05)  # a batch the dead owner left may finish after recovery waited
    assert machine_namespaces(two[0]) == []
    assert machine_namespaces(two[1]) == []
    assert not (tmp_path / f"{name}.json").exists()


def test_an_unreachable_machine_stops_the_lab_before_anything_is_built(
    two: FakeMachines, uid: str, tmp_path: Path
) -> None:
    name = f"mh-{uid}"
    two[1].stop()  # machine b is powered off
    lab = lab_on(two, name, tmp_path, isolated=True)
    with pytest.raises(MachineUnreachableError) as caught:
        lab.namespace(f"{name}-red", machine="a")
    assert caught.value.machine == two[1].address
    assert machine_namespaces(two[0]) == []  # not even machine a's host side
    assert not (tmp_path / f"{name}.json").exists()


def test_the_two_machines_example_runs_on_fake_machines(
    fake_machines: Machines, uid: str, tmp_path: Path
) -> None:
    """scripts/labs/two-machines.toml as it is, on fake machines at its own underlay
    addresses (10.0.0.1 and .2 exist only inside the fake machines' namespaces); only
    the ssh executors are the fake machines' own, and the lab is renamed."""
    machines = fake_machines(2, prefix="mh", subnet="10.0.0.0/24")
    data = tomllib.loads((ROOT / "scripts" / "labs" / "two-machines.toml").read_text())
    data["name"] = f"mh-{uid}"
    executors = {"a": machines[0].executor(), "b": machines[1].executor()}
    with Lab.from_dict(data, machines=executors, state_dir=tmp_path) as lab:
        red, blue = lab["red"], lab["blue"]
        assert machine_namespaces(machines[0]) == sorted(["red", f"mh-{uid}-host"])
        assert machine_namespaces(machines[1]) == sorted(["blue", f"mh-{uid}-host"])
        assert red.ping("192.168.30.2", timeout=2)  # across the joined switches
        assert red.ping("192.168.31.2", timeout=2)  # the direct tunnel
        assert blue.ping("192.168.30.1", timeout=2)
        # a full-size frame of the segment crosses the tunnel whole (DF set)
        big = ["ping", "-n", "-q", "-M", "do", "-s", "1422", "-c", "1", "-W", "2"]
        assert red.run([*big, "192.168.30.2"], check=False).returncode == 0
    assert machine_namespaces(machines[0]) == [] and machine_namespaces(machines[1]) == []
