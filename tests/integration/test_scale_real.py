"""Scale on the real kernel (issue 23): a batch that dies without saying where leaves
nothing behind, a 1,024-port bridge is refused before any command, kernel settings
are written from inside the namespace, quiet bridges are quiet, and a 3,000-namespace
tree builds, forwards end to end and goes away whole.

Every name starts with ``sc`` (this issue's prefix) and a random token.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Lab, ValidationError
from netns_kit.command import sysctl_command
from netns_kit.executors.shell import ShellExecutor
from netns_kit.objects.link import MAX_BRIDGE_PORTS

from .conftest import Kernel, sh

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab_name(uid: str, kernel: Kernel) -> Iterator[str]:
    """A lab name ``sc<token>``; afterwards no namespace of it may be left."""
    name = f"sc{uid}"
    yield name
    left = [ns for ns in kernel.namespaces() if ns.startswith(name)]
    for ns in left:
        sh("ip", "netns", "delete", ns, check=False)
    assert not left, f"namespaces left behind: {left}"


def _ours(kernel: Kernel, name: str) -> list[str]:
    return [ns for ns in kernel.namespaces() if ns.startswith(name)]


# -- a batch that fails without a line number ---------------------------------------------
_CHILD = textwrap.dedent(
    """
    import resource, sys
    from netns_kit import Lab
    name, state, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))  # ip inherits it
    try:
        with Lab(name, state_dir=state) as lab, lab.batch():
            bridge = lab.bridge(name)  # on the root side: no switch settings in between
            for i in range(count):
                lab.link(lab.namespace(f"{name}-h{i}"), bridge)
    except Exception as error:
        print("FAILED", type(error).__name__, error, *getattr(error, "__notes__", []))
        sys.exit(3)
    print("BUILT")
    """
)


def test_a_batch_that_dies_without_a_line_number_leaves_nothing(
    lab_name: str, kernel: Kernel, tmp_path: Path
) -> None:
    """96 descriptors: ``ip -batch`` runs out after about 40 veth lines (iproute2 6.1
    leaks two per line) and says ``Invalid "netns" value``, no ``Command failed``."""
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, lab_name, str(tmp_path / "state"), "120"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert done.returncode == 3, (done.stdout, done.stderr)
        assert "FAILED" in done.stdout and "netns" in done.stdout
        assert "without saying which line" in done.stdout
        # the batch that died also made the namespaces, and ip blamed its first line
        assert f"ip netns add {lab_name}-h0" in done.stdout
        assert _ours(kernel, lab_name) == []  # every namespace undone, none forgotten
        assert not [n for n in kernel.links() if n.startswith(lab_name)]
        assert list((tmp_path / "state").glob("*.json")) == []  # record gone too
    finally:  # also when the test fails: the root-side bridge and every namespace
        if lab_name in kernel.links():
            sh("ip", "link", "delete", "dev", lab_name, check=False)
        for ns in _ours(kernel, lab_name):
            sh("ip", "netns", "delete", ns, check=False)


# -- limits before anything runs -------------------------------------------------------------
class _Cancel(Exception):
    """Raised inside ``lab.batch()``: the block's queued steps never run."""


def test_a_1024_port_bridge_is_refused_before_any_command(
    lab_name: str, kernel: Kernel, tmp_path: Path
) -> None:
    with pytest.raises(_Cancel), Lab(lab_name, state_dir=tmp_path) as lab, lab.batch():
        switch = lab.namespace(f"{lab_name}-s")
        bridge = lab.bridge("br0", namespace=switch)
        for i in range(MAX_BRIDGE_PORTS):
            lab.link(lab.namespace(f"{lab_name}-{i}"), bridge)
        with pytest.raises(ValidationError, match="tree of switches") as caught:
            lab.link(lab.namespace(f"{lab_name}-x"), bridge)
        assert caught.value.value == f"{lab_name}-s/br0"
        raise _Cancel
    assert _ours(kernel, lab_name) == []  # nothing ran
    topology = {
        "name": lab_name,
        "namespaces": [f"{lab_name}-s", *(f"{lab_name}-{i}" for i in range(1024))],
        "bridges": [{"name": "br0", "namespace": f"{lab_name}-s"}],
        "links": [{"a": f"{lab_name}-{i}", "b": "br0"} for i in range(1024)],
    }
    with pytest.raises(ValidationError, match="1,024 ports"):
        Lab.from_dict(topology, state_dir=tmp_path)
    assert _ours(kernel, lab_name) == []


# -- settings written from inside, bridges quiet ----------------------------------------------
def test_settings_are_written_from_inside_the_namespace(lab_name: str, kernel: Kernel) -> None:
    ns = f"{lab_name}-w"
    sh("ip", "netns", "add", ns)
    try:
        ex = ShellExecutor()
        done = ex.execute(sysctl_command([("net.ipv4.ip_forward", "1")], ns))
        assert done.returncode == 0, done.stderr
        assert kernel.sysctl("net.ipv4.ip_forward", ns) == "1"
        assert sh("sysctl", "-n", "net.ipv4.ip_forward").strip() == "0"  # root untouched
        missing = ex.execute(sysctl_command([("net.ipv4.nope", "1")], ns))
        assert missing.returncode == 255 and "nope" in missing.stderr
        ok = ex.execute(sysctl_command([("net.ipv4.nope", "1")], ns, missing_ok=True))
        assert ok.returncode == 0
    finally:
        sh("ip", "netns", "delete", ns)


def test_a_switch_is_quiet(lab_name: str, kernel: Kernel, tmp_path: Path) -> None:
    with Lab(lab_name, state_dir=tmp_path) as lab:
        s = lab.namespace(f"{lab_name}-s")
        h = lab.namespace(f"{lab_name}-h")
        lab.link(h, lab.bridge("br0", namespace=s), addresses=("10.7.0.1/24", None))
        info = kernel.links(s.name)["br0"]["linkinfo"]["info_data"]
        assert info["mcast_snooping"] == 0
        bridge_addresses = json.loads(sh("ip", "-n", s.name, "-j", "addr", "show", "dev", "br0"))
        assert bridge_addresses[0].get("addr_info", []) == []  # no link-local either
        assert kernel.sysctl("net.bridge.bridge-nf-call-iptables", s.name) == "0"


# -- a 3,000-namespace lab --------------------------------------------------------------------
def _scale_tree() -> Any:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import scale_tree
    finally:
        sys.path.pop(0)
    return scale_tree


def _ping(source: str, target: str) -> bool:
    """One echo, retried a few times: the first ARP exchange may take a moment."""
    for _ in range(5):
        done = subprocess.run(
            ["ip", "netns", "exec", source, "ping", "-n", "-c1", "-W2", target],
            capture_output=True,
            timeout=30,
        )
        if done.returncode == 0:
            return True
    return False


def test_a_3000_namespace_lab_builds_forwards_end_to_end_and_leaves_nothing(
    lab_name: str, kernel: Kernel, tmp_path: Path
) -> None:
    """Two routed segments of 1,500 namespaces, each a tree of switches (the scale
    example, scripts/scale_tree.py): the first host of the first segment reaches the
    last host of the last one (through the router), and the last host of its own
    segment (across its switches)."""
    data = _scale_tree().topology(3000, name=lab_name, segment=1500)
    hosts = [ns for ns in data["namespaces"] if ns.startswith(f"{lab_name}h")]
    first, last = hosts[0], hosts[-1]
    same = [h for h in hosts if h.startswith(f"{lab_name}h0-")][-1]
    address = {link["a"]: link["addresses"][0].split("/")[0] for link in data["links"]
               if link["a"] in (last, same)}  # fmt: skip
    try:
        with Lab.from_dict(data, state_dir=tmp_path) as lab:
            assert len(_ours(kernel, lab_name)) == 3000 + 1  # and the lab's host side
            assert _ping(first, address[last]), f"{first} -> {last}"
            assert _ping(first, address[same]), f"{first} -> {same}"
            assert lab.name == lab_name
        assert _ours(kernel, lab_name) == []
        assert list(tmp_path.glob("*.json")) == []
    finally:
        for ns in _ours(kernel, lab_name):
            sh("ip", "netns", "delete", ns, check=False)
