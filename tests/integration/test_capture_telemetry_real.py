"""lab.throughput(..., sample=0.1) on a shaped link of the real kernel."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netns_kit import Lab
from netns_kit.capture.telemetry import Sampled

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")


def test_a_sampled_run_on_a_shaped_link(uid: str, tmp_path: Path) -> None:
    with Lab(f"cap-{uid}", isolated=True, state_dir=tmp_path / "state") as lab:
        a = lab.namespace(f"cap-{uid}-a")
        b = lab.namespace(f"cap-{uid}-b")
        lab.link(a, b, addresses=("10.66.0.1/24", "10.66.0.2/24"), rate="20mbit")
        result = lab.throughput(a, "10.66.0.2", seconds=2, sample=0.1)
        assert isinstance(result, Sampled)
        assert 10 < result.mbit_per_s < 21
        # about 3 s of samples (2 s + the omitted first), each with the data connection
        assert len(result.sockets) >= 10
        assert all(s.cwnd is not None and s.rtt_ms is not None for s in result.sockets)
        acked = [s.bytes_acked or 0 for s in result.sockets]
        assert acked == sorted(acked) and acked[-1] > 2_000_000  # one connection
        tbf = [q for q in result.qdiscs if q.kind == "tbf"]
        assert len(tbf) >= 10
        assert tbf[-1].sent_bytes > tbf[0].sent_bytes
        assert [q.sent_packets for q in tbf] == sorted(q.sent_packets for q in tbf)
        series = result.series()
        assert series and max(m for _, m in series) > 5
        assert lab.processes == []
