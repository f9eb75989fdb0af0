"""Limits checked before anything runs (issue 23): a Linux bridge takes at most 1,023
ports, so a lab or a file that gives one more is refused, naming the bridge and the
way out (a tree of switches).  No root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.objects.link import GRO_FROM, MAX_BRIDGE_PORTS, MAX_BROADCAST_LINKS
from netns_kit.topology import from_dict
from netns_kit.topology.problems import TopologyError


def test_the_1024th_port_is_refused_before_any_command(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab:
        with lab.batch():
            lab.namespace("s1")
            lab.bridge("br0", namespace="s1")
            for i in range(MAX_BRIDGE_PORTS):
                lab.link(lab.namespace(f"h{i}"), "br0")
            with pytest.raises(ValidationError) as caught:
                lab.link(lab.namespace("h-last"), "br0")
            assert ex.commands == []  # queued: nothing ran yet
        error = caught.value
        assert error.field == "bridge" and error.value == "s1/br0"
        assert "1,024 ports" in str(error) and "mininet-tree.toml" in str(error)
        assert "tree of switches" in str(error)


def test_a_switch_to_switch_link_counts_a_port_on_each(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab, lab.batch():
        lab.bridge("core")
        for i in range(MAX_BRIDGE_PORTS):
            lab.namespace(f"s{i}")
            lab.bridge(f"b{i}", namespace=f"s{i}")
            lab.link("core", f"b{i}")
        lab.namespace("s-last")
        lab.bridge("b-last", namespace="s-last")
        with pytest.raises(ValidationError, match=r"bridge: 'core' would get 1,024 ports"):
            lab.link("core", "b-last")
    # the refused link made nothing: core has exactly its 1,023 ports
    assert sum(argv[-2:] == ("master", "core") for argv in ex.commands) == MAX_BRIDGE_PORTS


def _file(hosts: int) -> dict[str, Any]:
    names = [f"h{i}" for i in range(hosts)]
    return {
        "name": "big",
        "namespaces": ["s1", *names],
        "bridges": [{"name": "br0", "namespace": "s1"}],
        "links": [{"a": name, "b": "br0"} for name in names],
    }


def test_a_file_with_a_1024_port_bridge_is_refused_naming_the_link_and_bridge() -> None:
    from_dict(_file(MAX_BRIDGE_PORTS))  # 1,023 is fine
    with pytest.raises(TopologyError) as caught:
        from_dict(_file(MAX_BRIDGE_PORTS + 5))
    said = str(caught.value)
    assert "links[1023]: bridge 'br0' would get 1,024 ports" in said
    assert said.count("would get") == 1  # once per bridge, not once per extra port
    assert "mininet-tree.toml" in said


# -- broadcast domains ------------------------------------------------------------------------
def _tree(lab: Lab, switches: int, hosts: int, prefix: str = "") -> None:
    core = lab.bridge("br0", namespace=lab.namespace(f"{prefix}core"))
    for s in range(switches):
        edge = lab.bridge("br0", namespace=lab.namespace(f"{prefix}s{s}"))
        lab.link(edge, core)
        for h in range(hosts):
            lab.link(lab.namespace(f"{prefix}h{s}-{h}"), edge)


def test_a_broadcast_domain_past_its_limit_is_refused_naming_the_way_out(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    lab = Lab("q", executor=ex, state_dir=tmp_path)
    with lab, lab.batch():
        _tree(lab, switches=2, hosts=1022)  # 2 + 2,044 links
        lab.link(lab.namespace("x1"), "core/br0")
        lab.link(lab.namespace("x2"), "core/br0")  # 2,048: exactly the limit
        with pytest.raises(ValidationError) as caught:
            lab.link(lab.namespace("one-more"), "core/br0")
        assert "2,049 links in one broadcast domain" in str(caught.value)
        assert "router namespace" in str(caught.value) and "netdev_max_backlog" in str(caught.value)
        # another segment of its own is fine: domains are counted apart
        _tree(lab, switches=1, hosts=10, prefix="b-")
    assert MAX_BROADCAST_LINKS == 2048


def test_joining_two_domains_adds_their_links(tmp_path: Path) -> None:
    lab = Lab("q", executor=RecordingExecutor(), state_dir=tmp_path)
    with lab, lab.batch():
        _tree(lab, switches=2, hosts=1000, prefix="a-")  # 2,002 links
        _tree(lab, switches=1, hosts=50, prefix="b-")  # 51 links
        with pytest.raises(ValidationError, match="2,054 links"):
            lab.link("a-core/br0", "b-core/br0")


def test_a_file_with_a_too_wide_domain_is_refused_once() -> None:
    data: dict[str, Any] = {"name": "wide", "namespaces": [], "bridges": [], "links": []}
    for s in range(3):
        data["namespaces"].append(f"s{s}")
        data["bridges"].append({"name": f"b{s}", "namespace": f"s{s}"})
        if s:
            data["links"].append({"a": f"b{s}", "b": "b0"})
        for h in range(800):
            data["namespaces"].append(f"h{s}-{h}")
            data["links"].append({"a": f"h{s}-{h}", "b": f"b{s}"})
    with pytest.raises(TopologyError) as caught:
        from_dict(data)
    said = str(caught.value)
    assert said.count("in one broadcast domain") == 1 and "2,049 links" in said


# -- NAPI for big broadcast domains -----------------------------------------------------------
def test_links_past_the_256th_of_a_domain_get_gro_on_and_tso_off(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    lab = Lab("q", executor=ex, state_dir=tmp_path)
    with lab, lab.batch():
        lab.bridge("br0", namespace=lab.namespace("s"))
        for i in range(GRO_FROM + 2):
            lab.link(lab.namespace(f"h{i}"), "br0", names=("eth0", f"p{i}"))
        lab.link(lab.namespace("x"), lab.namespace("y"))  # no bridge: untouched
    gro = sorted(" ".join(argv) for argv in ex.commands if "ethtool" in argv)
    assert gro == sorted(
        [
            f"ip netns exec h{GRO_FROM} ethtool -K eth0 gro on tso off",
            f"ip netns exec s ethtool -K p{GRO_FROM} gro on tso off",
            f"ip netns exec h{GRO_FROM + 1} ethtool -K eth0 gro on tso off",
            f"ip netns exec s ethtool -K p{GRO_FROM + 1} gro on tso off",
        ]
    )
    (command,) = [c for c in ex.calls if c.argv[-5:-4] == ("p256",)]
    assert command.gro == "p256" and command.namespace == "s" and not command.batchable
