"""[[events]], [watch] and the run bounds of [expect] in topology files, and
`netns-kit run`, on the fake executor."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from netns_kit import RecordingExecutor, ValidationError, cli, topology
from netns_kit.check.expect import Expectations
from netns_kit.record.registry import Registry
from netns_kit.timeline import bounds
from netns_kit.timeline.cli import load
from netns_kit.timeline.outages import Probe, Series
from netns_kit.timeline.run import Happened, Run

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "scripts" / "labs" / "chain-events.toml"
CARRIER = '[{"ifname": "x", "flags": ["UP", "LOWER_UP"]}]'

BASE: dict[str, Any] = {
    "name": "t",
    "namespaces": ["h1", "r", "h2"],
    "links": [
        {"a": "h1", "b": "r", "addresses": ["10.1.0.1/24", "10.1.0.2/24"]},
        {"a": "r", "b": "h2", "addresses": ["10.2.0.1/24", "10.2.0.2/24"]},
    ],
    "watch": {"pairs": [["h1", "h2"]], "interval": "10ms", "until": "3s"},
    "events": [{"at": "1s", "do": "down", "target": ["r", "h2"]}],
}


def problems(**changes: Any) -> list[str]:
    data = {**BASE, **changes}
    with pytest.raises(ValidationError) as caught:
        topology.from_dict(data)
    return list(caught.value.problems)  # type: ignore[attr-defined]


def test_the_example_file_reads_back() -> None:
    topo, plan = load(str(EXAMPLE))
    assert topo.name == "tl-chain"
    assert [(e.at, e.do, e.target) for e in plan.events] == [
        (1.0, "down", ("tl-r", "tl-h2")),
        (3.0, "up", ("tl-r", "tl-h2")),
    ]
    assert plan.watch is not None
    assert plan.watch.pairs == (("tl-h1", "tl-h2"), ("tl-h1", "tl-r"))
    assert (plan.watch.interval, plan.watch.until) == (0.01, 4.0)
    assert plan.expect.bounds.for_pair(("tl-h1", "tl-h2")) == bounds.Bound(
        ("tl-h1", "tl-h2"), 2.2, 250
    )


def test_a_good_timeline_is_accepted() -> None:
    assert topology.from_dict(BASE).name == "t"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"events": [{"at": "1s", "do": "explode", "target": "r"}]}, "events[0].do: 'explode'"),
        ({"events": [{"at": "soon", "do": "down", "target": ["r", "h2"]}]}, "events[0].at:"),
        ({"events": [{"do": "down", "target": ["r", "h2"]}]}, "events[0].at: required"),
        ({"events": [{"at": 1, "do": "down", "target": ["h1", "h2"]}]}, "events[0].target:"),
        ({"events": [{"at": 1, "do": "isolate", "target": "ghost"}]}, "events[0].target:"),
        ({"events": [{"at": 1, "do": "down", "target": ["r", "h2"], "end": "h1"}]}, ".end:"),
        ({"events": [{"at": 1, "do": "down", "target": ["r", "h2"], "x": 1}]}, "events[0].x:"),
        ({"events": [{"at": 1, "do": "shape", "target": ["r", "h2"], "rate": "1q"}]}, ".rate:"),
        ({"events": [{"at": 1, "do": "partition", "target": [["r", "h2"], 5]}]}, "target[1]"),
        ({"events": "often"}, "events: must be an array"),
        ({"watch": {"pairs": [["h1", "nowhere"]]}}, "watch.pairs[0][1]: 'nowhere'"),
        ({"watch": {"pairs": []}}, "watch.pairs: must be a non-empty"),
        ({"watch": {"pairs": [["h1", "h2"]], "interval": "0s"}}, "watch.interval:"),
        ({"watch": {"pairs": [["h1", "h2"]], "every": 1}}, "watch.every: unknown key"),
        ({"watch": {"pairs": [["h1", "h2"]], "until": "0.5s"}}, "watch.until: 0.5 s is before"),
        ({"watch": None, "events": BASE["events"]}, "watch: must be a table"),
        ({"expect": {"max_outage": "long"}}, "expect.max_outage:"),
        ({"expect": {"lost": -1}}, "expect.lost: -1"),
        ({"expect": {"pairs": [{"pair": ["h1"]}]}}, "expect.pairs[0].pair:"),
        ({"expect": {"maximum": 1}}, "expect.maximum:"),
    ],
)
def test_bad_timelines_name_the_field_and_value(changes: dict[str, Any], expected: str) -> None:
    found = problems(**changes)
    assert any(expected in p for p in found), found


def test_events_without_a_watch_are_refused() -> None:
    data = {k: v for k, v in BASE.items() if k != "watch"}
    with pytest.raises(ValidationError, match=r"events: need a \[watch\] table"):
        topology.from_dict(data)


def test_expect_keeps_its_fail_rules_beside_the_bounds() -> None:
    expect = Expectations.from_dict(
        {"fail": [{"from": "a", "to": "b"}], "max_outage": "2s", "lost": 0}
    )
    assert len(expect.rules) == 1
    assert expect.bounds.every == bounds.Bound(None, 2.0, 0)


def _run(pattern: str) -> Run:
    probes = [Probe(i * 0.1, None if c == "x" else i * 0.1) for i, c in enumerate(pattern)]
    return Run(
        (Series(("h1", "h2"), probes), Series(("h1", "r"), [Probe(0, 0)])),
        (Happened(0.1, "down", 0.1, 0.1),),
        0.1,
        0.1,
        1.0,
    )


def test_bounds_say_which_pair_broke_what() -> None:
    limits = bounds.from_dict({"lost": 1, "pairs": [{"pair": ["h1", "h2"], "max_outage": 0.25}]})
    assert limits.failures(_run("..x..")) == []
    assert limits.failures(_run(".xxx.")) == [
        "h1 -> h2: longest outage 0.400 s > max_outage 0.25 s",
        "h1 -> h2: 3 probes lost > lost 1",
    ]
    other = bounds.from_dict({"pairs": [{"pair": ["x", "y"], "lost": 0}]})
    assert other.failures(_run("...")) == ["pair x -> y has bounds but was not watched"]


def _cli(state: Path, *argv: str, ex: RecordingExecutor) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--state-dir", str(state), *argv], executor=ex, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _fake() -> RecordingExecutor:
    ex = RecordingExecutor()
    for name in ("tl-h1", "tl-r", "tl-h2"):
        ex.answer(("ip", "-n", name, "-j", "link", "show"), stdout=CARRIER)
    return ex


def _short(tmp_path: Path, **expect: Any) -> Path:
    """The example, ten times faster, with other bounds."""
    text = EXAMPLE.read_text().split("[expect]")[0]
    text = text.replace('"4s"', '"0.4s"').replace('"1s"', '"0.1s"').replace('"3s"', '"0.3s"')
    if expect:
        text += "[expect]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in expect.items())
    path = tmp_path / "short.toml"
    path.write_text(text)
    return path


def test_cli_run_builds_probes_reports_and_tears_down(tmp_path: Path) -> None:
    ex = _fake()
    code, out, err = _cli(tmp_path / "state", "run", str(_short(tmp_path)), ex=ex)
    assert (code, err) == (0, "")
    assert "tl-r--tl-h2 down" in out and "outages: none" in out and "torn down" in out
    assert ("ip", "-n", "tl-r", "link", "set", "dev", "tl-r-tl-h2", "down") in ex.commands
    assert ex.commands[-1][:3] == ("ip", "netns", "delete")
    assert len(ex.watches) == 1 and ex.watches[0].interval == 0.01


def test_cli_run_exits_1_when_a_bound_fails_and_says_why(tmp_path: Path) -> None:
    ex = _fake()
    ex.watch_answer = lambda ns, address, sent: None if address == "10.21.2.2" else 0.0001
    path = _short(tmp_path, max_outage="0.1s")
    code, out, _ = _cli(tmp_path / "state", "run", str(path), "--json", ex=ex)
    assert code == 1
    data = json.loads(out)
    assert data["expect"]["ok"] is False
    assert data["expect"]["failures"][0].startswith("tl-h1 -> tl-h2: longest outage")
    assert data["run"]["outages"][0]["pair"] == ["tl-h1", "tl-h2"]
    assert [e["label"] for e in data["run"]["events"]] == ["tl-r--tl-h2 down", "tl-r--tl-h2 up"]


def test_cli_run_keep_leaves_the_lab_up(tmp_path: Path) -> None:
    ex = _fake()
    code, out, _ = _cli(tmp_path / "state", "run", str(_short(tmp_path)), "--keep", ex=ex)
    assert code == 0 and "kept up" in out
    assert not any(argv[:3] == ("ip", "netns", "delete") for argv in ex.commands)
    record = Registry(tmp_path / "state").read("tl-chain")
    assert record is not None and record.state == "kept"


def test_cli_run_refuses_a_bad_file_before_building(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(EXAMPLE.read_text().replace('do = "down"', 'do = "explode"'))
    ex = _fake()
    code, _, err = _cli(tmp_path / "state", "run", str(path), ex=ex)
    assert code == 2 and "events[0].do: 'explode'" in err
    assert ex.commands == []


def test_cli_run_needs_a_watch(tmp_path: Path) -> None:
    ex = _fake()
    code, _, err = _cli(
        tmp_path / "state", "run", str(ROOT / "scripts/labs/two-machines.toml"), ex=ex
    )
    assert code == 1 and "no [watch] table" in err
    assert ex.commands == []
