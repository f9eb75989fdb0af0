"""Integration fixtures: the real kernel, as root, with unique names and a host left as found.

Every test here is skipped, with the reason shown, when we are not root or iproute2 is
missing.  State is read back with ``ip -j`` through ``subprocess``, independently of
the library under test.  A session-level check snapshots the root namespace before the
first integration test and fails the run if anything differs after the last one
(set ``NETNS_KIT_SKIP_HOST_CHECK=1`` only while other suites run on the same machine).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_kit import Namespace, recover


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root: they build namespaces on the real kernel"
    if shutil.which("ip") is None:
        return "iproute2 is not installed (no `ip`): apt-get install iproute2"
    return None


SKIP_REASON = _skip_reason()
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


# -- reading the kernel -----------------------------------------------------------------
def sh(*argv: str, check: bool = True) -> str:
    """Run a program and return its stdout; raise with its stderr when it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


class Kernel:
    """What the kernel holds, read with ``ip -j`` (and iptables-save / sysctl)."""

    @staticmethod
    def ip_json(*args: str, namespace: str | None = None) -> list[dict[str, Any]]:
        prefix = ("ip", "-n", namespace) if namespace else ("ip",)
        out = sh(*prefix, "-j", *args)
        return json.loads(out) if out.strip() else []

    def namespaces(self) -> list[str]:
        return sorted(entry["name"] for entry in self.ip_json("netns", "list"))

    def links(self, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """Interfaces by name, with details (``linkinfo.info_kind``, ``master``...)."""
        return {e["ifname"]: e for e in self.ip_json("-d", "link", "show", namespace=namespace)}

    def kind(self, name: str, namespace: str | None = None) -> str | None:
        info = self.links(namespace)[name].get("linkinfo", {})
        kind: str | None = info.get("info_kind")
        return kind

    def addresses(self, namespace: str | None = None, family: str = "inet") -> dict[str, list[str]]:
        """``local/prefixlen`` of every address of ``family`` (IPv4 by default: the
        kernel adds IPv6 link-local addresses on its own), by interface name."""
        return {
            e["ifname"]: [
                f"{a['local']}/{a['prefixlen']}"
                for a in e.get("addr_info", [])
                if a.get("family") == family
            ]
            for e in self.ip_json("addr", "show", namespace=namespace)
        }

    def routes(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.ip_json("route", "show", namespace=namespace)

    def sysctl(self, key: str, namespace: str) -> str:
        return sh("ip", "netns", "exec", namespace, "sysctl", "-n", key).strip()

    def iptables_rules(self, namespace: str, table: str = "nat") -> list[str]:
        out = sh("ip", "netns", "exec", namespace, "iptables-save", "-t", table)
        return [line for line in out.splitlines() if line.startswith("-A ")]


@pytest.fixture(scope="session")
def kernel() -> Kernel:
    return Kernel()


@pytest.fixture
def uid() -> str:
    """A short hex tag, unique per test, for every name the test creates."""
    return secrets.token_hex(3)


@pytest.fixture
def make_namespace(uid: str, kernel: Kernel) -> Iterator[Callable[[str], Namespace]]:
    """Create ``nk-<uid>-<role>`` namespaces; delete exactly those afterwards.

    Deleting a namespace takes its links with it (and the other end of its veths),
    its routes, its sysctl settings and its iptables rules: everything a test builds
    lives in namespaces made here, so this is the whole teardown, also on failure.
    """
    made: list[str] = []

    def make(role: str) -> Namespace:
        name = f"nk-{uid}-{role}"
        made.append(name)  # before creating: a half-made namespace is removed too
        return Namespace(name).create()

    yield make
    present = set(kernel.namespaces())
    for name in reversed(made):
        if name in present:
            sh("ip", "netns", "delete", name)
    left = sorted(set(made) & set(kernel.namespaces()))
    assert not left, f"namespaces left behind: {left}"


@pytest.fixture
def prefix(uid: str, kernel: Kernel) -> Iterator[str]:
    """A unique lab name; afterwards no namespace of it may be left (removed if one is)."""
    name = f"lb-{uid}"
    yield name
    left = [ns for ns in kernel.namespaces() if ns.startswith(name)]
    if left:
        recover(name)
        for ns in left:
            sh("ip", "netns", "delete", ns, check=False)
    assert not left, f"namespaces left behind: {left}"


# -- host safety ------------------------------------------------------------------------
_COUNTERS = re.compile(r"\[\d+:\d+\]")
_SAVERS = ("iptables-save", "iptables-legacy-save", "ip6tables-save", "ip6tables-legacy-save")


def _rules(tool: str) -> list[str]:
    """A ruleset without its ``#`` lines (dates) and ``[packets:bytes]`` counters."""
    out = sh(tool)
    return [_COUNTERS.sub("[0:0]", line) for line in out.splitlines() if not line.startswith("#")]


def host_snapshot(kernel: Kernel) -> dict[str, list[str]]:
    """What the root namespace looks like: the things no test may change."""
    snapshot = {
        "ip netns list": kernel.namespaces(),
        "root links (ip -j link: name, state, flags, mtu, master)": sorted(
            f"{e['ifname']} {e.get('operstate')} <{','.join(e.get('flags', []))}> "
            f"mtu {e.get('mtu')} master {e.get('master', '-')}"
            for e in kernel.ip_json("link", "show")
        ),
        "root addresses": sorted(
            f"{name} {address}"
            for name, addresses in kernel.addresses().items()
            for address in addresses
        ),
        "root IPv4 routes": sorted(json.dumps(r, sort_keys=True) for r in kernel.routes()),
        "net.ipv4.ip_forward": [Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()],
        "net.ipv6.conf.all.forwarding": [
            Path("/proc/sys/net/ipv6/conf/all/forwarding").read_text().strip()
        ],
    }
    snapshot["/etc/netns (hosts files)"] = etc_netns_listing()
    for tool in _SAVERS:
        if shutil.which(tool):
            snapshot[tool] = _rules(tool)
    return snapshot


def etc_netns_listing() -> list[str]:
    """What /etc/netns holds, one level deep; ``["(absent)"]`` when there is none.

    A lab's hosts files live there, and a lab that made the directory removes it when
    it goes: an empty /etc/netns left behind is a leak too.
    """
    top = Path("/etc/netns")
    if not top.is_dir():
        return ["(absent)"]
    return sorted(
        str(path.relative_to(top)) for entry in top.iterdir() for path in (entry, *_children(entry))
    ) or ["(empty)"]


def _children(entry: Path) -> list[Path]:
    return list(entry.iterdir()) if entry.is_dir() else []


def host_diff(before: dict[str, list[str]], after: dict[str, list[str]]) -> str:
    """A readable unified diff of every part of the snapshot that changed."""
    parts = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key, []), after.get(key, [])
        if old != new:
            diff = difflib.unified_diff(old, new, "before", "after", lineterm="", n=0)
            parts.append(f"== {key}\n" + "\n".join(diff))
    return "\n".join(parts)


def _host_check_off() -> bool:
    return os.environ.get("NETNS_KIT_SKIP_HOST_CHECK") == "1"


@pytest.fixture(autouse=True)
def etc_netns_as_found() -> Iterator[None]:
    """Each test leaves /etc/netns as it found it (the session check below would
    only say that some test did not)."""
    if SKIP_REASON or _host_check_off():
        yield
        return
    before = etc_netns_listing()
    yield
    after = etc_netns_listing()
    assert after == before, f"/etc/netns changed: {before} -> {after}"


@pytest.fixture(scope="session", autouse=True)
def host_safety(kernel: Kernel) -> Iterator[None]:
    """Fail the run if the root namespace differs after the integration tests."""
    skip_check = _host_check_off()
    if skip_check and os.environ.get("CI") == "true":
        pytest.fail(
            "NETNS_KIT_SKIP_HOST_CHECK=1 turns the host-safety check off; CI (CI=true) refuses it",
            pytrace=False,
        )
    if SKIP_REASON or skip_check:
        yield
        return
    before = host_snapshot(kernel)
    yield
    diff = host_diff(before, host_snapshot(kernel))
    if diff:
        pytest.fail(
            "HOST SAFETY CHECK FAILED: the root namespace changed during the integration "
            "tests (a test leaked or touched the host; or another suite ran at the same "
            "time, see NETNS_KIT_SKIP_HOST_CHECK):\n" + diff,
            pytrace=False,
        )
