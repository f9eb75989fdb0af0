"""The reachability result, its text, JSON and heat map, and --expect files, from canned
results (no kernel)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

from netns_kit import Failure, Reachability, Target, ValidationError
from netns_kit.check.expect import Expectations, rules
from netns_kit.render import heatmap

A, B, C = "rc-a", "rc-b", "rc-c"
TARGETS = (
    Target(A, "10.0.0.1", "eth0"),
    Target(B, "10.0.0.2", "eth0"),
    Target(B, "fd00::2", "eth0"),
    Target(C, "10.0.0.3", "eth0"),
)


def result(failed: AbstractSet[tuple[str, str]] = frozenset(), **options: object) -> Reachability:
    """Every namespace to every other's addresses; ``failed`` pairs got no reply."""
    rtts: dict[tuple[str, str], float | None] = {}
    for source in (A, B, C):
        for target in TARGETS:
            if target.namespace != source:
                pair = (source, target.address)
                rtts[pair] = None if pair in failed else 0.05
    return Reachability((A, B, C), TARGETS, rtts, **options)  # type: ignore[arg-type]


def test_all_green() -> None:
    r = result(seconds=0.25, lab="rc")
    assert r.ok and r.answered == len(r) == 8
    assert r[(A, "fd00::2")] == 0.05
    assert r.matrix[(C, "10.0.0.1")] == 0.05
    assert r.failures() == []
    assert r.namespaces == [A, B, C]
    assert r.between(A, B) == [0.05, 0.05]
    assert r.summary() == (
        "8/8 pairs answered (3 sources, 4 addresses, IPv4 and IPv6; raw) in 0.25 s"
    )


def test_failures_name_source_target_namespace_and_reason() -> None:
    r = result({(A, "10.0.0.3"), (B, "10.0.0.3")}, errors={(B, "10.0.0.3"): "not sent: x"})
    assert not r.ok
    assert r.failures() == [
        Failure(A, TARGETS[3], "no reply"),
        Failure(B, TARGETS[3], "not sent: x"),
    ]
    assert str(r.failures()[0]) == "rc-a -> 10.0.0.3 (rc-c/eth0): no reply"
    assert r.grid()[(A, C)] == (0, 1)
    assert r.grid()[(A, B)] == (2, 2)


def test_to_dict_is_json_ready() -> None:
    r = result({(C, "fd00::2")}, paced=True, rounds=3, notes=("raised x",), lab="rc")
    data = json.loads(json.dumps(r.to_dict()))
    assert data["ok"] is False and data["pairs"] == 8 and data["answered"] == 7
    assert (data["paced"], data["rounds"], data["notes"], data["lab"]) == (
        True,
        3,
        ["raised x"],
        "rc",
    )
    assert data["targets"][2] == {"namespace": B, "address": "fd00::2", "interface": "eth0"}
    assert {"source": C, "namespace": B, "address": "fd00::2", "rtt_ms": None} in data["results"]
    assert data["failures"] == [
        {"source": C, "namespace": B, "address": "fd00::2", "reason": "no reply"}
    ]


def test_text_matrix() -> None:
    text = result({(C, "fd00::2"), (A, "10.0.0.3"), (B, "10.0.0.3")}, lab="rc").to_text()
    lines = text.splitlines()
    assert lines[0] == "lab rc: reachability"
    assert lines[1].split() == ["FROM", "\\", "TO", A, B, C]
    assert lines[2].split() == [A, ".", "ok", "FAIL"]
    assert lines[3].split() == [B, "ok", ".", "FAIL"]
    assert lines[4].split() == [C, "ok", "1/2", "."]
    assert lines[5].startswith("FAILED: 5/8 pairs answered")
    assert lines[6] == "3 pair(s) did not answer:"
    assert "  rc-c -> fd00::2 (rc-b/eth0): no reply" in lines


def test_compact_text_says_who_is_cut_off() -> None:
    cut = {(s, t.address) for s in (A, B, C) for t in TARGETS if C in (s, t.namespace)}
    text = result(cut).to_text(compact=True)
    assert "FROM" not in text
    assert text.splitlines()[1:] == ["no source reached: rc-c", "reached nothing: rc-c"]
    text = result(cut | {(A, "fd00::2")}).to_text(compact=True)
    assert text.splitlines()[3:] == [
        "1 other pair(s) did not answer:",
        "  rc-a -> fd00::2 (rc-b/eth0): no reply",
    ]


def test_text_is_compact_above_a_dozen_namespaces_and_lists_twenty_failures() -> None:
    names = [f"n{i}" for i in range(14)]
    targets = tuple(Target(n, f"10.0.1.{i + 1}") for i, n in enumerate(names))
    rtts: dict[tuple[str, str], float | None] = {
        (s, t.address): None if (i + j) % 2 else 0.1
        for i, s in enumerate(names)
        for j, t in enumerate(targets)
        if t.namespace != s
    }
    failed = sum(rtt is None for rtt in rtts.values())
    text = str(Reachability(tuple(names), targets, rtts))
    assert "FROM" not in text and "reached" not in text  # no namespace is cut off
    assert f"{failed} pair(s) did not answer:" in text
    assert f"... and {failed - heatmap.LISTED} more" in text
    assert text.count(": no reply") == heatmap.LISTED


def test_notes_and_an_empty_check() -> None:
    empty = Reachability((A,), (), {}, notes=("the neighbour limits cannot be raised here",))
    assert empty.ok
    text = empty.to_text()
    assert "nothing to probe" in text
    assert "note: the neighbour limits cannot be raised here" in text


def cells(html: str) -> list[ET.Element]:
    root = ET.fromstring(html)
    return [td for td in root.iter("td")]


def background(td: ET.Element) -> str:
    """A heat-map cell's colour, from its style."""
    found = re.search(r"background:(#\w+)", td.get("style", ""))
    assert found is not None, td.attrib
    return found.group(1)


def test_heat_map_one_cell_per_pair_grouped_by_namespace() -> None:
    html = result({(A, "10.0.0.3")})._repr_html_()
    root = ET.fromstring(html)
    head = root.find(".//thead")
    assert head is not None
    heads = [th.text for th in head.findall("tr")[0].findall("th")]
    assert heads == [None, A, B, C]
    spans = [th.get("colspan") for th in head.findall("tr")[0].findall("th")[1:]]
    assert spans == ["1", "2", "1"]  # B holds two addresses
    tds = cells(html)
    assert len(tds) == 3 * 4
    colours = [background(td) for td in tds]
    assert colours.count(heatmap.RED) == 1
    assert colours.count(heatmap.GREY) == 1 + 2 + 1  # A's own, B's two, C's own
    assert colours.count(heatmap.GREEN) == 12 - 1 - 4
    titles = [td.get("title") for td in tds]
    assert "rc-a -> 10.0.0.3 (rc-c): no reply" in titles
    assert "rc-b -> 10.0.0.1 (rc-a): 0.050 ms" in titles
    caption = root.find(".//caption")
    assert caption is not None and caption.text is not None
    assert caption.text.startswith("FAILED: 7/8")


def test_heat_map_of_many_addresses_has_a_cell_per_namespace() -> None:
    names = [f"n{i}" for i in range(40)]
    targets = tuple(Target(n, f"10.0.{k}.{i + 1}") for i, n in enumerate(names) for k in range(2))
    rtts: dict[tuple[str, str], float | None] = {
        (s, t.address): 1.0 for s in names for t in targets if t.namespace != s
    }
    rtts[("n0", "10.0.0.2")] = None  # half of n1 from n0
    rtts.update({("n0", t.address): None for t in targets if t.namespace == "n2"})
    html = Reachability(tuple(names), targets, rtts)._repr_html_()
    tds = cells(html)
    assert len(tds) == 40 * 40
    first_row = [background(td) for td in tds[:3]]
    assert first_row == [heatmap.GREY, heatmap.ORANGE, heatmap.RED]


def test_heat_map_escapes_names() -> None:
    hostile = "<b>&x"
    r = Reachability((hostile,), (Target("t", "10.0.0.9"),), {(hostile, "10.0.0.9"): None})
    html = r._repr_html_()
    assert "<b>" not in html
    ET.fromstring(html)  # still well formed


# -- --expect ----------------------------------------------------------------------------
def test_expect_file(tmp_path: Path) -> None:
    path = tmp_path / "expect.toml"
    path.write_text(
        '[[fail]]\nfrom = "rc-c"\nto = "rc-b"\n\n[[fail]]\nfrom = "*"\nto = "10.0.0.3/24"\n'
    )
    expect = Expectations.load(path)
    assert [str(rule) for rule in expect.rules] == ["rc-c -> rc-b", "* -> 10.0.0.3"]
    failing = {(C, "10.0.0.2"), (C, "fd00::2"), (A, "10.0.0.3"), (B, "10.0.0.3")}
    verdict = expect.verdict(result(failing))
    assert verdict.ok and len(verdict.expected) == 4 and not verdict.unused
    assert verdict.lines() == ["4 pair(s) failed as expected"]


def test_expect_reports_surprises_both_ways() -> None:
    expect = rules([(C, B), (A, "10.9.9.9")])
    verdict = expect.verdict(result({(C, "10.0.0.2"), (B, "10.0.0.1")}))
    assert not verdict.ok
    assert [str(f) for f in verdict.unexpected] == ["rc-b -> 10.0.0.1 (rc-a/eth0): no reply"]
    assert verdict.answered == ((C, TARGETS[2]),)  # C reached B's IPv6 address
    assert [str(rule) for rule in verdict.unused] == ["rc-a -> 10.9.9.9"]
    text = "\n".join(verdict.lines())
    assert "UNEXPECTED: 1 pair(s) failed" in text
    assert "UNEXPECTED: 1 pair(s) answered but should not" in text
    assert "note: rule rc-a -> 10.9.9.9 matched no pair" in text
    assert verdict.to_dict()["unexpected_answers"] == [
        {"source": C, "namespace": B, "address": "fd00::2"}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('fail = "x"\n', "fail"),
        ('[[fail]]\nfrom = 1\nto = "b"\n', "fail[0].from"),
        ('[[fail]]\nfrom = "a"\n', "fail[0].to"),
        ('[[fail]]\nfrom = "a"\nto = "b"\nvia = "c"\n', "fail[0].via"),
        ('[[pass]]\nfrom = "a"\nto = "b"\n', "pass"),
        ("not toml [", "expect"),
    ],
)
def test_bad_expect_files(tmp_path: Path, body: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ValidationError) as caught:
        Expectations.load(path)
    assert caught.value.field == field
