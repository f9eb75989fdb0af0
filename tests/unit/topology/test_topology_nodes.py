"""Topology files for issue 11: bridges in namespaces, switch-to-switch links, NAT and
port forwards anywhere, hosts files, and the whole-file checks that go with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netns_kit import Lab, topology
from netns_kit.spec import BridgeSpec, LinkSpec, MasqueradeSpec, PortForwardSpec, RouteSpec
from netns_kit.topology import TopologyError

from ..conftest import fresh, lines

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"


def problems_of(data: object) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        topology.from_dict(data)
    return caught.value.problems


def router(**extra: Any) -> dict[str, Any]:
    """A small NAT router: pc on a switch inside gw, gw wired to isp."""
    data: dict[str, Any] = {
        "name": "t",
        "isolated": True,
        "namespaces": ["gw", "pc", "isp"],
        "bridges": [{"name": "lan0", "namespace": "gw", "address": "192.168.1.1/24"}],
        "links": [
            {"a": "pc", "b": "lan0", "addresses": ["192.168.1.10/24"]},
            {"a": "gw", "b": "isp", "names": ["wan0", "eth0"], "addresses": ["203.0.113.2/24"]},
        ],
    }
    data.update(extra)
    return data


def test_the_home_router_example() -> None:
    lab = topology.load(LABS / "home-router.toml")
    assert lab.hosts is True
    assert lab.bridges == (BridgeSpec("lan0", "192.168.1.1/24", "router"),)
    assert lab.masquerades == (MasqueradeSpec("192.168.1.0/24", "wan0", "router"),)
    assert lab.port_forwards == (
        PortForwardSpec("8080", "192.168.1.10:80", "tcp", "wan0", "router"),
    )
    assert RouteSpec("default", "203.0.113.1", None, "router") in lab.routes
    assert topology.from_dict(topology.to_dict(lab)) == lab


def test_the_mininet_tree_example() -> None:
    lab = topology.load(LABS / "mininet-tree.toml")
    assert len(lab.namespaces) == 13
    assert [b.namespace for b in lab.bridges] == ["s1", "s2", "s3", "s4"]
    named = lab.with_link_names().links
    assert [(link.a, link.b, link.names) for link in named[:3]] == [
        ("br1", "br2", ("s1-s2", "s2-s1")),
        ("br1", "br3", ("s1-s3", "s3-s1")),
        ("br1", "br4", ("s1-s4", "s4-s1")),
    ]
    assert topology.from_dict(topology.to_dict(lab)) == lab


def test_a_file_builds_what_the_builders_build(state: Path) -> None:
    ex = fresh(namespace="gw")
    data = router(
        masquerade=[{"namespace": "gw", "source": "192.168.1.0/24", "out_interface": "wan0"}],
        port_forwards=[{"namespace": "gw", "port": 8080, "to": "192.168.1.10:80"}],
        hosts=True,
    )
    with Lab.from_dict(data, executor=ex, state_dir=state) as lab:
        built = lab.topology()
        done = lines(ex.commands)
    assert built.port_forwards == (PortForwardSpec("8080", "192.168.1.10:80", namespace="gw"),)
    assert built.hosts and built.bridges == (BridgeSpec("lan0", "192.168.1.1/24", "gw"),)
    assert "ip -n gw link add name lan0 type bridge mcast_snooping 0" in done
    assert any(line.startswith("tee /etc/netns/gw/hosts") for line in done)
    assert sum("-A PREROUTING" in line for line in done) == 1


def test_bridges_joined_by_links_are_one_segment() -> None:
    data = {
        "name": "t",
        "namespaces": ["s1", "s2", "h1", "h2", "h3"],
        "bridges": [
            {"name": "br1", "namespace": "s1", "address": "10.0.0.1/24"},
            {"name": "br2", "namespace": "s2"},
        ],
        "links": [
            {"a": "br1", "b": "br2"},
            {"a": "h1", "b": "br2", "addresses": ["10.0.0.5/24"]},
            {"a": "h2", "b": "br2", "addresses": ["10.0.1.5/24"]},
            {"a": "h3", "b": "br2", "addresses": ["10.0.0.5/24"]},
        ],
    }
    assert problems_of(data) == [
        "links[2].addresses[0]: '10.0.1.5/24' is not in the subnet of bridge 'br2' "
        "(switched with 'br1') (10.0.0.0/24, from bridges[0].address)",
        "links[3].addresses[0]: '10.0.0.5/24' is already used on bridge 'br2' "
        "(switched with 'br1') by links[1].addresses[0]",
    ]


def test_a_segment_without_a_bridge_address_takes_its_first_hosts_subnet() -> None:
    data = {
        "name": "t",
        "namespaces": ["s1", "h1", "h2", "h3"],
        "bridges": [{"name": "br1", "namespace": "s1"}],
        "links": [
            {"a": "h1", "b": "br1", "addresses": ["10.0.0.1/8"]},
            {"a": "h2", "b": "br1", "addresses": ["fd00::2/64"]},  # another version: fine
            {"a": "h3", "b": "br1", "addresses": ["10.0.0.3/24"]},
        ],
    }
    assert problems_of(data) == [
        "links[2].addresses[0]: '10.0.0.3/24' is not in the subnet of bridge 'br1' "
        "(10.0.0.0/8, from links[0].addresses[0])"
    ]


def test_the_new_keys_are_checked_with_paths_and_suggestions() -> None:
    data = router(
        hosts="yes",
        bridges=[
            {"name": "lan0", "namespace": "gww", "address": "192.168.1.1/24"},
            {"name": "lan1", "namespace": "gw", "stp": 1},
        ],
        masquerade=[{"namespace": "gw", "source": "192.168.1.0/24", "out_interface": "wan1"}],
        port_forwards=[
            {"namespace": "gw", "port": 70000, "to": "192.168.1.10"},
            {"namespace": "gw", "port": 80, "to": "10.9.9.9"},
            {"namespace": "gw", "port": 81, "to": "192.168.1.10", "protocol": "sctp"},
            {"namespace": "gw", "port": 82, "to": "192.168.1.10", "in_interface": "wan9"},
            {"namespace": "gw", "port": 83, "tto": "192.168.1.10"},
        ],
    )
    assert problems_of(data) == [
        "hosts: must be true or false, not a string ('yes')",
        "bridges[0].namespace: 'gww' is not a namespace of this lab (did you mean 'gw'?)",
        "bridges[1].stp: must be true or false, not an integer (1)",
        # links[0] names the broken lan0: reported once, above, not again here
        "masquerade[0].out_interface: 'wan1' is not an interface in namespace 'gw' "
        "(it has: wan0) (did you mean 'wan0'?)",
        "port_forwards[4].tto: unknown key (did you mean 'to'?)",
        "port_forwards[4].to: required key is missing",
        "port_forwards[0].port: 70000 is not between 1 and 65535",
        "port_forwards[1].to: '10.9.9.9' is not in a subnet namespace 'gw' reaches "
        "(connected: 203.0.113.0/24; and no route leads there)",
        "port_forwards[2].protocol: 'sctp' must be 'tcp' or 'udp' (forward both: twice)",
        "port_forwards[3].in_interface: 'wan9' is not an interface in namespace 'gw' "
        "(it has: wan0) (did you mean 'wan0'?)",
    ]


def test_a_forward_reaches_its_target_through_a_route() -> None:
    data = router(
        routes=[{"namespace": "gw", "destination": "10.9.0.0/16", "via": "203.0.113.1"}],
        port_forwards=[{"namespace": "gw", "port": 80, "to": "10.9.9.9"}],
    )
    assert topology.from_dict(data).port_forwards[0].to == "10.9.9.9"


def test_duplicate_and_overlapping_rules_are_refused() -> None:
    data = router(
        masquerade=[
            {"namespace": "gw", "source": "192.168.1.0/24"},
            {"namespace": "gw", "source": "192.168.1.0/24"},
            {"source": "192.168.1.0/24"},  # the host side's: another rule
        ],
        port_forwards=[
            {"namespace": "gw", "port": "8000-8010", "to": "192.168.1.10"},
            {"namespace": "gw", "port": 8005, "to": "192.168.1.11", "in_interface": "wan0"},
            {"namespace": "gw", "port": 8005, "to": "192.168.1.11", "protocol": "udp"},
            {"namespace": "gw", "port": 8011, "to": "192.168.1.11"},
        ],
    )
    assert problems_of(data) == [
        "masquerade[1]: the same masquerade is already given by masquerade[0]",
        "port_forwards[1].port: tcp 8005 is already forwarded in namespace 'gw' by "
        "port_forwards[0]",
    ]


def test_a_namespace_is_not_linked_to_its_own_switch() -> None:
    data = router()
    data["links"].append({"a": "gw", "b": "lan0"})
    assert problems_of(data) == [
        "links[2].b: 'lan0' is a bridge inside namespace 'gw' (bridges[0].namespace): "
        "the namespace is on it through the bridge's own address"
    ]


def test_a_gateway_on_a_switch_inside_the_namespace_is_reachable() -> None:
    data = router(
        routes=[
            {"namespace": "pc", "destination": "default", "via": "192.168.1.1"},
            {"namespace": "gw", "destination": "10.0.0.0/8", "via": "192.168.1.10"},
            {"namespace": "gw", "destination": "10.1.0.0/16", "dev": "lan0"},
        ]
    )
    assert len(topology.from_dict(data).routes) == 3
    data = router(routes=[{"namespace": "isp", "destination": "default", "via": "192.168.1.1"}])
    assert problems_of(data) == [
        "routes[0].via: '192.168.1.1' is not in a subnet connected to namespace 'isp' "
        "(it has no addresses)"
    ]


def test_a_bridge_link_may_start_at_the_bridge() -> None:
    data = router()
    data["links"][0] = {"a": "lan0", "b": "pc", "addresses": ["", "192.168.1.10/24"]}
    lab = topology.from_dict(data)
    assert lab.with_link_names().links[0] == LinkSpec(
        "lan0", "pc", ("veth-pc-br", "veth-pc"), (None, "192.168.1.10/24")
    )


def test_netns_kit_up_shows_switches_anywhere_and_the_nat_rules(tmp_path: Path) -> None:
    import io

    from netns_kit import RecordingExecutor
    from netns_kit.cli import main

    out, err = io.StringIO(), io.StringIO()
    state = str(tmp_path / "state")
    args = ["--state-dir", state, "up", str(LABS / "home-router.toml")]
    assert main(args, executor=RecordingExecutor(), stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    for row in (
        "pc1        eth0       192.168.1.10/24  veth to lan0 (lan0-pc1)",
        "router     lan0       192.168.1.1/24   bridge",
        "router     lan0-pc1                    port of lan0",
        "router     wan0       203.0.113.2/24   veth to isp/eth0",
        "router     masquerade 192.168.1.0/24            out wan0",
        "router     forward tcp 8080 -> 192.168.1.10:80  in wan0",
    ):
        assert row in text.splitlines(), row
    assert "1 port forward, hosts files is up" in text
    main(["--state-dir", state, "down", "home-router"], executor=RecordingExecutor(), stdout=out)
