"""Limits checked before anything runs (issue 23): a Linux bridge takes at most 1,023
ports, so a lab or a file that gives one more is refused, naming the bridge and the
way out (a tree of switches).  No root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.objects.link import MAX_BRIDGE_PORTS
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
