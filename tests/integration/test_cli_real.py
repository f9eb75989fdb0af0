"""``netns-kit`` on the real kernel: up / show / exec / down, script | bash, kill -9.

Each test runs the example labs under ``scripts/labs`` with a unique suffix on the
lab's and its namespaces' names, in a state directory of its own, and removes by exact
name whatever is left of them at the end, even when the test fails.  The labs are
isolated: their bridges, forwarding and NAT live in the lab's own host namespace.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from .conftest import Kernel, sh

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "scripts" / "labs"

#: Per example: (namespace, address) pings that must answer once the lab is up.
PINGS = {
    "veth-pair": [("red", "192.168.15.2"), ("blue", "192.168.15.1")],
    "bridge": [("red", "192.168.15.2"), ("blue", "192.168.15.5")],
    "router-nat": [("red", "10.15.0.2"), ("blue", "192.168.15.1")],  # via the NAT
}


@attrs.define
class Copy:
    """An example lab, renamed for this test: its file, lab name and namespaces."""

    path: Path
    name: str
    host_side: str
    namespaces: dict[str, str]  # the example's name -> this copy's name

    @property
    def all_namespaces(self) -> list[str]:
        return [self.host_side, *self.namespaces.values()]


def unique_copy(example: str, uid: str, into: Path) -> Copy:
    """The example's TOML with ``-<uid>`` after the lab's and each namespace's name."""
    source = LABS / f"{example}.toml"
    data = tomllib.loads(source.read_text())
    text = source.read_text()
    renamed = {ns: f"{ns}-{uid}" for ns in data["namespaces"]}
    for old, new in [(data["name"], f"{data['name']}-{uid}"), *renamed.items()]:
        text = re.sub(rf'"{re.escape(old)}"', f'"{new}"', text)
    path = into / f"{example}-{uid}.toml"
    path.write_text(text)
    name = f"{data['name']}-{uid}"
    return Copy(path, name, f"{name}-host", renamed)


def netns_kit(
    state: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netns_kit", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        input=stdin,
    )


@pytest.fixture
def leftovers(kernel: Kernel) -> Iterator[list[str]]:
    """Names a test may create; whatever of them still exists afterwards is deleted.

    Each test asserts itself that the command removed everything; this only makes
    sure that a failing test leaves nothing either.
    """
    names: list[str] = []
    yield names
    present = set(kernel.namespaces())
    for name in reversed(names):
        if name in present:
            sh("ip", "netns", "delete", name, check=False)


def state_of(kernel: Kernel, copy: Copy) -> dict[str, Any]:
    """What the kernel holds for a lab: per namespace, links (kind, master, alias,
    whether set up), IPv4 addresses, IPv4 routes; the host side's NAT rules and forwarding."""
    state: dict[str, Any] = {}
    for ns in copy.all_namespaces:
        links = {
            name: (
                entry.get("linkinfo", {}).get("info_kind"),
                entry.get("master"),
                entry.get("ifalias"),
                "UP" in entry.get("flags", []),  # set up (operstate may lag behind)
            )
            for name, entry in kernel.links(ns).items()
        }
        routes = sorted(
            json.dumps({k: r.get(k) for k in ("dst", "gateway", "dev", "protocol")})
            for r in kernel.routes(ns)
        )
        state[ns] = {"links": links, "addresses": kernel.addresses(ns), "routes": routes}
    if shutil.which("iptables-save"):
        state["nat"] = kernel.iptables_rules(copy.host_side)
    state["forwarding"] = kernel.sysctl("net.ipv4.ip_forward", copy.host_side)
    return state


# -- 1. up, show --json, exec ping, down ------------------------------------------------


@pytest.mark.parametrize("example", sorted(PINGS))
def test_up_show_exec_down(
    example: str, uid: str, tmp_path: Path, kernel: Kernel, leftovers: list[str]
) -> None:
    copy = unique_copy(example, uid, tmp_path)
    leftovers.extend(copy.all_namespaces)
    state = tmp_path / "state"

    up = netns_kit(state, "up", str(copy.path))
    assert up.returncode == 0, up.stderr
    assert f"is up.  Tear it down with: netns-kit down {copy.name}" in up.stdout
    assert set(copy.all_namespaces) <= set(kernel.namespaces())

    listed = json.loads(netns_kit(state, "ls", "--json").stdout)
    assert [(lab["name"], lab["state"]) for lab in listed] == [(copy.name, "up")]

    shown = netns_kit(state, "show", "--json", copy.name)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["missing"] == []
    assert [ns["name"] for ns in data["namespaces"]] == copy.all_namespaces
    expected = topology_addresses(copy)
    for ns in data["namespaces"]:
        seen = {(a["interface"], a["address"]) for a in ns["addresses"] if a["scope"] == "global"}
        assert seen == expected[ns["name"]], ns["name"]

    for ns, target in PINGS[example]:
        ping = netns_kit(
            state,
            "exec",
            copy.name,
            copy.namespaces[ns],
            "--",
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "5",
            target,
        )
        assert ping.returncode == 0, f"{ns} -> {target}: {ping.stdout}{ping.stderr}"
        assert "1 received" in ping.stdout

    down = netns_kit(state, "down", copy.name)
    assert down.returncode == 0, down.stderr
    assert not set(copy.all_namespaces) & set(kernel.namespaces())
    assert json.loads(netns_kit(state, "ls", "--json").stdout) == []


def topology_addresses(copy: Copy) -> dict[str, set[tuple[str, str]]]:
    """Where each address of a copy's topology should be, by namespace."""
    from netns_kit import topology

    topo = topology.load(copy.path).with_link_names()
    found: dict[str, set[tuple[str, str]]] = {ns: set() for ns in copy.all_namespaces}
    bridges = {b.name for b in topo.bridges}
    for bridge in topo.bridges:
        if bridge.address:
            found[copy.host_side].add((bridge.name, bridge.address))
    for link in topo.links:
        assert link.names is not None
        ends = [
            (link.a, link.names[0]),
            (copy.host_side if link.b in bridges else link.b, link.names[1]),
        ]
        for (ns, name), address in zip(ends, link.addresses, strict=True):
            if address:
                found[ns].add((name, address))
    return found


def test_exec_passes_the_exit_code_on(uid: str, tmp_path: Path, leftovers: list[str]) -> None:
    copy = unique_copy("veth-pair", uid, tmp_path)
    leftovers.extend(copy.all_namespaces)
    state = tmp_path / "state"
    assert netns_kit(state, "up", str(copy.path)).returncode == 0
    try:
        red = copy.namespaces["red"]
        # 192.168.16.1 is in no subnet of red: no route, so ping fails at once.
        failed = netns_kit(state, "exec", copy.name, red, "--", "ping", "-c1", "192.168.16.1")
        assert failed.returncode != 0
        assert "unreachable" in failed.stderr.lower()
        wrong = netns_kit(state, "exec", copy.name, "nowhere", "--", "true")
        assert wrong.returncode == 2
    finally:
        assert netns_kit(state, "down", copy.name).returncode == 0


# -- 2. script | bash builds what up builds --------------------------------------------


@pytest.mark.parametrize("example", sorted(PINGS))
def test_script_builds_what_up_builds(
    example: str, uid: str, tmp_path: Path, kernel: Kernel, leftovers: list[str]
) -> None:
    copy = unique_copy(example, uid, tmp_path)
    leftovers.extend(copy.all_namespaces)
    state = tmp_path / "state"

    assert netns_kit(state, "up", str(copy.path)).returncode == 0
    by_up = state_of(kernel, copy)
    assert netns_kit(state, "down", copy.name).returncode == 0
    assert not set(copy.all_namespaces) & set(kernel.namespaces())

    script = netns_kit(state, "script", str(copy.path))
    assert script.returncode == 0, script.stderr
    built = subprocess.run(
        ["bash"], input=script.stdout, capture_output=True, text=True, timeout=120
    )
    assert built.returncode == 0, built.stderr
    by_script = state_of(kernel, copy)
    assert by_script == by_up

    teardown = netns_kit(state, "script", "--teardown", str(copy.path))
    assert teardown.returncode == 0, teardown.stderr
    done = subprocess.run(
        ["bash"], input=teardown.stdout, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert not set(copy.all_namespaces) & set(kernel.namespaces())


# -- 3. kill -9 during up, then cleanup -------------------------------------------------

SHIM = """#!/bin/sh
# Test shim for `ip`: runs the real one; after a batch that sets a bridge port's master,
# parks (exec sleep, same PID) so that the test can kill netns-kit in mid-build.
case " $* " in
  *" -batch "*)
    tmp=$(mktemp)
    cat >"$tmp"
    "{real}" "$@" <"$tmp"
    rc=$?
    if grep -q " master " "$tmp"; then
      rm -f "$tmp"
      echo $$ >"{parked}"
      exec sleep 600
    fi
    rm -f "$tmp"
    exit $rc
    ;;
esac
exec "{real}" "$@"
"""


def kill_by_pid(pid: int, expect: str) -> None:
    """SIGKILL a process we started, after checking it is still the one we mean."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return
    if expect in cmdline:
        os.kill(pid, signal.SIGKILL)


def test_kill_9_during_up_then_cleanup(
    uid: str, tmp_path: Path, kernel: Kernel, leftovers: list[str]
) -> None:
    real = shutil.which("ip")
    assert real is not None
    copy = unique_copy("router-nat", uid, tmp_path)
    leftovers.extend(copy.all_namespaces)
    state = tmp_path / "state"
    shim_dir, parked = tmp_path / "shim", tmp_path / "parked.pid"
    shim_dir.mkdir()
    shim = shim_dir / "ip"
    shim.write_text(SHIM.format(real=real, parked=parked))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{shim_dir}:{os.environ['PATH']}"}

    up = subprocess.Popen(
        [sys.executable, "-m", "netns_kit", "--state-dir", str(state), "up", str(copy.path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sleeper = None
    try:
        for _ in range(1200):  # wait for the shim to park (not a timing assertion)
            if (parked.exists() and parked.read_text().strip()) or up.poll() is not None:
                break
            time.sleep(0.05)
        assert up.poll() is None, f"up ended before the shim parked: {up.communicate()}"
        sleeper = int(parked.read_text())
        up.send_signal(signal.SIGKILL)  # netns-kit dies in mid-build
        up.wait(timeout=30)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(timeout=30)
        if sleeper is not None:
            kill_by_pid(sleeper, "sleep")
    assert up.returncode == -signal.SIGKILL

    # What the lab had made so far is there, and its record says it never finished.
    assert copy.host_side in kernel.namespaces()
    record = json.loads((state / f"{copy.name}.json").read_text())
    assert record["state"] == "building"
    listed = json.loads(netns_kit(state, "ls", "--json").stdout)
    assert [(lab["name"], lab["state"]) for lab in listed] == [(copy.name, "stale")]

    cleanup = netns_kit(state, "cleanup")
    assert cleanup.returncode == 0, cleanup.stderr
    assert f"lab {copy.name!r}: removed" in cleanup.stdout
    left = sorted(set(copy.all_namespaces) & set(kernel.namespaces()))
    assert not left, f"cleanup after kill -9 left lab namespaces behind: {left}"
    assert json.loads(netns_kit(state, "ls", "--json").stdout) == []
