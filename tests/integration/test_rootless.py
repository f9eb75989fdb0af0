"""Rootless labs, built by the unprivileged user nobody (uid 65534), on the real kernel.

The suite runs as root; each test drops to nobody in a child process (see
``nobody.py``: a world-readable copy of the package, since the clone may sit where
nobody cannot look).  While each lab is up, and after it, the machine's own
namespaces, links, addresses, routes, forwarding and iptables are compared with
what they were (in full, unless ``NETNS_KIT_SKIP_HOST_CHECK=1`` says other suites
share the machine: then nothing may carry this test's names), and no process of
nobody that the test started may be left once it is over.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Kernel, host_diff, host_snapshot
from .nobody import NOBODY, Nobody, kill_session, wait_gone

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SCRIPT = "rootless_lab.py"


@pytest.fixture(scope="module")
def nobody() -> Iterator[Nobody]:
    made = Nobody.make(
        [
            HERE / "lab_scripts" / SCRIPT,
            HERE / "lab_scripts" / "udp_programs.py",
            REPO / "scripts" / "demo.py",
        ]
    )
    yield made
    made.remove()


@pytest.fixture
def tag(uid: str) -> str:
    """This test's names: ``rl`` and four hex digits (interface names stay short)."""
    return f"rl{uid[:4]}"


class Machine:
    """The machine's network as it was before the test, to compare with at any time."""

    def __init__(self, kernel: Kernel, tag: str) -> None:
        self.kernel = kernel
        self.tag = tag
        self.before = host_snapshot(kernel)

    def assert_unchanged(self) -> None:
        now = host_snapshot(self.kernel)
        mentions = [line for lines in now.values() for line in lines if self.tag in line]
        assert not mentions, f"the machine holds this test's names: {mentions}"
        if os.environ.get("NETNS_KIT_SKIP_HOST_CHECK") != "1":
            diff = host_diff(self.before, now)
            assert not diff, f"the machine's network changed:\n{diff}"


@pytest.fixture
def machine(kernel: Kernel, tag: str) -> Machine:
    return Machine(kernel, tag)


def read_until(child: subprocess.Popen[str], word: str, timeout: float = 60) -> list[str]:
    """The child's lines up to and including the one starting with ``word``."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while not any(line.startswith(word) for line in data.decode().splitlines()):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no {word!r} line after {timeout} s: {data.decode()!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            assert child.stderr is not None
            raise AssertionError(f"ended before {word!r}: {data.decode()!r} {child.stderr.read()}")
        data += chunk
    return data.decode().splitlines()


def holder_runs_as_nobody(pid: int) -> bool:
    try:
        return os.stat(f"/proc/{pid}").st_uid == NOBODY
    except FileNotFoundError:
        return False


def run_lab(nobody: Nobody, machine: Machine, mode: str, tag: str) -> list[str]:
    """Run ``rootless_lab.py MODE TAG`` as nobody; check the machine while it is up."""
    child = nobody.start(str(nobody.lib / SCRIPT), mode, tag)
    try:
        lines = read_until(child, "UP")
        holder = int(lines[-1].split()[1])
        assert holder_runs_as_nobody(holder)
        machine.assert_unchanged()  # while the lab is up
        out, err = child.communicate("go\n", timeout=60)
        assert child.returncode == 0, err
    finally:
        if child.poll() is None:
            child.kill()  # the child we started
            child.wait()
        left = wait_gone(child.pid, 5)
        kill_session(child.pid)
    assert not left, f"processes of nobody left: {left}"
    assert not os.path.exists(f"/proc/{holder}")
    machine.assert_unchanged()
    return lines + out.splitlines()


def test_the_seed_bridge_lab_pings_without_root(nobody: Nobody, machine: Machine, tag: str) -> None:
    lines = run_lab(nobody, machine, "bridge", tag)
    assert "ROOTLESS True" in lines  # the default for a user who is not root
    assert any(line.startswith(f"LOG lab {tag!r}: not root") for line in lines), lines
    pings = [line for line in lines if line.startswith("PING")]
    assert pings == [
        f"PING {tag}-red 192.168.15.2 ok",
        f"PING {tag}-blue 192.168.15.1 ok",
        f"PING {tag}-red 192.168.15.5 ok",
        "PING host 192.168.15.2 ok",
    ]
    assert lines[-1] == "HOLDER gone"


def test_a_router_masquerades_for_an_outside_namespace_in_the_same_sandbox(
    nobody: Nobody, machine: Machine, tag: str
) -> None:
    lines = run_lab(nobody, machine, "router", tag)
    assert "SEEN 198.51.100.1" in lines, lines  # the LAN host, as the router's address
    rules = [line for line in lines if line.startswith("RULE")]
    assert len(rules) == 1 and f'"netns-kit:{tag}"' in rules[0], rules
    assert "FORWARD 1" in lines  # in the sandbox; the machine's is checked unchanged
    assert lines[-1] == "HOLDER gone"


def test_netns_kit_rootless_up_exec_show_down(nobody: Nobody, machine: Machine, tag: str) -> None:
    topology = nobody.work / f"{tag}.toml"
    topology.write_text(
        f'name = "{tag}"\n'
        f'namespaces = ["{tag}-red", "{tag}-blue"]\n'
        f'[[bridges]]\nname = "{tag}br"\naddress = "192.168.15.5/24"\n'
        f'[[links]]\na = "{tag}-red"\nb = "{tag}br"\naddresses = ["192.168.15.1/24"]\n'
        f'[[links]]\na = "{tag}-blue"\nb = "{tag}br"\naddresses = ["192.168.15.2/24"]\n'
    )
    topology.chmod(0o644)
    up = nobody.cli("--rootless", "up", str(topology))
    assert up.returncode == 0, up.stderr
    holder = int(up.stdout.split("(holder ")[1].split(")")[0])
    session = os.getsid(holder)
    try:
        assert holder_runs_as_nobody(holder)
        assert f"{tag}-red" in up.stdout and "(sandbox)" in up.stdout
        machine.assert_unchanged()

        listed = json.loads(nobody.cli("ls", "--json").stdout)
        assert [(x["name"], x["state"], x["rootless"]) for x in listed] == [(tag, "up", True)]
        ping = nobody.cli("exec", tag, f"{tag}-red", "--", "ping", "-c1", "-W2", "192.168.15.2")
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert "1 received" in ping.stdout
        shown = json.loads(nobody.cli("show", tag, "--json").stdout)
        red = next(ns for ns in shown["namespaces"] if ns["name"] == f"{tag}-red")
        assert "192.168.15.1/24" in [a["address"] for a in red["addresses"]]
        assert shown["rootless"] is True and shown["missing"] == []
        machine.assert_unchanged()

        down = nobody.cli("down", tag)
        assert down.returncode == 0, down.stderr
        assert f"lab {tag!r} is down" in down.stdout
        deadline = time.monotonic() + 2
        while holder_runs_as_nobody(holder) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not holder_runs_as_nobody(holder)
    finally:
        left = wait_gone(session, 5)
        kill_session(session)
    assert not left, f"processes of nobody left: {left}"
    assert json.loads(nobody.cli("ls", "--json").stdout) == []
    assert not list(nobody.runtime.glob(f"*/{tag}*"))  # no record, no lock
    machine.assert_unchanged()


def test_kill_9_of_the_python_process_takes_the_sandbox_with_it(
    nobody: Nobody, machine: Machine, tag: str
) -> None:
    child = nobody.start(str(nobody.lib / SCRIPT), "hold", tag)
    try:
        lines = read_until(child, "UP")
        holder = int(lines[-1].split()[1])
        sleeper = int(next(line for line in lines if line.startswith("SLEEPER")).split()[1])
        assert holder_runs_as_nobody(holder) and holder_runs_as_nobody(sleeper)
        machine.assert_unchanged()
        os.kill(child.pid, signal.SIGKILL)  # the child we started
        child.wait()
        deadline = time.monotonic() + 2
        while os.path.exists(f"/proc/{holder}") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not os.path.exists(f"/proc/{holder}"), "the holder outlived its lab by 2 s"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        left = wait_gone(child.pid, 5)
        kill_session(child.pid)
    assert not left, f"processes of nobody left: {left}"
    machine.assert_unchanged()
    # the record and the lock outlive the process; cleanup takes them
    listed = json.loads(nobody.cli("ls", "--json").stdout)
    assert [(x["name"], x["state"]) for x in listed] == [(tag, "stale")]
    cleanup = nobody.cli("cleanup")
    assert cleanup.returncode == 0 and f"lab {tag!r}: removed" in cleanup.stdout, cleanup
    assert not list(nobody.runtime.glob(f"*/{tag}*"))


def test_a_kernel_that_refuses_user_namespaces_is_named(nobody: Nobody, tag: str) -> None:
    """Inside a user namespace whose user.max_user_namespaces is 0 (a limit that holds
    there and below, nowhere else), the lab says which setting refused."""
    inner = 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"'
    state = nobody.work / f"{tag}-state"
    done = nobody.run_argv(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "env",
            f"NETNS_KIT_STATE_DIR={state}",
            "sh",
            "-c",
            inner,
            "sh",
            nobody.python,
            str(nobody.lib / SCRIPT),
            "refused",
            tag,
        ]
    )
    assert done.returncode == 0, done.stderr
    assert "REFUSED user.max_user_namespaces" in done.stdout, done.stdout
    assert "sysctl -w user.max_user_namespaces=" in done.stdout


def test_the_pytest_plugin_lab_fixture_runs_rootless_when_not_root(
    nobody: Nobody, tag: str
) -> None:
    test = nobody.work / f"test_{tag}.py"
    test.write_text(
        "def test_ping(lab):\n"
        "    assert lab.rootless\n"
        "    a, b = lab.namespace(f'{lab.name}-a'), lab.namespace(f'{lab.name}-b')\n"
        "    lab.link(a, b, addresses=('10.9.0.1/24', '10.9.0.2/24'))\n"
        "    assert a.ping('10.9.0.2')\n"
    )
    test.chmod(0o644)
    basetemp = nobody.work / f"{tag}-pytest"
    done = nobody.run(
        "-m",
        "pytest",
        "-p",
        "netns_kit.testing.pytest_plugin",
        "-p",
        "no:cacheprovider",
        f"--basetemp={basetemp}",
        "-q",
        str(test),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_the_demo_runs_rootless(nobody: Nobody, machine: Machine) -> None:
    done = nobody.run(str(nobody.lib / "demo.py"), "--rootless")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok  ") == 4, done.stdout
    assert "Left behind: nothing" in done.stdout
    machine.assert_unchanged()
