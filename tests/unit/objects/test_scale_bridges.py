"""Quiet bridges (issue 23): no IGMP/MLD snooping unless asked, and ``addrgenmode
none`` on a batch line of its own before ``up``.  Exact argv, no root."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import Bridge, Lab, RecordingExecutor, ValidationError
from netns_kit.topology import from_dict, to_dict


def _lines(ex: RecordingExecutor) -> list[str]:
    return [" ".join(argv) for argv in ex.commands]


def test_a_bridge_is_made_without_snooping_and_snooping_can_be_asked_for() -> None:
    assert Bridge("br0").create_commands()[0].argv == (
        "ip", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0",
    )  # fmt: skip
    assert Bridge("br0", "s1", snooping=True).create_commands()[0].argv == (
        "ip", "-n", "s1", "link", "add", "name", "br0", "type", "bridge",
    )  # fmt: skip


def test_a_quiet_bridge_sets_addrgenmode_on_its_own_line_before_up(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab:
        lab.namespace("s1")
        lab.bridge("br0", namespace="s1")
        made = _lines(ex)
    quiet = made.index("ip -n s1 link set dev br0 addrgenmode none")
    up = made.index("ip -n s1 link set dev br0 up")
    assert quiet < up
    # one line each: on one line the kernel applies `up` first
    assert not any("addrgenmode none up" in line for line in made)
    assert "ip -n s1 link add name br0 type bridge mcast_snooping 0" in made


def test_a_bridge_with_an_ipv6_address_keeps_its_link_local(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab:
        lab.namespace("s1")
        lab.bridge("br0", "fd00::1/64", namespace="s1", snooping=True)
        made = _lines(ex)
    assert "ip -n s1 link add name br0 type bridge" in made
    assert "ip -n s1 link set dev br0 up" in made
    assert not any("br0 addrgenmode" in line for line in made)


def test_snooping_must_be_a_bool_in_python_and_in_files(tmp_path: Path) -> None:
    lab = Lab("q", executor=RecordingExecutor(), state_dir=tmp_path)
    with lab, pytest.raises(ValidationError, match="snooping"):
        lab.bridge("br0", snooping="yes")  # type: ignore[arg-type]
    bad = {"name": "q", "namespaces": ["a"], "bridges": [{"name": "br0", "mcast_snooping": "on"}]}
    with pytest.raises(ValidationError, match=r"bridges\[0\]\.mcast_snooping"):
        from_dict(bad)


def test_a_file_turns_snooping_on_and_round_trips(tmp_path: Path) -> None:
    given = {"name": "q", "namespaces": ["a"], "bridges": [{"name": "br0", "mcast_snooping": True}]}
    spec = from_dict(given)
    assert spec.bridges[0].snooping is True
    assert to_dict(spec)["bridges"] == [{"name": "br0", "mcast_snooping": True}]
    ex = RecordingExecutor()
    with Lab.from_topology(spec, executor=ex, state_dir=tmp_path):
        assert "ip link add name br0 type bridge" in _lines(ex)
