"""A batch that breaks halfway on the real kernel: a precise error, and nothing left."""

from __future__ import annotations

from pathlib import Path

import pytest

from netns_kit import CommandError, Lab, Namespace, RecordingExecutor, Result, ShellExecutor
from netns_kit.executors.batch import Batch

from .conftest import Kernel


def build(lab: Lab, prefix: str, *, bad_route: bool) -> None:
    bridge = lab.bridge("br0", "10.66.0.1/16")
    for i in range(6):
        ns = lab.namespace(f"{prefix}-{i}")
        lab.link(ns, bridge, addresses=(f"10.66.1.{i + 1}/16", None))
        if bad_route and i == 3:  # the gateway is on no connected subnet
            lab.route("10.99.0.0/24", via="10.123.0.1", namespace=ns)


class Counting(ShellExecutor):
    """The shell, counting the batch lines it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def execute_batch(self, batch: Batch) -> Result:
        self.lines += batch.lines()
        return super().execute_batch(batch)


def test_a_batch_failing_halfway_names_the_command_and_leaves_nothing(
    uid: str, kernel: Kernel, tmp_path: Path
) -> None:
    prefix = f"nk-{uid}"
    # the same failure, unbatched, is what the batched error must look like
    with (
        pytest.raises(CommandError) as unbatched,
        Lab(f"{prefix}-one", isolated=True, state_dir=tmp_path) as lab,
    ):
        build(lab, f"{prefix}-one", bad_route=True)
    counting = Counting()
    with (
        pytest.raises(CommandError) as batched,
        Lab(f"{prefix}-all", isolated=True, executor=counting, state_dir=tmp_path) as lab,
        lab.batch(),
    ):
        build(lab, f"{prefix}-all", bad_route=True)
    one, many = unbatched.value, batched.value
    assert type(one) is type(many)
    assert one.argv[3:] == many.argv[3:] == ("route", "add", "10.99.0.0/24", "via", "10.123.0.1")
    assert one.argv[:3] == ("ip", "-n", f"{prefix}-one-3")
    assert many.argv[:3] == ("ip", "-n", f"{prefix}-all-3")
    assert one.stderr.strip() == many.stderr.strip() != ""
    assert len(counting.lines) > 6 * 3  # it really broke halfway, after many lines ran
    assert [n for n in kernel.namespaces() if n.startswith(prefix)] == []
    assert list(tmp_path.glob("*.json")) == []


def test_the_fast_path_costs_a_handful_of_processes_and_builds_the_same_lab(
    uid: str, kernel: Kernel, tmp_path: Path
) -> None:
    prefix = f"nk-{uid}"
    planned = RecordingExecutor()
    with (
        Lab(f"{prefix}-p", isolated=True, executor=planned, state_dir=tmp_path) as lab,
        lab.batch(),
    ):
        build(lab, f"{prefix}-p", bad_route=False)
    # host namespace (2) + record check + namespaces + veths + bridge + host side
    # + one per namespace + teardown: nothing grows faster than the namespaces
    assert len(planned.runs) <= 6 + 6 + 3
    with Lab(f"{prefix}-r", isolated=True, executor=ShellExecutor(), state_dir=tmp_path) as lab:
        with lab.batch():
            build(lab, f"{prefix}-r", bad_route=False)
        host = lab.host_side
        assert host is not None
        links = kernel.links(host)
        assert links["br0"]["linkinfo"]["info_kind"] == "bridge"
        for i in range(6):
            ns = f"{prefix}-r-{i}"
            assert kernel.addresses(ns)[_end(kernel, ns)] == [f"10.66.1.{i + 1}/16"]
        ports = [name for name, e in links.items() if e.get("master") == "br0"]
        assert len(ports) == 6
        assert Namespace(f"{prefix}-r-5").ping("10.66.1.1")
    assert [n for n in kernel.namespaces() if n.startswith(prefix)] == []


def _end(kernel: Kernel, namespace: str) -> str:
    names = [n for n in kernel.links(namespace) if n != "lo"]
    assert len(names) == 1
    return names[0]
