"""Flow telemetry: ss and tc parsing, the sampling run's argv, the series and plot."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from netns_kit import RecordingExecutor, ValidationError
from netns_kit.capture.telemetry import (
    Sampled,
    SocketSample,
    _same_flow,
    listening_command,
    parse_qdiscs,
    parse_ss,
    qdisc_command,
    ss_command,
)

from ..conftest import make_lab
from ..lab.test_measure import iperf_json

SS = """\
0      0      10.64.0.1:56556 10.64.0.2:5201
\t bbr wscale:10,10 rto:204 rtt:0.053/0.027 ato:40 mss:1448 cwnd:13 bytes_sent:164 bytes_acked:165 segs_out:7 send 2841358491bps pacing_rate 5611074848bps delivery_rate 724000000bps delivered:4 app_limited minrtt:0.012
0      655944 10.64.0.1:56564 10.64.0.2:5201
\t bbr wscale:10,10 rto:212 rtt:8.442/0.886 mss:1448 cwnd:16 ssthresh:136 bytes_sent:2122461 bytes_retrans:150248 bytes_acked:1949046 send 21954987bps pacing_rate 19313856bps delivery_rate 18534400bps delivered:1349 busy:992ms unacked:14 retrans:0/104 notsent:635672 minrtt:0.018
"""  # noqa: E501

TC = json.dumps(
    [
        {"kind": "noqueue", "dev": "lo", "bytes": 0, "packets": 0},
        {
            "kind": "tbf", "handle": "8001:", "dev": "cs1", "bytes": 2083161, "packets": 1392,
            "drops": 105, "overlimits": 2862, "requeues": 0, "backlog": 15140, "qlen": 10,
        },
    ]
)  # fmt: skip


def test_parse_ss_picks_the_data_connection() -> None:
    found = parse_ss(SS, 1.5)
    assert found == SocketSample(1.5, 16, 8.442, 104, 18.5344, 1949046)
    assert parse_ss("", 0.0) is None


def test_parse_qdiscs_keeps_real_qdiscs() -> None:
    (tbf,) = parse_qdiscs(TC, 2.0)
    assert (tbf.dev, tbf.kind, tbf.sent_bytes, tbf.sent_packets) == ("cs1", "tbf", 2083161, 1392)
    assert (tbf.dropped, tbf.overlimits, tbf.backlog) == (105, 2862, 15140)
    assert parse_qdiscs("", 0) == [] and parse_qdiscs("not json", 0) == []


def test_commands() -> None:
    assert ss_command("red", "10.0.0.2", 5201, reverse=False).argv == (
        "ip", "netns", "exec", "red",
        "ss", "-H", "-t", "-i", "-n", "state", "established",
        "dst", "10.0.0.2", "dport", "=", ":5201",
    )  # fmt: skip
    assert ss_command("blue", "10.0.0.2", 5201, reverse=True).inside == (
        "ss", "-H", "-t", "-i", "-n", "state", "established",
        "src", "10.0.0.2", "sport", "=", ":5201",
    )  # fmt: skip
    assert listening_command("blue", "10.0.0.2", 6000).inside == (
        "ss", "-H", "-l", "-t", "-n", "src", "10.0.0.2", "sport", "=", ":6000",
    )  # fmt: skip
    assert qdisc_command("red").argv == ("tc", "-n", "red", "-s", "-j", "qdisc", "show")


def test_a_sampled_run_through_the_fake(ex: RecordingExecutor, state: Path) -> None:
    client = "ip netns exec red iperf3 -c 10.0.0.2 -p 5201 -t 3 -O 1 -J"
    ex.answer(shlex.split(client), stdout=iperf_json())
    ex.answer(
        ["ip", "netns", "exec", "blue", "ss", "-H", "-l"], stdout="LISTEN 0 5 10.0.0.2:5201\n"
    )
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.namespace("blue")
        lab.link("red", "blue", addresses=("10.0.0.1/24", "10.0.0.2/24"))
        start = len(ex.commands)
        result = lab.throughput("red", "10.0.0.2", seconds=3, sample=0.1)
        assert [shlex.join(argv) for argv in ex.commands[start:]] == [
            "ip netns exec blue iperf3 -s -1 -B 10.0.0.2 -p 5201 --idle-timeout 30 -J",
            "ip netns exec blue ss -H -l -t -n src 10.0.0.2 sport = :5201",
            client,
        ]
        assert isinstance(result, Sampled) and result.mbit_per_s == 19.2
        assert result.sample == 0.1
        assert lab.processes == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sample": 0}, "sample"),
        ({"sample": True}, "sample"),
        ({"sample": 0.1, "protocol": "udp"}, "protocol"),
    ],
)
def test_bad_sampling_starts_nothing(
    ex: RecordingExecutor, state: Path, options: dict[str, object], field: str
) -> None:
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        before = len(ex.commands)
        with pytest.raises(ValidationError) as error:
            lab.throughput("red", "10.0.0.2", **options)  # type: ignore[arg-type]
        assert error.value.field == field
        assert len(ex.commands) == before


def test_the_control_connection_alone_is_not_the_flow() -> None:
    data = [SocketSample(0.1, 10, 1.0, 0, 20.0, 2_000_000)]
    assert not _same_flow(data, SocketSample(0.2, 10, 1.0, 0, None, 459))
    assert _same_flow(data, SocketSample(0.2, 12, 1.0, 0, 20.0, 2_500_000))
    assert _same_flow([], SocketSample(0.0, 10, 1.0, 0, None, 1))


def test_series_and_plot() -> None:
    samples = tuple(SocketSample(0.1 * k, 10 + k, 1.0, 0, 20.0, 250_000 * k) for k in range(5))
    result = Sampled(19.2, 0, 3.0, sample=0.1, sockets=samples)
    series = result.series()
    assert len(series) == 4
    assert series[0][1] == pytest.approx(20.0)


PLOT = """
from netns_kit.capture.telemetry import Sampled, SocketSample
samples = tuple(SocketSample(0.1 * k, 10 + k, 1.0, 0, 20.0, 250_000 * k) for k in range(5))
figure = Sampled(19.2, 0, 3.0, sample=0.1, sockets=samples).plot()
top, bottom = figure.axes
assert top.get_ylabel() == "Mbit/s" and bottom.get_ylabel() == "cwnd (segments)"
assert list(bottom.lines[0].get_ydata()) == [10, 11, 12, 13, 14]
print("plotted")
"""


def test_plot_in_a_process_of_its_own() -> None:
    """matplotlib brings numpy, whose OpenBLAS threads do not block SIGINT: in this
    process they would take the signals other tests send themselves."""
    done = subprocess.run(
        [sys.executable, "-c", PLOT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "plotted\n"
