"""Fixtures and helpers the unit tests share (no root, no kernel)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor

Argv = tuple[str, ...]
TAG = "netns-kit:t"
#: What iptables says when ``-C`` or ``-D`` finds no such rule.
BAD_RULE = "iptables: Bad rule (does a matching rule exist in that chain?).\n"
#: What the fake says ``sysctl -n KEY`` holds in the root namespace before a lab.
ROOT_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv4.conf.all.rp_filter": "1",
}


def fresh(namespace: str | None = None) -> RecordingExecutor:
    """A fake executor that answers like a fresh machine: forwarding is off, and
    ``iptables -C`` says the rule is missing, so a masquerade appends its rule (in
    the root namespace and in ``namespace``, where a lab's NAT may live)."""
    ex = RecordingExecutor()
    for key, value in ROOT_SYSCTLS.items():
        ex.answer(("sysctl", "-n", key), stdout=value + "\n")
    prefixes: list[Argv] = [()]
    if namespace is not None:
        prefixes.append(("ip", "netns", "exec", namespace))
    for prefix in prefixes:
        for tool in ("iptables", "ip6tables"):
            ex.answer((*prefix, tool, "-w", "-t", "nat", "-C"), returncode=1, stderr=BAD_RULE)
    return ex


def lines(commands: Iterable[Argv]) -> list[str]:
    """Each argv as the shell line a user would type."""
    return [shlex.join(argv) for argv in commands]


def make_lab(ex: RecordingExecutor, state: Path, *, isolated: bool = False) -> Lab:
    return Lab("t", executor=ex, isolated=isolated, state_dir=state)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A lab state directory of the test's own (it does not exist yet)."""
    return tmp_path / "state"


@pytest.fixture
def ex() -> RecordingExecutor:
    return RecordingExecutor()
