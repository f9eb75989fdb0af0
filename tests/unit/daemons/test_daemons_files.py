"""Routing in topology files: read, checked with every problem at once (each with
its path), written back, drawn, and built as builder calls.  No root needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netns_kit import Lab
from netns_kit.daemons import builders
from netns_kit.render import to_mermaid
from netns_kit.topology import TopologyError, from_dict, load, to_dict

from ..conftest import fresh

TWO_AS = Path(__file__).parents[3] / "scripts" / "labs" / "two-as.toml"


def base(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "t",
        "namespaces": [
            {"name": "r1", "router": True, "loopback": "10.255.0.1/32"},
            {"name": "r2", "router": True, "loopback": "10.255.0.2/32"},
            "h",
        ],
        "links": [
            {"a": "r1", "b": "r2", "addresses": ["10.0.12.1/24", "10.0.12.2/24"]},
            {"a": "r2", "b": "h", "addresses": ["10.0.2.1/24", "10.0.2.2/24"]},
        ],
    }
    data.update(extra)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        from_dict(data)
    return caught.value.problems


def test_the_example_file_reads_and_round_trips() -> None:
    topo = load(TWO_AS)
    assert topo.routing is not None
    assert [r.name for r in topo.routing.routers] == ["a1", "a2", "a3", "b1", "b2"]
    assert [o.routers for o in topo.routing.ospf] == [("a1", "a2", "a3"), ("b1", "b2")]
    assert {b.router: b.asn for b in topo.routing.bgp} == {
        "a1": 65001, "a2": 65001, "a3": 65001, "b1": 65002, "b2": 65002,
    }  # fmt: skip
    assert from_dict(to_dict(topo)) == topo


def test_a_file_without_routing_has_none() -> None:
    data = base()
    data["namespaces"] = ["r1", "r2", "h"]
    assert from_dict(data).routing is None


def test_every_problem_with_its_path() -> None:
    data = base(
        ospf={"routers": ["r1", "h"], "suite": "quagga", "colour": 1},
        bgp=[
            {"router": "r1", "asn": 65001, "neighbors": ["r2"]},
            {"router": "h", "asn": 65002, "neighbors": ["r1"]},
            {"router": "r1", "asn": 65003, "neighbors": []},
        ],
    )
    data["namespaces"][1] = {"name": "r2", "router": "yes"}
    found = problems(data)
    assert "namespaces[1].router: must be true or false, not str" in found
    assert "ospf.routers[1]: 'h' is not a router (router = true in namespaces)" in found
    assert any(p.startswith("ospf.suite: 'quagga' must be one of") for p in found)
    assert any(p.startswith("ospf.colour: unknown key") for p in found)
    assert "bgp[1].router: 'h' is not a router (router = true in namespaces)" in found
    assert any(p.startswith("bgp[2].router: 'r1' has BGP already") for p in found)


def test_bgp_neighbours_need_a_path_and_each_other() -> None:
    data = base(
        namespaces=[
            {"name": "r1", "router": True, "loopback": "10.255.0.1/32"},
            {"name": "r2", "router": True, "loopback": "10.255.0.2/32"},
            {"name": "r3", "router": True, "loopback": "10.255.0.3/32"},
            "h",
        ],
        bgp=[
            {"router": "r1", "asn": 65001, "neighbors": ["r2", "r3"]},
            {"router": "r2", "asn": 65002, "neighbors": []},
            {"router": "r3", "asn": 65003, "neighbors": ["r1"]},
        ],
    )
    found = problems(data)
    assert "bgp[0].neighbors[0]: 'r2' does not name 'r1' among its neighbors" in found
    assert (
        "bgp[0].neighbors[1]: 'r3' has no path from 'r1': BGP needs a link" in found
    )  # eBGP without a shared link


def test_ibgp_over_loopbacks_needs_ospf() -> None:
    data = base(
        namespaces=[
            {"name": "r1", "router": True, "loopback": "10.255.0.1/32"},
            {"name": "r2", "router": True, "loopback": "10.255.0.2/32"},
            {"name": "r3", "router": True, "loopback": "10.255.0.3/32"},
            "h",
        ],
        links=[
            {"a": "r1", "b": "r2", "addresses": ["10.0.12.1/24", "10.0.12.2/24"]},
            {"a": "r2", "b": "r3", "addresses": ["10.0.23.2/24", "10.0.23.3/24"]},
        ],
        bgp=[
            {"router": "r1", "asn": 65001, "neighbors": ["r3"]},
            {"router": "r3", "asn": 65001, "neighbors": ["r1"]},
        ],
    )
    assert any("no path from 'r1'" in p and "OSPF" in p for p in problems(data))
    data["ospf"] = {}
    assert from_dict(data).routing is not None


def test_loopback_needs_router() -> None:
    data = base()
    data["namespaces"][2] = {"name": "h", "loopback": "10.9.9.9/32"}
    assert "namespaces[2].loopback: needs router = true" in problems(data)


def test_pictures_show_routers_areas_and_as() -> None:
    text = to_mermaid(load(TWO_AS))
    assert "router lo 10.255.1.1/32" in text
    assert "ospf area 0.0.0.0 (frr)" in text
    assert "bgp AS 65002 (frr)" in text


def test_a_file_builds_routers_and_asks_for_routing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builders.RoutingBuilders, "_routing_built", lambda self: None)
    lab = Lab.from_topology(load(TWO_AS), executor=fresh(), state_dir=tmp_path)
    with lab:
        assert set(lab.routing.routers) == {"a1", "a2", "a3", "b1", "b2"}
        assert lab.routing.ospf["a1"].instance != lab.routing.ospf["b1"].instance
        assert lab.routing.bgp["b1"].neighbors == ("b2", "a1")
        # what the lab built reads back as the same routing
        assert lab.topology().routing == load(TWO_AS).routing


def test_a_dual_stack_loopback_reads_writes_back_and_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = base(ospf={})
    data["namespaces"][0]["loopback"] = ["fd00:255::1/128", "10.255.0.1/32"]
    data["namespaces"][1]["loopback"] = "fd00:255::2/128"  # IPv6 only
    topo = from_dict(data)
    assert topo.routing is not None
    assert [r.loopback for r in topo.routing.routers] == [
        ("10.255.0.1/32", "fd00:255::1/128"),
        "fd00:255::2/128",
    ]
    written: Any = to_dict(topo)
    assert written["namespaces"][0]["loopback"] == ["10.255.0.1/32", "fd00:255::1/128"]
    assert from_dict(written) == topo
    assert "router lo 10.255.0.1/32 fd00:255::1/128" in to_mermaid(topo)
    monkeypatch.setattr(builders.RoutingBuilders, "_routing_built", lambda self: None)
    ex = fresh()
    with Lab.from_topology(topo, executor=ex, state_dir=tmp_path) as lab:
        assert lab.routing.routers["r1"] == ("10.255.0.1/32", "fd00:255::1/128")
    added = [c for c in ex.commands if c[:3] == ("ip", "-n", "r1") and "lo" in c]
    assert ("ip", "-n", "r1", "address", "add", "10.255.0.1/32", "dev", "lo") in added
    assert ("ip", "-n", "r1", "address", "add", "fd00:255::1/128", "dev", "lo") in added


@pytest.mark.parametrize(
    "loopback",
    [["10.255.0.1/32", "10.255.0.9/32"], ["fd00::1/128", "10.255.0.1/32", "10.0.0.1/32"], []],
)
def test_a_bad_loopback_list_is_a_problem_with_its_path(loopback: list[str]) -> None:
    data = base()
    data["namespaces"][0]["loopback"] = loopback
    found = problems(data)
    assert any(p.startswith("namespaces[0].loopback:") and "IPv6" in p for p in found), found


def test_ibgp_between_ipv6_loopbacks_is_a_path() -> None:
    data = base(
        ospf={},
        bgp=[
            {"router": "r1", "asn": 65001, "neighbors": ["r3"]},
            {"router": "r3", "asn": 65001, "neighbors": ["r1"]},
        ],
    )
    data["namespaces"] = [
        {"name": "r1", "router": True, "loopback": "fd00:255::1/128"},
        {"name": "r2", "router": True, "loopback": "fd00:255::2/128"},
        {"name": "r3", "router": True, "loopback": "fd00:255::3/128"},
    ]
    data["links"] = [
        {"a": "r1", "b": "r2", "addresses": ["fd00:12::1/64", "fd00:12::2/64"]},
        {"a": "r2", "b": "r3", "addresses": ["fd00:23::2/64", "fd00:23::3/64"]},
    ]
    assert from_dict(data).routing is not None
    data["namespaces"][2]["loopback"] = "10.255.0.3/32"  # no common family: no path
    assert any("no path from 'r1'" in p for p in problems(data))
