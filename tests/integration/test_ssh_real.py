"""SSHExecutor and VXLAN on fake machines: real sshd, real kernel, one machine.

Each fake machine (``netns_kit.testing.fakemachines``) is a namespace with its own sshd and its own
``/run/netns``; the machine's network is never touched.  What a machine holds is read
back independently of the library: ``nsenter`` into the machine's sshd (its mount and
network namespaces) and ``ip -j`` there.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from netns_kit import (
    AlreadyExistsError,
    FakeMachine,
    FakeMachines,
    MachineUnreachableError,
    Namespace,
    NetnsKitError,
    Runner,
    SSHExecutor,
    Vxlan,
)
from netns_kit.command import Command, ip

from .conftest import Kernel, sh

Machines = Callable[..., FakeMachines]

pytestmark = pytest.mark.skipif(
    not Path("/usr/sbin/sshd").exists(),
    reason="fake machines need sshd: apt-get install openssh-server",
)


def on_machine(machine: FakeMachine, *argv: str) -> str:
    """Run a program as the machine sees the world (its mounts, its network)."""
    assert machine.sshd is not None
    return sh("nsenter", "--target", str(machine.sshd.pid), "--mount", "--net", "--", *argv)


def machine_json(machine: FakeMachine, *args: str) -> list[dict[str, Any]]:
    out = on_machine(machine, "ip", "-j", *args)
    return json.loads(out) if out.strip() else []


def machine_namespaces(machine: FakeMachine) -> list[str]:
    return sorted(e["name"] for e in machine_json(machine, "netns", "list"))


@pytest.fixture
def two(fake_machines: Machines) -> FakeMachines:
    return fake_machines(2, prefix="mh")


def test_commands_run_on_their_machine_whose_names_are_its_own(
    two: FakeMachines, kernel: Kernel, uid: str
) -> None:
    a, b = two[0].executor(), two[1].executor()
    name = f"mh-{uid}-red"
    Namespace(name, executor=a).create()
    assert machine_namespaces(two[0]) == [name]
    assert machine_namespaces(two[1]) == []
    assert name not in kernel.namespaces()  # not the machine's either
    assert Namespace(name, executor=a).exists()
    assert not Namespace(name, executor=b).exists()
    lo = machine_json(two[0], "-n", name, "link", "show", "lo")[0]
    assert "UP" in lo["flags"]


def test_remote_file_exists_names_the_machine(two: FakeMachines, uid: str) -> None:
    a = two[0].executor()
    Namespace(f"mh-{uid}-x", executor=a).create()
    with pytest.raises(AlreadyExistsError) as caught:
        Namespace(f"mh-{uid}-x", executor=a).create()
    assert caught.value.machine == two[0].address
    assert f"on machine '{two[0].address}'" in str(caught.value)
    assert "File exists" in str(caught.value)


def test_a_batch_is_one_ssh_client(two: FakeMachines, mocker: MockerFixture) -> None:
    a = two[0].executor()
    a.connect()
    spy = mocker.spy(subprocess, "run")
    commands = [ip("link", "add", "name", f"d{i}", "type", "bridge") for i in range(200)]
    Runner(a).run_all(commands).check()
    clients = [c for c in spy.call_args_list if "-N" not in c.args[0] and "-O" not in c.args[0]]
    assert len(clients) == 1
    names = {e["ifname"] for e in machine_json(two[0], "link", "show")}
    assert {f"d{i}" for i in range(200)} <= names


def test_hostile_words_reach_the_remote_program_unchanged(
    two: FakeMachines, tmp_path: Path
) -> None:
    trap = tmp_path / "injected"
    words = [f"$(touch {trap})", f"`touch {trap}`", f"a; touch {trap}", "it's", "x\ny", "*", ""]
    result = two[0].executor().execute(Command(("printf", "%s\\0", *words, "-n")))
    assert result.returncode == 0
    assert result.stdout.split("\0")[:-1] == [*words, "-n"]
    assert not trap.exists()


def descendants_named(pid: int, comm: str) -> list[int]:
    """Processes under ``pid`` (a machine's sshd) called ``comm``, from /proc: the fake
    machines share this machine's PID space."""
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            head, tail = stat.rsplit(")", 1)
            parents[int(entry)] = int(tail.split()[1])
            names[int(entry)] = head.split("(", 1)[1]
            if tail.split()[0] == "Z":
                names[int(entry)] = "<zombie>"

    def under(p: int) -> bool:
        while p > 1:
            p = parents.get(p, 0)
            if p == pid:
                return True
        return False

    return [p for p, name in names.items() if name == comm and under(p)]


def test_background_program_is_stopped_on_the_machine_by_pid(two: FakeMachines, uid: str) -> None:
    a = two[0].executor()
    ns = Namespace(f"mh-{uid}-srv", executor=a).create()
    assert two[0].sshd is not None
    sshd = two[0].sshd.pid
    process = ns.popen(["sleep", "30"])
    deadline = time.monotonic() + 10
    while not descendants_named(sshd, "sleep") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(descendants_named(sshd, "sleep")) == 1
    result = process.stop()
    # the program on the machine got the signal, not the local client (which would leave
    # the program running: a session without a terminal does not end with its client)
    assert result.returncode >= 0
    assert not process.running
    assert descendants_named(sshd, "sleep") == []


def test_unreachable_machine_is_a_clear_error(two: FakeMachines) -> None:
    nobody = "10.250.0.200"  # in the underlay, where no machine answers
    ex = SSHExecutor(
        nobody,
        identity_file=two[0].identity_file,
        ssh_options=(*two[0].ssh_options, "-o", "ConnectTimeout=3"),
        local_namespace=two.client_namespace,
    )
    try:
        with pytest.raises(MachineUnreachableError) as caught:
            ex.execute(ip("netns", "add", "never"))
    finally:
        ex.close()
    assert caught.value.machine == nobody
    assert "No route to host" in caught.value.said or "timed out" in caught.value.said


def test_a_dead_machine_is_unreachable_not_a_command_failure(two: FakeMachines) -> None:
    a = two[0].executor()
    assert a.execute(Command(("true",))).returncode == 0
    two[0].stop()
    with pytest.raises(MachineUnreachableError) as caught:
        a.execute(Command(("true",)))
    assert caught.value.machine == two[0].address
    assert caught.value.said  # ssh's own words


def test_vxlan_joins_namespaces_on_two_machines(two: FakeMachines, uid: str) -> None:
    h0, h1 = two[0], two[1]
    a, b = h0.executor(), h1.executor()
    red, blue = f"mh-{uid}-red", f"mh-{uid}-blue"
    Namespace(red, executor=a).create()
    Namespace(blue, executor=b).create()
    near = Vxlan("vx0", 4242, h0.address, h1.address, "eth0", red, executor=a)
    far = near.twin(namespace=blue, executor=b)
    near.create(addresses=["192.168.77.1/24"], tag="netns-kit:mh")
    far.create(addresses=["192.168.77.2/24"])

    link = machine_json(h0, "-d", "-n", red, "link", "show", "vx0")[0]
    data = link["linkinfo"]["info_data"]
    assert (link["linkinfo"]["info_kind"], data["id"], data["port"]) == ("vxlan", 4242, 4789)
    assert (data["local"], data["remote"]) == (h0.address, h1.address)
    assert link["mtu"] == 1450  # the underlay's 1500 less 50, set by the kernel
    assert link.get("ifalias") == "netns-kit:mh"
    # the tunnel's UDP socket stays with the underlay, in the machine's own namespace
    assert ":4789" in on_machine(h0, "ss", "-Hlun")
    assert Namespace(red, executor=a).ping("192.168.77.2", count=2, interval=0.2)
    # full-size frames cross without fragments: 1422 + 28 = the tunnel's 1450
    df = ["ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s", "1422", "192.168.77.2"]
    assert Namespace(red, executor=a).run(df, check=False).returncode == 0


def test_nothing_is_left_after_close(kernel: Kernel, uid: str) -> None:
    machines = FakeMachines(2, name=f"mh-{uid}")
    with machines:
        directory = machines.directory
        pids = [h.sshd.pid for h in machines if h.sshd is not None]
        ex = machines[0].executor()
        ex.execute(ip("netns", "add", "left-behind?"))
        control = ex.control_path
        assert control is not None and control.exists()
        assert all(Path(f"/proc/{p}").exists() for p in pids)
    assert not directory.exists()  # keys, configs, logs
    assert control is not None and not control.parent.exists()
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
    assert not [n for n in kernel.namespaces() if n.startswith(f"mh-{uid}")]
    assert os.geteuid() == 0


def test_a_machine_that_fails_to_boot_leaves_nothing(
    kernel: Kernel, uid: str, mocker: MockerFixture
) -> None:
    import tempfile

    mocker.patch.object(FakeMachines, "_config", return_value="NoSuchKeyword yes\n")
    made = mocker.spy(tempfile, "mkdtemp")
    machines = FakeMachines(2, name=f"mh-{uid}")
    with pytest.raises(NetnsKitError, match="did not start") as caught:
        machines.start()
    assert "NoSuchKeyword" in str(caught.value)  # sshd's own complaint, from its log
    assert all(h.sshd is None for h in machines)
    assert not [n for n in kernel.namespaces() if n.startswith(f"mh-{uid}")]
    assert made.spy_return is not None and not Path(made.spy_return).exists()  # the keys
