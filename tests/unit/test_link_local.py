"""Links without IPv6 come up without an IPv6 link-local address, unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Interface, Lab, RecordingExecutor
from netns_kit.topology import from_dict, to_dict


def build(tmp_path: Path, addresses: tuple[str | None, str | None], **options: bool) -> list[str]:
    ex = RecordingExecutor()
    with Lab("ll", executor=ex, state_dir=tmp_path, **options) as lab:
        lab.link(lab.namespace("a"), lab.namespace("b"), addresses=addresses)
    return [" ".join(argv) for argv in ex.commands if argv[-1] == "up" and "lo" not in argv]


def test_an_ipv4_link_comes_up_without_link_local_addresses(tmp_path: Path) -> None:
    assert build(tmp_path, ("10.0.0.1/24", "10.0.0.2/24")) == [
        "ip -n a link set dev veth-a addrgenmode none up",
        "ip -n b link set dev veth-b addrgenmode none up",
    ]


@pytest.mark.parametrize(
    ("addresses", "options"),
    [
        (("2001:db8::1/64", "2001:db8::2/64"), {}),
        (("10.0.0.1/24", "fd00::2/64"), {}),
        (("10.0.0.1/24", "10.0.0.2/24"), {"ipv6_link_local": True}),
    ],
)
def test_ipv6_keeps_the_kernel_default(
    tmp_path: Path, addresses: tuple[str, str], options: dict[str, bool]
) -> None:
    assert build(tmp_path, addresses, **options) == [
        "ip -n a link set dev veth-a up",
        "ip -n b link set dev veth-b up",
    ]


def test_interface_up_can_skip_link_local() -> None:
    assert [c.argv for c in Interface("x", "n").up_commands(link_local=False)] == [
        ("ip", "-n", "n", "link", "set", "dev", "x", "addrgenmode", "none", "up")
    ]


def test_the_topology_key_reaches_the_lab() -> None:
    topology = from_dict({"name": "t", "ipv6_link_local": True, "namespaces": ["a"]})
    assert topology.ipv6_link_local is True
    assert to_dict(topology)["ipv6_link_local"] is True
    assert Lab.from_topology(topology, executor=RecordingExecutor()).ipv6_link_local is True
    assert from_dict({"name": "t"}).ipv6_link_local is False
