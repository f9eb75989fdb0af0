"""The rtnetlink path of the shell executor against ``ip -batch`` itself, on the real kernel.

The same batch goes to two twin namespaces: once through ``ip`` (``NETLINK = False``),
once as rtnetlink requests from the setns thread.  What the kernel holds afterwards,
read back with ``ip -j``, must be the same, and so must a failure's exit code and
words (the runner splits a batch by them).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_mock import MockerFixture

from netns_kit import Command, Result, ShellExecutor
from netns_kit.executors import shell

from .conftest import sh


class ThroughIp(ShellExecutor):
    NETLINK = False


SETUP = (
    "link add br0 type bridge",
    "link add v0 type veth peer name v1",
    "link set dev v0 addrgenmode none",
)

LINES = (
    "link set dev lo up alias netns-kit:t",
    "link set dev br0 alias netns-kit:t",
    "link set dev br0 addrgenmode none",
    "link set dev br0 up",
    "link set dev v0 master br0",
    "link set dev v0 alias netns-kit:t",
    "link set dev v0 up",
    "link set dev v1 up",
    "addr add 10.1.0.1/24 dev v1",
    "addr add 10.255.0.1/32 dev lo",
    "addr add fd00::1/64 dev v1 nodad",
    "route add 10.2.0.0/16 via 10.1.0.254",
    "route add default via 10.1.0.254 dev v1",
    "route add 10.3.0.0/24 dev v1",
    "route add fd01::/64 via fd00::fe",
    "link set dev v0 nomaster",
    "link set dev v0 down",
)


@pytest.fixture
def twins(uid: str) -> Iterator[tuple[str, str]]:
    names = (f"nk-{uid}-ip", f"nk-{uid}-nl")
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            for line in SETUP:
                sh("ip", "-n", name, *line.split())
        yield names
    finally:
        for name in names:
            sh("ip", "netns", "delete", name, check=False)


def batch(namespace: str, lines: tuple[str, ...], *, force: bool = False) -> Command:
    flags = ("-force", "-batch", "-") if force else ("-batch", "-")
    return Command(
        ("ip", "-n", namespace, *flags),
        stdin="".join(f"{line}\n" for line in lines),
        namespace=namespace,
        inside=("ip", *flags),
    )


#: Link flags the kernel changes later by itself (carrier, seen by linkwatch).
ASYNC_FLAGS = {"NO-CARRIER", "LOWER_UP"}


def held(namespace: str) -> dict[str, Any]:
    """What the kernel holds in ``namespace``, without indexes and counters."""
    links = json.loads(sh("ip", "-n", namespace, "-d", "-j", "link", "show"))
    addresses = json.loads(sh("ip", "-n", namespace, "-j", "addr", "show"))
    return {
        "links": sorted(
            (
                link["ifname"],
                sorted(set(link.get("flags", [])) - ASYNC_FLAGS),
                link.get("master"),
                link.get("ifalias"),
                link.get("inet6_addr_gen_mode"),
                link.get("linkinfo", {}).get("info_kind"),
            )
            for link in links
        ),
        "addresses": sorted(
            (
                entry["ifname"],
                a["family"],
                a["local"],
                a["prefixlen"],
                a.get("scope"),
                a.get("nodad"),
            )
            for entry in addresses
            for a in entry.get("addr_info", [])
            if not str(a["local"]).startswith("fe80")
        ),
        "routes": sorted(
            json.dumps(route, sort_keys=True)
            for family in ("-4", "-6")
            for route in json.loads(sh("ip", "-n", namespace, family, "-j", "route", "show"))
        ),
    }


def run_both(
    twins: tuple[str, str], lines: tuple[str, ...], mocker: MockerFixture, *, force: bool = False
) -> tuple[Result, Result]:
    by_ip = ThroughIp().execute(batch(twins[0], lines, force=force))
    started = mocker.spy(subprocess, "run")
    popen = mocker.spy(subprocess, "Popen")
    by_netlink = ShellExecutor().execute(batch(twins[1], lines, force=force))
    assert (started.call_count, popen.call_count) == (0, 0)  # no process at all
    return by_ip, by_netlink


def test_a_batch_of_known_lines_leaves_what_ip_leaves(
    twins: tuple[str, str], mocker: MockerFixture
) -> None:
    assert shell.ShellExecutor().NETLINK
    by_ip, by_netlink = run_both(twins, LINES, mocker)
    assert (by_ip.returncode, by_ip.stderr) == (0, "")
    assert (by_netlink.returncode, by_netlink.stderr) == (0, "")
    ip_side, netlink_side = held(twins[0]), held(twins[1])
    assert ip_side["routes"] and ip_side["addresses"]  # the comparison compares something
    assert netlink_side == ip_side


@pytest.mark.parametrize(
    ("lines", "force"),
    [
        (
            ("addr add 10.1.0.1/24 dev v1", "addr add 10.1.0.1/24 dev v1", "link set dev v1 up"),
            False,
        ),
        (("link set dev v1 up", "link set dev nothere up", "link set dev v0 up"), False),
        (("link set dev v1 up", "route add 10.9.0.0/24 via 192.0.2.1"), False),
        (("link set dev v0 master nothere",), False),
        (
            (
                "link set dev nothere up",
                "addr add 10.1.0.1/24 dev v1",
                "addr add 10.1.0.1/24 dev v1",
            ),
            True,
        ),
    ],
    ids=["exists", "no-device", "extack", "no-master", "forced"],
)
def test_a_failure_says_what_ip_says(
    twins: tuple[str, str], lines: tuple[str, ...], force: bool, mocker: MockerFixture
) -> None:
    by_ip, by_netlink = run_both(twins, lines, mocker, force=force)
    assert by_ip.returncode != 0
    assert (by_netlink.returncode, by_netlink.stderr) == (by_ip.returncode, by_ip.stderr)
    assert held(twins[1]) == held(twins[0])  # stopped (or went on) at the same line


def test_an_unknown_shape_still_goes_to_ip(twins: tuple[str, str], mocker: MockerFixture) -> None:
    started = mocker.spy(subprocess, "run")
    done = ShellExecutor().execute(batch(twins[1], ("link set dev v1 mtu 1400",)))
    assert done.returncode == 0 and started.call_count == 1
    assert json.loads(sh("ip", "-n", twins[1], "-j", "link", "show", "v1"))[0]["mtu"] == 1400
