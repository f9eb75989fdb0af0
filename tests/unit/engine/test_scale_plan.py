"""The planner at scale (issue 23): the port lanes of a tree's switches share one wave,
each enslaving a port before it brings it up; batches cut below the descriptors an
``ip -batch`` leaks; a batch that fails without a line number is read back.  No root."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import CommandError, Lab, RecordingExecutor
from netns_kit.command import ip
from netns_kit.engine.plan import in_order, schedule
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Phase, Step
from netns_kit.executors.batch import FD_BUDGET, Batch, chunks, leaks
from netns_kit.objects.link import Bridge, VethPair
from netns_kit.objects.namespace import Namespace
from netns_kit.result import Result


def _tree_steps(switches: int, hosts: int) -> list[Step]:
    """A core switch and ``switches`` edge switches with ``hosts`` hosts each."""
    steps: list[Step] = []
    core = Bridge("br0", "core")
    steps += Namespace("core").create_steps()
    steps += core.steps(tag=None, link_local=False)
    for s in range(switches):
        edge = Bridge("br0", f"s{s}")
        steps += Namespace(f"s{s}").create_steps()
        steps += edge.steps(tag=None, link_local=False)
        up = VethPair(f"s{s}-up", f"core-{s}", f"s{s}", "core")
        steps += up.steps(tag=None, ports=(edge, core), link_local=False)
        for h in range(hosts):
            steps += Namespace(f"h{s}-{h}").create_steps()
            pair = VethPair("eth0", f"p{h}", f"h{s}-{h}", f"s{s}")
            steps += pair.steps(tag=None, addresses=("10.0.0.1/8", None), ports=(None, edge))
    return steps


def test_the_switches_of_a_tree_share_one_wave() -> None:
    steps = _tree_steps(switches=6, hosts=3)
    waves = schedule(steps)
    configure = [
        w
        for w in waves
        if any(steps[i].phase == Phase.CONFIGURE for r in w.runs() for i in r.indexes)
    ]
    port_waves = [w for w in configure if any(steps[i].port for r in w.runs() for i in r.indexes)]
    assert len(port_waves) == 1  # not one wave per switch namespace
    (wave,) = port_waves
    assert {lane[0].namespace for lane in wave.lanes} == {"core", *(f"s{s}" for s in range(6))}
    # the hosts' own settings come in the next wave, all together
    hosts = configure[configure.index(wave) + 1]
    assert len(hosts.lanes) == 6 * 3


def test_each_port_lane_enslaves_a_port_before_it_brings_it_up() -> None:
    steps = _tree_steps(switches=3, hosts=2)
    for wave in schedule(steps):
        for lane in wave.lanes:
            order = [steps[i].command.argv for run in lane for i in run.indexes]
            for k, argv in enumerate(order):
                if argv[-2:-1] == ("master",):
                    device = argv[argv.index("dev") + 1]
                    ups = [j for j, a in enumerate(order) if a[-1] == "up" and device in a]
                    assert ups and min(ups) > k, (device, order)


def test_a_lab_tree_builds_its_switch_ports_in_one_wave(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    with Lab("q", executor=ex, state_dir=tmp_path) as lab, lab.batch():
        core = lab.bridge("br0", namespace=lab.namespace("core"))
        for s in range(4):
            edge = lab.bridge("br0", namespace=lab.namespace(f"s{s}"))
            lab.link(edge, core)
            for h in range(2):
                lab.link(lab.namespace(f"h{s}{h}"), edge, addresses=(f"10.0.{s}.{h + 1}/16", None))
    made = [" ".join(argv) for argv in ex.commands]
    for s in range(4):  # every port is a port before its far end is up
        for h in range(2):
            port = made.index(f"ip -n s{s} link set dev veth-h{s}{h}-br master br0")
            assert port < made.index(f"ip -n h{s}{h} link set dev veth-h{s}{h} up")


# -- chunks ---------------------------------------------------------------------------------
def _veth(i: int) -> VethPair:
    return VethPair(f"a{i}", f"b{i}", f"x{i}", "sw")


def test_leaks_count_the_netns_words_of_a_line() -> None:
    assert leaks(_veth(0).create_commands()[0]) == 2
    assert leaks(ip("netns", "add", "x")) == 0
    assert leaks(ip("link", "set", "dev", "x", "up")) == 0


def test_a_root_batch_is_cut_below_the_descriptor_budget() -> None:
    commands = [ip("netns", "add", f"x{i}") for i in range(300)]
    commands += [_veth(i).create_commands()[0] for i in range(300)]
    sizes = chunks(commands)
    assert sum(sizes) == 600 and len(sizes) == 2
    assert sizes[0] == 300 + FD_BUDGET // 2  # all the adds, then 200 veth lines
    waves = in_order(commands)
    assert [len(w.runs()[0].indexes) for w in waves] == sizes
    assert [w.runs()[0].indexes[0] for w in waves] == [0, sizes[0]]  # in order


def test_schedule_cuts_the_root_lane_too() -> None:
    steps: list[Step] = []
    for i in range(450):
        steps += Namespace(f"x{i}").create_steps()[:1]
        steps.append(_veth(i).end.created(_veth(i).create_commands()[0]))
    runs = [run for wave in schedule(steps) for run in wave.runs() if run.namespace is None]
    for run in runs:
        assert sum(leaks(steps[i].command) for i in run.indexes) <= FD_BUDGET
    assert sum(len(run.indexes) for run in runs) == 900


# -- a batch that fails without saying where -------------------------------------------------
class _Unsaid(RecordingExecutor):
    """A batch that dies as ``ip`` out of descriptors does: no ``Command failed``."""

    def execute_batch(self, batch: Batch) -> Result:
        super().execute_batch(batch)
        said = 'Error: argument "x9" is wrong: Invalid "netns" value'
        return Result(batch.process().argv, 255, "", said)


def test_a_batch_failing_without_a_line_number_is_uncertain_whole() -> None:
    commands = [ip("netns", "add", f"x{i}") for i in range(3)]
    report = Runner(_Unsaid()).run_all(commands)
    assert report.uncertain == frozenset({0, 1, 2})
    assert report.error is not None
    assert any("without saying which line" in n for n in report.error.__notes__)
    said = RecordingExecutor()
    said.fail_at(1, stderr="Cannot create namespace file: File exists")
    assert Runner(said).run_all(commands).uncertain == frozenset()  # it said: line 2


def test_a_lab_batch_that_fails_unsaid_reads_back_and_undoes_what_exists(tmp_path: Path) -> None:
    """Two of three namespaces exist after the batch died: both are deleted."""

    class Died(_Unsaid):
        def __init__(self) -> None:
            super().__init__()
            self.answer(("ip", "-j", "netns", "list"), stdout="[]")

        def execute_batch(self, batch: Batch) -> Result:
            if batch.commands[0].argv[:3] == ("ip", "netns", "add"):
                self.answer(
                    ("ip", "-j", "netns", "list"),
                    stdout='[{"name": "x0"}, {"name": "x1"}]',
                )
                return super().execute_batch(batch)
            return RecordingExecutor.execute_batch(self, batch)

    ex = Died()
    lab = Lab("q", executor=ex, state_dir=tmp_path)
    with pytest.raises(CommandError), lab, lab.batch():
        for i in range(3):
            lab.namespace(f"x{i}")
    deleted = [argv[-1] for argv in ex.commands if argv[:3] == ("ip", "netns", "delete")]
    assert sorted(deleted) == ["x0", "x1"]  # read back: x2 never existed
    assert list(tmp_path.glob("*.json")) == []
