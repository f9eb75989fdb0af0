"""Pictures and tables, checked for structure (not against golden files that rot)."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from netns_kit import render
from netns_kit.readback.reader import AddressInfo, LinkInfo, NamespaceState, Snapshot
from netns_kit.spec import BridgeSpec, LinkSpec, MasqueradeSpec, RouteSpec, SysctlSpec, Topology

SVG = "{http://www.w3.org/2000/svg}"
NS_FILL = "#eef4fb"


def seed(isolated: bool = True) -> Topology:
    """The seed's bridge lab: red and blue on bridge v-net-0."""
    return Topology(
        "bridge",
        isolated=isolated,
        namespaces=("red", "blue"),
        bridges=(BridgeSpec("v-net-0", "192.168.15.5/24"),),
        links=(
            LinkSpec("red", "v-net-0", addresses=("192.168.15.1/24", None)),
            LinkSpec("blue", "v-net-0", addresses=("192.168.15.2/24", None)),
        ),
    )


def twenty() -> Topology:
    names = tuple(f"ns{i:02d}" for i in range(20))
    return Topology(
        "twenty",
        namespaces=names,
        bridges=(BridgeSpec("br0", "10.0.0.254/24"),),
        links=tuple(
            LinkSpec(n, "br0", addresses=(f"10.0.0.{i + 1}/24", None)) for i, n in enumerate(names)
        ),
        routes=(RouteSpec("default", via="10.0.0.254", namespace="ns00"),),
    )


def mesh() -> Topology:
    """Every kind of route a wire can take: across, under a row, one and two rows down."""
    names = ("a", "r1", "r2", "b", "c", "d", "e")
    return Topology(
        "mesh",
        isolated=True,
        namespaces=names,
        bridges=(BridgeSpec("lan", "10.9.0.1/24"), BridgeSpec("wan", "10.8.0.1/24")),
        links=(
            LinkSpec("a", "r1", addresses=("10.0.1.1/24", "10.0.1.2/24")),
            LinkSpec("r1", "r2"),
            LinkSpec("r2", "b"),
            LinkSpec("a", "e"),
            LinkSpec("a", "r2"),
            LinkSpec("c", "lan"),
            LinkSpec("d", "lan"),
            LinkSpec("e", "lan"),
            LinkSpec("r1", "d"),
            LinkSpec("r2", "wan"),
            LinkSpec("e", "wan"),
        ),
        routes=(RouteSpec("default", via="10.8.0.1", namespace="r2"),),
        sysctls=(SysctlSpec("net.ipv4.ip_forward", "1"),),
        masquerades=(MasqueradeSpec("10.9.0.0/24", "wan"),),
    )


def chain() -> Topology:
    """A wire leaving a box downwards right above one entering the box below."""
    return Topology(
        "chain",
        namespaces=("a", "r1", "r2", "b", "c", "d", "e"),
        bridges=(BridgeSpec("lan", "10.9.0.1/24"),),
        links=(
            LinkSpec("a", "r1"),
            LinkSpec("r2", "b"),
            LinkSpec("a", "e"),
            LinkSpec("c", "lan"),
            LinkSpec("e", "lan"),
        ),
    )


def texts(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def boxes(svg: str) -> list[tuple[float, float, float, float]]:
    root = ET.fromstring(svg)
    return [
        (
            float(r.get("x", 0)),
            float(r.get("y", 0)),
            float(r.get("width", 0)),
            float(r.get("height", 0)),
        )
        for r in root.iter(f"{SVG}rect")
        if r.get("fill") == NS_FILL
    ]


def segments(svg: str) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    root = ET.fromstring(svg)
    found = []
    for line in root.iter(f"{SVG}polyline"):
        points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
        found += list(itertools.pairwise(points))
    return found  # type: ignore[return-value]


# -- SVG -------------------------------------------------------------------------------
def test_seed_svg_parses_and_names_everything() -> None:
    svg = render.to_svg(seed())
    words = texts(svg)
    for name in ("red", "blue", "veth-red", "veth-red-br", "veth-blue", "veth-blue-br"):
        assert name in words
    for address in ("192.168.15.1/24", "192.168.15.2/24"):
        assert address in words
    assert "v-net-0  192.168.15.5/24" in words
    assert "host side: bridge-host" in words
    assert len(boxes(svg)) == 2


def test_host_side_label_says_where_bridges_live() -> None:
    assert "host side (root namespace)" in texts(render.to_svg(seed(isolated=False)))
    assert "host side: bridge-host" not in texts(render.to_svg(seed(isolated=False)))


def test_twenty_namespaces_render_without_overlap() -> None:
    svg = render.to_svg(twenty())
    words = texts(svg)
    for i in range(20):
        assert f"ns{i:02d}" in words
        assert f"veth-ns{i:02d}" in words
        assert f"veth-ns{i:02d}-br" in words
        assert f"10.0.0.{i + 1}/24" in words
    found = boxes(svg)
    assert len(found) == 20
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in itertools.combinations(found, 2):
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    root = ET.fromstring(svg)
    width = float(root.get("width", 0))
    assert width < 1600  # laid out in rows, not one long line


@pytest.mark.parametrize(
    "topology", [seed(), twenty(), mesh(), chain()], ids=["seed", "twenty", "mesh", "chain"]
)
def test_wires_never_cross_a_namespace_box(topology: Topology) -> None:
    svg = render.to_svg(topology)
    for x, y, w, h in boxes(svg):
        inside = (x + 1, y + 1, x + w - 1, y + h - 1)
        for (ax, ay), (bx, by) in segments(svg):
            lo_x, hi_x = sorted((ax, bx))
            lo_y, hi_y = sorted((ay, by))
            assert hi_x <= inside[0] or lo_x >= inside[2] or hi_y <= inside[1] or lo_y >= inside[3]


def wires(svg: str) -> list[list[tuple[float, float]]]:
    root = ET.fromstring(svg)
    return [
        [(float(x), float(y)) for x, y in (p.split(",") for p in line.get("points", "").split())]
        for line in root.iter(f"{SVG}polyline")
        if line.get("stroke") not in ("white", render.COLOURS["bridge"])
    ]


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return min(max(a), max(b)) - max(min(a), min(b))


@pytest.mark.parametrize("topology", [twenty(), mesh(), chain()], ids=["twenty", "mesh", "chain"])
def test_wires_never_run_on_top_of_each_other(topology: Topology) -> None:
    found = wires(render.to_svg(topology))
    assert len(found) == len(topology.links)
    for one, two in itertools.combinations(found, 2):
        for (a1, a2), (b1, b2) in itertools.product(
            itertools.pairwise(one), itertools.pairwise(two)
        ):
            if a1[0] == a2[0] == b1[0] == b2[0]:  # both vertical on one x
                assert _overlap((a1[1], a2[1]), (b1[1], b2[1])) <= 0
            if a1[1] == a2[1] == b1[1] == b2[1]:  # both horizontal on one y
                assert _overlap((a1[0], a2[0]), (b1[0], b2[0])) <= 0


def test_box_text_fits_inside_its_box() -> None:
    long = "n" * 15
    topology = Topology(
        "long",
        namespaces=("a-rather-long-namespace-name", "b"),
        links=(
            LinkSpec(
                "a-rather-long-namespace-name",
                "b",
                names=(long, "x" * 15),
                addresses=("fd00:1234:5678:9abc:def0:1234:5678:9abc/64", None),
            ),
        ),
    )
    svg = render.to_svg(topology)
    root = ET.fromstring(svg)
    (x, _, w, _), _ = boxes(svg)
    for text in root.iter(f"{SVG}text"):
        content = "".join(text.itertext())
        if content in (
            "a-rather-long-namespace-name",
            "fd00:1234:5678:9abc:def0:1234:5678:9abc/64",
        ):
            size = float(text.get("font-size", 12))
            assert float(text.get("x", 0)) + len(content) * size * 0.6 <= x + w


def test_mesh_shows_host_notes_and_all_interfaces() -> None:
    topology = mesh()
    svg = render.to_svg(topology)
    words = texts(svg)
    for link in topology.with_link_names().links:
        assert link.names is not None
        for name in link.names:
            assert name in words
    assert "sysctl net.ipv4.ip_forward=1" in words
    assert "masquerade 10.9.0.0/24 out wan" in words
    assert "default via 10.8.0.1" in words


def test_empty_topology_still_draws_the_host_side() -> None:
    svg = render.to_svg(Topology("empty"))
    assert "host side (root namespace)" in texts(svg)
    assert boxes(svg) == []


HOSTILE = Topology(
    "x<&\"'>",
    isolated=True,
    namespaces=("a<b", 'q"&z', "c\x01d"),
    bridges=(BridgeSpec("br<1>", "10.0.0.1/24"),),
    links=(
        LinkSpec("a<b", "br<1>", names=("if<&>", "p&q"), addresses=("10.0.0.2/24", None)),
        LinkSpec('q"&z', "c\x01d", names=('o"k', "z]]>")),
    ),
)


def test_svg_escapes_every_name() -> None:
    svg = render.to_svg(HOSTILE)
    words = texts(svg)  # parses: nothing broke out of its element
    for name in ("a<b", 'q"&z', "if<&>", "p&q", 'o"k', "z]]>", "host side: x<&\"'>-host"):
        assert name in words
    assert "c\ufffdd" in words  # a control character cannot appear in XML at all
    assert "<b" not in svg.replace("<br", "")


def test_mermaid_escapes_every_name() -> None:
    text = render.to_mermaid(HOSTILE)
    labels = [label.replace("<br/>", "\n") for label in re.findall(r'"([^"]*)"', text)]
    assert labels and not any(ch in label for label in labels for ch in "<>&")
    assert "a#lt;b" in text and "q#quot;#amp;z" in text and "if#lt;#amp;#gt;" in text


def test_dot_escapes_every_name() -> None:
    text = render.to_dot(HOSTILE)
    assert '"ns:q\\"&z"' in text
    assert 'taillabel="o\\"k"' in text
    # every line's quotes are balanced once escaped quotes are taken out
    for line in text.splitlines():
        assert line.replace('\\"', "").count('"') % 2 == 0


# -- DOT and Mermaid -------------------------------------------------------------------
def test_dot_has_every_node_and_edge() -> None:
    text = render.to_dot(seed())
    assert text.startswith('graph "bridge" {')
    for node in ('"ns:red"', '"ns:blue"', '"bridge:v-net-0"'):
        assert f"  {node} [" in text or f"    {node} [" in text
    assert '"ns:red" -- "bridge:v-net-0" [taillabel="veth-red", headlabel="veth-red-br"]' in text
    assert '"ns:blue" -- "bridge:v-net-0"' in text
    assert text.count(" -- ") == 2
    assert 'label="host side: bridge-host"' in text


def test_dot_between_namespaces() -> None:
    topology = Topology("pair", namespaces=("red", "blue"), links=(LinkSpec("red", "blue"),))
    text = render.to_dot(topology)
    assert '"ns:red" -- "ns:blue" [taillabel="veth-red", headlabel="veth-blue"]' in text
    assert 'label="host side (root namespace)"' in text


def test_mermaid_has_every_node_and_edge() -> None:
    text = render.to_mermaid(seed())
    assert text.startswith("flowchart TB\n")
    assert 'subgraph host["host side: bridge-host"]' in text
    assert 'br0[["v-net-0<br/>192.168.15.5/24"]]' in text
    assert 'ns0("red<br/>veth-red 192.168.15.1/24")' in text
    assert 'ns1("blue<br/>veth-blue 192.168.15.2/24")' in text
    assert 'ns0 ---|"veth-red -- veth-red-br"| br0' in text
    assert 'ns1 ---|"veth-blue -- veth-blue-br"| br0' in text


def test_mermaid_twenty() -> None:
    text = render.to_mermaid(twenty())
    assert text.count("---|") == 20
    assert all(f'ns{i}("ns{i:02d}' in text for i in range(20))


# -- tables ----------------------------------------------------------------------------
def snapshot(name: str = "red") -> Snapshot:
    return Snapshot(
        (
            NamespaceState(
                name,
                links=(
                    LinkInfo("lo", "loopback", "UNKNOWN", 65536),
                    LinkInfo("veth-red", "veth", "UP", 1500, master=None),
                    LinkInfo("bare", "veth", "DOWN", 1500),
                ),
                addresses=(
                    AddressInfo("lo", "127.0.0.1/8", "inet", "host"),
                    AddressInfo("veth-red", "192.168.15.1/24", "inet", "global"),
                    AddressInfo("veth-red", "fe80::1/64", "inet6", "link"),
                ),
            ),
            NamespaceState(
                "bridge-host",
                links=(LinkInfo("veth-red-br", "veth", "UP", 1500, master="v-net-0"),),
            ),
        )
    )


def test_table_rows_leave_out_loopback_and_link_local() -> None:
    rows = render.table_rows(snapshot())
    assert rows == [
        render.TableRow("red", "veth-red", "192.168.15.1/24", "UP", ""),
        render.TableRow("red", "bare", "", "DOWN", ""),
        render.TableRow("bridge-host", "veth-red-br", "", "UP", "v-net-0"),
    ]
    everything = render.table_rows(snapshot(), loopback=True, link_local=True)
    assert [r.address for r in everything if r.namespace == "red"] == [
        "127.0.0.1/8",
        "192.168.15.1/24",
        "fe80::1/64",
        "",
    ]


def test_html_table() -> None:
    table = ET.fromstring(render.to_html_table(snapshot()))
    header = [th.text for th in table.iter("th")]
    assert header == ["namespace", "interface", "address", "state", "master", "shaping"]
    rows = [[td.text or "" for td in tr.iter("td")] for tr in table.iter("tr")][1:]
    assert rows[0] == ["red", "veth-red", "192.168.15.1/24", "UP", "", ""]
    assert rows[2] == ["bridge-host", "veth-red-br", "", "UP", "v-net-0", ""]


def test_html_table_escapes() -> None:
    text = render.to_html_table(snapshot("<script>&"))
    assert "<script>" not in text
    table = ET.fromstring(text)
    assert next(td.text for td in table.iter("td")) == "<script>&"


def test_text_table_aligns_columns() -> None:
    lines = render.to_text_table(snapshot()).splitlines()
    assert lines[0].split() == ["namespace", "interface", "address", "state", "master", "shaping"]
    assert lines[1].split() == ["red", "veth-red", "192.168.15.1/24", "UP"]
    column = lines[0].index("interface")
    assert all(line[column:].startswith(("interface", "veth", "bare")) for line in lines)


def test_a_rootless_labs_host_side_is_named_as_the_sandbox() -> None:
    from netns_kit.render import host_side_label
    from netns_kit.spec import Topology as Plan

    assert host_side_label(Plan("t", sandboxed=True)) == "host side (the sandbox's own namespace)"
    assert (
        host_side_label(Plan("t", isolated=True, sandboxed=True))
        == "host side: t-host in its sandbox"
    )
    assert host_side_label(Plan("t")) == "host side (root namespace)"
    assert Plan("t", sandboxed=True) == Plan("t")  # how it was built is not what it is
