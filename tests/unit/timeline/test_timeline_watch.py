"""lab.watch and lab.timeline on the fake executor: exact argv, fake probes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.executors.probes import ProbeJob
from netns_kit.objects.link import VethPair
from netns_kit.timeline import actions, fping_loop
from netns_kit.timeline.run import Happened, Run

from ..conftest import make_lab

CARRIER = '[{"ifname": "x", "flags": ["BROADCAST", "UP", "LOWER_UP"]}]'


def chain(ex: RecordingExecutor, state: Path) -> Lab:
    """h1 - r - h2, with addresses."""
    lab = make_lab(ex, state)
    lab.open()
    for name in ("h1", "r", "h2"):
        lab.namespace(name)
        ex.answer(("ip", "-n", name, "-j", "link", "show"), stdout=CARRIER)
    lab.link("h1", "r", addresses=["10.1.0.1/24", "10.1.0.2/24"])
    lab.link("r", "h2", addresses=["10.2.0.1/24", "10.2.0.2/24"])
    return lab


def test_watch_resolves_pairs_into_one_job_per_source(ex: RecordingExecutor, state: Path) -> None:
    with chain(ex, state) as lab, lab.watch([("h1", "h2"), ("h1", "10.1.0.2"), ("r", "h1")]) as w:
        pass
    (fake,) = ex.watches
    assert fake.jobs == [
        ProbeJob("h1", ("10.2.0.2", "10.1.0.2")),
        ProbeJob("r", ("10.1.0.1",)),
    ]
    assert fake.interval == 0.01
    assert [s.pair for s in w.series] == [("h1", "h2"), ("h1", "10.1.0.2"), ("r", "h1")]
    assert [s.address for s in w.series] == ["10.2.0.2", "10.1.0.2", "10.1.0.1"]
    assert all(s.sent >= 1 and s.answered() == s.sent for s in w.series)
    assert w.method == "raw"


def test_watch_takes_objects_and_a_source_address(ex: RecordingExecutor, state: Path) -> None:
    with chain(ex, state) as lab:
        found = lab.watch([(lab["h2"], lab["h1"]), ("10.1.0.1", "r")], interval="20ms")
        assert [(w.namespace, w.address) for w in found.watched] == [
            ("h2", "10.1.0.1"),
            ("h1", "10.1.0.2"),
        ]
        assert found.interval == pytest.approx(0.02)


@pytest.mark.parametrize(
    ("pairs", "field"),
    [
        ([("h1", "nowhere")], "pairs[0][1]"),
        ([("ghost", "h2")], "pairs[0][0]"),
        ([("h1",)], "pairs[0]"),
        ("h1", "pairs"),
        ([], "pairs"),
        ([("h1", "h2"), ("h1", "h2")], "pairs"),
    ],
)
def test_watch_refuses_bad_pairs_before_probing(
    ex: RecordingExecutor, state: Path, pairs: object, field: str
) -> None:
    with chain(ex, state) as lab:
        with pytest.raises(ValidationError) as caught:
            lab.watch(pairs)
        assert caught.value.field == field
    assert ex.watches == []


@pytest.mark.parametrize("interval", [0, "0.5us", "fast", -1, 120, True])
def test_watch_refuses_bad_intervals(ex: RecordingExecutor, state: Path, interval: object) -> None:
    with chain(ex, state) as lab, pytest.raises(ValidationError) as caught:
        lab.watch([("h1", "h2")], interval=interval)
    assert caught.value.field == "interval"


def test_watch_without_raw_sockets_starts_fping_loops(ex: RecordingExecutor, state: Path) -> None:
    ex.can_watch = False
    with chain(ex, state) as lab, lab.watch([("h1", "h2"), ("h1", "r"), ("h2", "h1")]) as w:
        assert w.method == "fping"
        started = [p.command.argv for p in ex.started]
    loop = ("fping", "-l", "-D", "-p", "10", "-i", "1", "-t", "100")
    assert started == [
        ("ip", "netns", "exec", "h1", *loop, "10.2.0.2", "10.1.0.2"),
        ("ip", "netns", "exec", "h2", *loop, "10.1.0.1"),
    ]
    assert ex.started[0].command.inside is not None  # from a setns'd thread where it can


def test_fping_lines_become_probes_with_the_lost_ones_filled_in() -> None:
    job = ProbeJob("h1", ("10.0.0.2", "10.0.0.3"))
    offset = 1000.0  # the wall clock is the monotonic clock + 1000 s
    out = "\n".join(
        [
            "[1010.00050] 10.0.0.2 : [0], 64 bytes, 0.500 ms (0.5 avg, 0% loss)",
            "[1010.02050] 10.0.0.2 : [2], 64 bytes, 0.500 ms (0.5 avg, 33% loss)",
            "[1010.03050] 10.0.0.2 : [3], 64 bytes, 0.500 ms (0.5 avg, 25% loss)",
            "garbage line",
            "[1010.00120] 10.0.0.9 : [0], 64 bytes, 0.100 ms (0.1 avg, 0% loss)",
        ]
    )
    a, b = fping_loop.parse(
        job, out, interval=0.01, timeout=0.1, started=10.0, stopped=10.135, offset=offset
    )
    assert [p.sent for p in a] == pytest.approx([10.0, 10.01, 10.02, 10.03])
    assert [p.answered is None for p in a] == [False, True, False, False]
    assert a[0].answered == pytest.approx(10.0005)
    assert [p.sent for p in b] == pytest.approx([10.0, 10.01, 10.02, 10.03])
    assert all(p.answered is None for p in b)


def test_timeline_runs_named_actions_and_measures_the_fake_outage(
    ex: RecordingExecutor, state: Path
) -> None:
    with chain(ex, state) as lab:
        cut: list[float] = []

        def answer(namespace: str, address: str, sent: float) -> float | None:
            if address == "10.2.0.2" and cut and (len(cut) == 1 or sent < cut[1]):
                return None if sent >= cut[0] else 0.0001
            return 0.0001

        ex.watch_answer = answer
        t = lab.timeline()
        t.at("10ms", lambda: cut.append(__import__("time").monotonic()))
        t.at("20ms", "down", target=["r", "h2"])
        t.at("40ms", "up", target=["h2", "r"], end="h2")
        t.at("50ms", lambda: cut.append(__import__("time").monotonic()))
        before = len(ex.commands)
        run = t.run(watch=[("h1", "h2"), ("h1", "r")], interval="1ms", until="80ms")
        ran = ex.commands[before:]
    assert ("ip", "-n", "r", "link", "set", "dev", "r-h2", "down") in ran
    assert ("ip", "-n", "h2", "link", "set", "dev", "h2-r", "down") in ran
    assert ("ip", "-n", "h2", "link", "set", "dev", "h2-r", "up") in ran
    assert ("ip", "-n", "r", "link", "set", "dev", "r-h2", "up") not in ran
    # up waits for the carrier, then forgets what the ends could not resolve meanwhile
    assert ("ip", "-n", "h2", "-j", "link", "show", "dev", "h2-r") in ran
    assert ("ip", "-n", "h2", "neigh", "flush", "dev", "h2-r", "nud", "incomplete") in ran
    assert ("ip", "-n", "r", "neigh", "flush", "dev", "r-h2", "nud", "failed") in ran
    assert [e.label for e in run.events][1:3] == ["r--h2 down", "h2--r up"]
    (outage,) = run.outages()
    assert outage.pair == ("h1", "h2")
    assert outage.lost >= 30
    assert run.max_outage(("h1", "h2")) == pytest.approx(outage.duration)
    assert run.max_outage(("h1", "r")) == 0.0
    assert run.lost(("h1", "r")) == 0
    assert run.to_dict()["outages"][0]["lost"] == outage.lost
    assert "h1 -> h2" in run.table() and "<table>" in run._repr_html_()


@pytest.mark.parametrize(
    ("action", "arguments", "field"),
    [
        ("explode", {"target": ["r", "h2"]}, "do"),
        ("down", {}, "target"),
        ("down", {"target": ["r", "h1", "h2"]}, "target"),
        ("down", {"target": ["h1", "h2"]}, "target"),
        ("down", {"target": ["r", "h2"], "end": "h1"}, "end"),
        ("down", {"target": ["r", "h2"], "speed": 1}, "speed"),
        ("shape", {"target": ["r", "h2"]}, "shape"),
        ("shape", {"target": ["r", "h2"], "rate": "fast"}, "rate"),
        ("isolate", {"target": "ghost"}, "target"),
        ("partition", {"target": [["r", "h2"], ["x", "y"]]}, "target[1]"),
    ],
)
def test_named_actions_are_checked_when_added(
    ex: RecordingExecutor, state: Path, action: str, arguments: dict[str, object], field: str
) -> None:
    with chain(ex, state) as lab:
        before = len(ex.commands)
        with pytest.raises(ValidationError) as caught:
            lab.timeline().at("1s", action, **arguments)
        assert caught.value.field == field
        assert ex.commands[before:] == []


def test_isolate_takes_every_link_of_the_namespace_down(ex: RecordingExecutor, state: Path) -> None:
    with chain(ex, state) as lab:
        t = lab.timeline()
        t.at(0, "isolate", target="r")
        t.at(0, "rejoin", target=lab["r"])
        t.at(0, "shape", target=["h2", "r"], rate="1mbit", direction="a->b")
        before = len(ex.commands)
        t.run(watch=[("h1", "h2")], until=0)
        ran = ex.commands[before:]
    downs = [a for a in ran if a[-1] == "down"]
    assert sorted(a[2] for a in downs) == ["h1", "h2", "r", "r"]
    shaped = [a for a in ran if a[0] == "tc"]
    assert shaped and shaped[0][:3] == ("tc", "-n", "h2")  # h2 -> r: what h2's end sends


def test_run_stops_early_when_asked(ex: RecordingExecutor, state: Path) -> None:
    with chain(ex, state) as lab:
        stop = threading.Event()
        stop.set()
        t = lab.timeline()
        t.at("5s", "down", target=["r", "h2"])
        run = t.run(watch=[("h1", "h2")], until="10s", stop=stop)
    assert run.stopped and run.events == ()


def test_converged_at() -> None:
    from netns_kit.timeline.outages import Probe, Series

    probes = [Probe(i * 0.1, None if 5 <= i < 9 else i * 0.1) for i in range(20)]
    run = Run(
        (Series(("a", "b"), probes),),
        (Happened(0.45, "l down", 0.45, 0.46), Happened(1.5, "l up", 1.5, 1.51)),
        0.1,
        0.1,
        2.0,
    )
    assert run.converged_at("l down") == pytest.approx(0.9)
    assert run.converged_at(1) == 1.5
    with pytest.raises(ValidationError):
        run.converged_at("nothing")


def test_the_action_registry_takes_new_actions(ex: RecordingExecutor, state: Path) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    actions.register(
        "poke",
        actions.Action("namespace", lambda lab, ns, args: seen.append((ns, dict(args))), ("how",)),
    )
    try:
        with chain(ex, state) as lab:
            t = lab.timeline()
            t.at(0, "poke", target="r", how="gently")
            run = t.run(watch=[("h1", "h2")], until=0)
        assert seen == [("r", {"how": "gently"})]
        assert run.events[0].label == "r poke"
    finally:
        del actions.ACTIONS["poke"]


def test_a_link_method_is_labelled_like_a_named_action(ex: RecordingExecutor, state: Path) -> None:
    with chain(ex, state) as lab:
        pair = lab.link("h1", "h2", addresses=["10.3.0.1/24", "10.3.0.2/24"])
        assert isinstance(pair, VethPair)
        t = lab.timeline()
        assert t.at(0, pair.down).label == "h1--h2 down"
        assert t.at(0, print).label == "print"
