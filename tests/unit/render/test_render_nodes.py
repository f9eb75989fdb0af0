"""Pictures of labs whose namespaces are switches, routers and NAT gateways (issue 11):
switches inside boxes, switch-to-switch wires, NAT notes, trees in rows."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from netns_kit import render, topology
from netns_kit.render.model import build_model, levels
from netns_kit.spec import BridgeSpec, LinkSpec, Topology

from .test_render import SVG, boxes, segments, texts, wires

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"


def home() -> Topology:
    return topology.load(LABS / "home-router.toml")


def tree() -> Topology:
    return topology.load(LABS / "mininet-tree.toml")


def ring() -> Topology:
    return Topology(
        "ring",
        namespaces=("s1", "s2", "s3", "h1", "h2", "h3"),
        bridges=tuple(BridgeSpec(f"br{i}", namespace=f"s{i}", stp=True) for i in (1, 2, 3)),
        links=(
            LinkSpec("br1", "br2"),
            LinkSpec("br2", "br3"),
            LinkSpec("br3", "br1"),
            *(LinkSpec(f"h{i}", f"br{i}", addresses=(f"10.0.0.{i}/24", None)) for i in (1, 2, 3)),
        ),
    )


def box_of(svg: str) -> dict[str, tuple[float, float, float, float]]:
    """Each namespace's box, by the title written in it."""
    found = boxes(svg)
    root = ET.fromstring(svg)
    titles = [
        ("".join(t.itertext()), float(t.get("x", 0)), float(t.get("y", 0)))
        for t in root.iter(f"{SVG}text")
        if t.get("font-weight") == "bold"
    ]
    named = {}
    for x, y, w, h in found:
        for text, tx, ty in titles:
            if x < tx < x + w and y < ty < y + 30:
                named[text] = (x, y, w, h)
    return named


def test_the_home_router_shows_its_switch_and_its_nat_in_the_router_box() -> None:
    svg = render.to_svg(home())
    words = texts(svg)
    assert "switch lan0 192.168.1.1/24 (2 ports)" in words
    assert "masquerade 192.168.1.0/24 out wan0" in words
    assert "forward tcp 8080 on wan0 -> 192.168.1.10:80" in words
    assert "names in /etc/netns/<ns>/hosts" in words
    # nothing lives on the host side: no host box
    assert not any(w.startswith("host side") for w in words)
    placed = box_of(svg)
    assert set(placed) == {"router", "pc1", "pc2", "isp"}
    assert placed["router"][1] < placed["pc1"][1] == placed["pc2"][1] == placed["isp"][1]
    # three wires, one from each box below to the router
    assert len(wires(svg)) == 3


def test_the_nat_and_switch_lines_have_their_own_colours() -> None:
    root = ET.fromstring(render.to_svg(home()))
    fill = {"".join(t.itertext()): t.get("fill") for t in root.iter(f"{SVG}text")}
    assert fill["masquerade 192.168.1.0/24 out wan0"] == render.COLOURS["nat"]
    assert fill["switch lan0 192.168.1.1/24 (2 ports)"] == render.COLOURS["bridge"]
    assert fill["default via 203.0.113.1"] == render.COLOURS["note"]


def test_a_switch_port_tab_has_the_bridge_colour() -> None:
    root = ET.fromstring(render.to_svg(home()))
    rects = list(root.iter(f"{SVG}rect"))
    tab_of: dict[str, str | None] = {}
    texts_ = list(root.iter(f"{SVG}text"))
    for text in texts_:
        content = "".join(text.itertext())
        for rect in rects:
            x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
            w, h = float(rect.get("width", 0)), float(rect.get("height", 0))
            if (
                h == 18
                and x < float(text.get("x", 0)) < x + w
                and y < float(text.get("y", 0)) < y + h
            ):
                tab_of.setdefault(content, rect.get("stroke"))
    assert tab_of["lan0-pc1"] == render.COLOURS["bridge"]
    assert tab_of["wan0"] == render.COLOURS["ns_stroke"]


def test_a_tree_is_drawn_in_rows_by_level() -> None:
    svg = render.to_svg(tree())
    placed = box_of(svg)
    assert len(placed) == 13
    ys = {name: box[1] for name, box in placed.items()}
    assert ys["s1"] < ys["s2"] == ys["s3"] == ys["s4"] < ys["h1"]
    assert len({ys[f"h{i}"] for i in range(1, 10)}) == 1
    # children sit under their own switch, in order
    xs = {name: box[0] for name, box in placed.items()}
    assert xs["h1"] < xs["h2"] < xs["h3"] < xs["h4"] < xs["h9"]
    assert xs["s2"] < xs["s3"] < xs["s4"]
    assert len(wires(svg)) == 12


@pytest.mark.parametrize("make", [home, tree, ring], ids=["home", "tree", "ring"])
def test_switch_labs_keep_wires_off_boxes_and_off_each_other(make: object) -> None:
    assert callable(make)
    svg = render.to_svg(make())
    for x, y, w, h in boxes(svg):
        inside = (x + 1, y + 1, x + w - 1, y + h - 1)
        for (ax, ay), (bx, by) in segments(svg):
            lo_x, hi_x = sorted((ax, bx))
            lo_y, hi_y = sorted((ay, by))
            assert hi_x <= inside[0] or lo_x >= inside[2] or hi_y <= inside[1] or lo_y >= inside[3]
    found = wires(svg)
    for one, two in itertools.combinations(found, 2):
        for (a1, a2), (b1, b2) in itertools.product(
            itertools.pairwise(one), itertools.pairwise(two)
        ):
            if a1[0] == a2[0] == b1[0] == b2[0]:
                assert min(max(a1[1], a2[1]), max(b1[1], b2[1])) <= max(
                    min(a1[1], a2[1]), min(b1[1], b2[1])
                )


def test_levels_start_from_the_middle_and_keep_families_together() -> None:
    model = build_model(tree())
    assert model.rows == (
        ("s1",),
        ("s2", "s3", "s4"),
        ("h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"),
    )
    chain = Topology(
        "c",
        namespaces=tuple("abcde"),
        links=tuple(LinkSpec(x, y) for x, y in itertools.pairwise("abcde")),
    )
    assert build_model(chain).rows[0] == ("c",)  # the middle of a-b-c-d-e
    assert levels(["a", "b"], []) == ()  # nothing wired: the plain grid


def test_a_switch_in_a_namespace_linked_to_a_host_bridge_drops_from_the_bar() -> None:
    topo = Topology(
        "mixed",
        namespaces=("s1",),
        bridges=(BridgeSpec("core", "10.0.0.254/24"), BridgeSpec("br1", namespace="s1")),
        links=(LinkSpec("br1", "core"),),
    )
    svg = render.to_svg(topo)
    words = texts(svg)
    assert "core  10.0.0.254/24" in words
    assert {"s1-core", "core-s1", "switch br1 (1 port)"} <= set(words)


def test_two_bridges_of_one_namespace_are_a_note_in_its_box() -> None:
    topo = Topology(
        "two",
        namespaces=("core",),
        bridges=(BridgeSpec("left", namespace="core"), BridgeSpec("right", namespace="core")),
        links=(LinkSpec("left", "right"),),
    )
    words = texts(render.to_svg(topo))
    assert "veth left-right -- right-left joins left and right" in words


def test_mermaid_puts_switches_inside_their_namespace() -> None:
    text = render.to_mermaid(home())
    assert '  subgraph ns0box["router"]' in text
    assert '    ns0sw0[["switch lan0 192.168.1.1/24 (2 ports)"]]' in text
    assert '  ns1 ---|"eth0 -- lan0-pc1"| ns0sw0' in text
    assert '  ns0 ---|"wan0 -- eth0"| ns3' in text
    assert "forward tcp 8080 on wan0 -#gt; 192.168.1.10:80" in text
    assert "subgraph host" not in text


def test_dot_puts_switches_in_a_cluster_and_wires_switch_to_switch() -> None:
    text = render.to_dot(tree())
    assert "  subgraph cluster_ns0 {" in text
    assert '"switch:s1/br1" -- "switch:s2/br2" [taillabel="s1-s2", headlabel="s2-s1"];' in text
    assert '"ns:h1" -- "switch:s2/br2" [taillabel="eth0", headlabel="h1"];' in text
    assert "cluster_host" not in text


def test_a_running_labs_picture_is_rebuilt_with_switches_anywhere() -> None:
    from netns_kit.readback.reader import (
        LinkInfo,
        NamespaceState,
        PeerInfo,
        Snapshot,
    )
    from netns_kit.topology.observed import topology_of

    s1 = NamespaceState(
        "s1",
        (
            LinkInfo("br0", "bridge", "UP", 1500),
            LinkInfo("s1-s2", "veth", "UP", 1500, master="br0", peer=PeerInfo("s2-s1", "s2")),
        ),
    )
    s2 = NamespaceState(
        "s2",
        (
            LinkInfo("br0", "bridge", "UP", 1500),
            LinkInfo("s2-s1", "veth", "UP", 1500, master="br0", peer=PeerInfo("s1-s2", "s1")),
            LinkInfo("h", "veth", "UP", 1500, master="br0", peer=PeerInfo("eth0", "h1")),
        ),
    )
    h1 = NamespaceState("h1", (LinkInfo("eth0", "veth", "UP", 1500, peer=PeerInfo("h", "s2")),))
    topo = topology_of(Snapshot((s1, s2, h1)), name="t", isolated=True, host_side="t-host")
    assert topo.bridges == (BridgeSpec("br0", None, "s1"), BridgeSpec("br0", None, "s2"))
    assert topo.links == (
        LinkSpec("s1/br0", "s2/br0", ("s1-s2", "s2-s1")),
        LinkSpec("h1", "s2/br0", ("eth0", "h")),
    )
    assert "switch br0 (2 ports)" in texts(render.to_svg(topo))


def test_pictures_of_a_lab_on_machines_say_where_and_which_links_are_tunnels() -> None:
    from netns_kit import topology
    from netns_kit.render.model import build_model

    lab = topology.load(Path(__file__).resolve().parents[3] / "scripts/labs/two-machines.toml")
    model = build_model(lab)
    assert model.host_side_label == "host side: two-machines-host on each machine"
    assert model.notes("red")[-1:] == ["on machine a"]
    assert model.notes("blue")[-1:] == ["on machine b"]
    assert "vxlan sw-a-sw-b -- sw-b-sw-a joins sw-a and sw-b" in model.host_side_notes
    assert {"sw-a on machine a", "sw-b on machine b"} <= set(model.host_side_notes)
    (tunnel,) = [w for w in model.wires if w.ns_b == "blue"]
    assert tunnel.shaping == "vxlan"
    assert all(w.shaping is None for w in model.wires if w.bridge is not None)
