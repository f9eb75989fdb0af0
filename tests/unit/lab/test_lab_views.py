"""A lab's views with a fake executor: pictures, Jupyter HTML, lab["name"], snapshot().

The lab is built on a RecordingExecutor and its reads are answered with the real
``ip -j`` samples in fixtures/ (see fixtures/README.md), their namespace names swapped
for the lab's own.  Pictures are checked for structure (the SVG parses as XML and
names every namespace and interface), never against a golden file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.readback.reader import Snapshot

FIXTURES = Path(__file__).parent.parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"
#: The samples' namespaces (host, red, blue) and the roles they play here.
SAMPLE_NAMES = {"ikh-5cfe": "host", "ikr-5cfe": "red", "ikb-5cfe": "blue"}
INTERFACES = ("veth-red", "veth-red-br", "veth-blue", "veth-blue-br", "red-blue", "blue-red")


def answer(ex: RecordingExecutor, names: dict[str, str]) -> None:
    """Answer every read of the lab's namespaces (role -> name) with the samples."""

    def sample(tag: str, kind: str) -> str:
        text = (FIXTURES / f"{tag}.{kind}.json").read_text()
        for old, role in SAMPLE_NAMES.items():
            text = text.replace(old, names[role])
        return text

    recorded = {"host": "rch-5cfe", "red": "rcr-5cfe", "blue": "rcb-5cfe"}
    for role, ns in names.items():
        text = (FIXTURES / f"{recorded[role]}.read.txt").read_text()
        for other, name in recorded.items():
            text = text.replace(name, names[other])
        ex.answer(["ip", "-n", ns, "-d", "-j", "-force", "-batch", "-"], stdout=text)
    for role, ns in names.items():
        ex.answer(["ip", "-n", ns, "-d", "-j", "link", "show"], stdout=sample(role, "link"))
        ex.answer(["ip", "-n", ns, "-j", "addr", "show"], stdout=sample(role, "addr"))
        ex.answer(["ip", "-n", ns, "-j", "route", "show"], stdout=sample(role, "route"))
        ex.answer(["ip", "-n", ns, "-6", "-j", "route", "show"], stdout=sample(role, "route6"))
        ex.answer(["ip", "-n", ns, "-j", "netns", "list-id"], stdout=sample(role, "list-id"))


def build(ex: RecordingExecutor, state: Path, name: str = "views", prefix: str = "") -> Lab:
    """The samples' lab: red and blue on bridge v-net-0, and a direct red-blue veth."""
    lab = Lab(name, executor=ex, isolated=True, state_dir=state)
    red = lab.namespace(f"{prefix}red")
    blue = lab.namespace(f"{prefix}blue")
    bridge = lab.bridge("v-net-0", "192.168.15.5/24")
    lab.link(red, bridge, addresses=("192.168.15.1/24", None), names=("veth-red", "veth-red-br"))
    lab.link(blue, bridge, addresses=("192.168.15.2/24", None), names=("veth-blue", "veth-blue-br"))
    lab.link(red, blue, names=("red-blue", "blue-red"), mtu=1400)
    assert lab.host_side is not None
    answer(ex, {"host": lab.host_side, "red": red.name, "blue": blue.name})
    return lab


@pytest.fixture
def ex() -> RecordingExecutor:
    return RecordingExecutor()


@pytest.fixture
def lab(ex: RecordingExecutor, state: Path) -> Iterator[Lab]:
    lab = build(ex, state)
    yield lab
    lab.close()


def svg_text(svg: str) -> list[str]:
    """Every piece of text an SVG shows (and its title), after XML parsing."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [el.text or "" for el in root.iter() if el.tag in (f"{SVG}text", f"{SVG}title")]


def since(ex: RecordingExecutor, start: int) -> list[tuple[str, ...]]:
    return ex.commands[start:]


# -- pictures ------------------------------------------------------------------------------
def test_svg_parses_and_names_every_namespace_interface_and_address(lab: Lab) -> None:
    texts = svg_text(lab.to_svg())
    shown = "\n".join(texts)
    assert "red" in texts and "blue" in texts  # each namespace is a box with its name
    assert "views-host" in shown  # the host side is marked as such
    assert any(t.startswith("v-net-0") for t in texts)
    for interface in INTERFACES:
        assert interface in texts, interface
    for address in ("192.168.15.1/24", "192.168.15.2/24", "192.168.15.5/24"):
        assert address in shown, address


def test_svg_is_drawn_from_what_was_built_without_reading_the_kernel(
    lab: Lab, ex: RecordingExecutor
) -> None:
    start = len(ex.commands)
    lab.to_svg()
    lab.to_mermaid()
    lab.to_dot()
    assert since(ex, start) == []


def test_mermaid_has_every_node_and_every_link(lab: Lab) -> None:
    text = lab.to_mermaid()
    assert text.startswith("flowchart")
    nodes = dict(re.findall(r'^\s*(ns\d+)\("([^"]*)"\)', text, re.M))
    assert [label.split("<br/>")[0] for label in nodes.values()] == ["red", "blue"]
    assert re.search(r'^\s*br\d+\[\["v-net-0<br/>192\.168\.15\.5/24"\]\]', text, re.M)
    assert 'subgraph host["host side: views-host"]' in text
    edges = re.findall(r'^\s*(\w+) ---\|"([^"]*)"\| (\w+)$', text, re.M)
    assert len(edges) == 3
    labels = [label for _, label, _ in edges]
    for interface in INTERFACES:
        assert any(interface in label for label in labels), interface


def test_dot_has_every_node_and_every_link(lab: Lab) -> None:
    text = lab.to_dot()
    assert text.startswith('graph "views" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    for node in ('"ns:red"', '"ns:blue"', '"bridge:v-net-0"'):
        assert re.search(rf"^\s*{re.escape(node)} \[label=", text, re.M), node
    edges = re.findall(r'^\s*("[^"]+") -- ("[^"]+") \[(.*)\];$', text, re.M)
    assert len(edges) == 3
    ends = {(a, b) for a, b, _ in edges}
    assert ('"ns:red"', '"bridge:v-net-0"') in ends
    assert ('"ns:red"', '"ns:blue"') in ends
    for interface in INTERFACES:
        assert f'"{interface}"' in text, interface


# -- Jupyter --------------------------------------------------------------------------------
def test_lab_repr_html_has_the_svg_and_a_live_table(lab: Lab, ex: RecordingExecutor) -> None:
    start = len(ex.commands)
    page = lab._repr_html_()
    assert lab.to_svg().strip() in page
    table = page[page.index("<table") :]
    ET.fromstring(table)  # well-formed
    head = re.findall(r"<th>([^<]*)</th>", table)
    assert head == ["namespace", "interface", "address", "state", "master", "shaping"]
    rows = [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", table)]
    assert ["views-host", "v-net-0", "192.168.15.5/24", "UP", "", ""] in rows
    assert ["views-host", "veth-red-br", "", "UP", "v-net-0", ""] in rows
    assert ["red", "veth-red", "192.168.15.1/24", "UP", "", ""] in rows
    assert ["blue", "blue-red", "", "DOWN", "", ""] in rows  # state as the kernel said it
    assert {row[0] for row in rows} == {"views-host", "red", "blue"}
    assert not any(row[1] == "lo" for row in rows)  # loopback is left out
    reads = since(ex, start)
    assert reads, "the table must come from a live read"
    assert all("-j" in argv for argv in reads)  # ip -j, never text


def test_closed_lab_shows_its_picture_and_reads_nothing(lab: Lab, ex: RecordingExecutor) -> None:
    lab.close()
    start = len(ex.commands)
    page = lab._repr_html_()
    assert "<svg" in page and "<table" not in page
    assert "is closed" in page
    assert since(ex, start) == []


def test_namespace_repr_html_shows_only_that_namespace(lab: Lab, ex: RecordingExecutor) -> None:
    start = len(ex.commands)
    page = lab["red"]._repr_html_()
    ET.fromstring(page)
    rows = [re.findall(r"<td>([^<]*)</td>", row) for row in re.findall(r"<tr><td>.*?</tr>", page)]
    assert ["red", "veth-red", "192.168.15.1/24", "UP", "", ""] in rows
    assert {row[0] for row in rows} == {"red"}
    assert {row[1] for row in rows} == {"veth-red", "red-blue"}
    assert {argv[2] for argv in since(ex, start) if argv[1] == "-n"} >= {"red"}


def test_names_are_escaped_in_every_view(ex: RecordingExecutor, state: Path) -> None:
    """Names may hold < > & (the kernel takes them): every view must escape them."""
    lab = build(ex, state, name="v<&>", prefix="<b>&")
    try:
        texts = svg_text(lab.to_svg())  # would not parse if a name went in raw
        assert "<b>&red" in texts and "<b>&blue" in texts
        page = lab._repr_html_()
        assert "<b>" not in page.replace(lab.to_svg().strip(), "")
        assert "&lt;b&gt;&amp;red" in page
        assert "<b>" not in lab["<b>&red"]._repr_html_()
        mermaid = lab.to_mermaid()
        assert "<b>" not in mermaid and "#lt;b#gt;#amp;red" in mermaid
        assert '"ns:<b>&red"' in lab.to_dot()  # DOT quotes; < & need no escape there
    finally:
        lab.close()


# -- lab["name"], namespaces, snapshot ---------------------------------------------------
def test_lab_getitem_and_namespaces(lab: Lab) -> None:
    assert [ns.name for ns in lab.namespaces] == ["red", "blue"]
    assert lab["blue"] is lab.namespaces[1]
    with pytest.raises(KeyError, match="has no namespace 'views-host'"):
        lab["views-host"]  # the host side is not one of the lab's namespaces
    with pytest.raises(KeyError, match="green"):
        lab["green"]


def test_snapshot_reads_the_host_side_then_each_namespace(lab: Lab, ex: RecordingExecutor) -> None:
    snap = lab.snapshot()
    assert [state.name for state in snap] == ["views-host", "red", "blue"]
    assert snap["views-host"].link("veth-red-br").master == "v-net-0"
    peer = snap["views-host"].link("veth-blue-br").peer
    assert peer is not None and (peer.name, peer.namespace) == ("veth-blue", "blue")
    assert snap["red"].link("red-blue").mtu == 1400
    assert lab.snapshot() == snap
    assert Snapshot.from_json(snap.to_json()) == snap


def test_snapshot_of_a_plain_lab_reads_the_root_only_when_it_holds_a_bridge(
    ex: RecordingExecutor, state: Path
) -> None:
    with Lab("plain", executor=ex, state_dir=state) as lab:
        red, blue = lab.namespace("red"), lab.namespace("blue")
        lab.link(red, blue)
        start = len(ex.commands)
        assert [s.name for s in lab.snapshot()] == ["red", "blue"]
        assert all(argv[1] == "-n" for argv in since(ex, start))  # no root read

        lab.bridge("br0")
        start = len(ex.commands)
        assert [s.name for s in lab.snapshot()] == [None, "red", "blue"]
        assert ("ip", "-d", "-j", "-force", "-batch", "-") in since(ex, start)  # the root


def test_a_bad_name_is_refused_before_any_read(lab: Lab, ex: RecordingExecutor) -> None:
    start = len(ex.commands)
    with pytest.raises(KeyError):
        lab["a/b"]
    with pytest.raises(ValidationError):
        lab.namespace("a/b")
    assert since(ex, start) == []
