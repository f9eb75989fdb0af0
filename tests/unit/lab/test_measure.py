"""lab.throughput with a fake executor: the iperf3 argv, its JSON, its failures, and
the server stopped every time.  No root."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from netns_kit import (
    CommandError,
    Lab,
    RecordingExecutor,
    Throughput,
    ToolMissingError,
    ValidationError,
)
from netns_kit.lab import measure
from netns_kit.result import Result

from ..conftest import make_lab

SERVER = "ip netns exec blue iperf3 -s -1 -B 10.0.0.2 -p 5201 --idle-timeout 30 -J"
CLIENT = "ip netns exec red iperf3 -c 10.0.0.2 -p 5201 -t 3 -O 1 -J"


def iperf_json(bits: float = 19_200_000.0, retransmits: int = 4) -> str:
    """The parts of iperf3 3.12's -J output that are read (a real run's shape)."""
    return json.dumps(
        {
            "start": {"version": "iperf 3.12"},
            "intervals": [],
            "end": {
                "sum_sent": {
                    "seconds": 3.0,
                    "bits_per_second": bits * 1.01,
                    "retransmits": retransmits,
                },
                "sum_received": {"seconds": 3.006, "bits_per_second": bits},
            },
        }
    )


def lab_with_link(ex: RecordingExecutor, state: Path) -> Lab:
    lab = make_lab(ex, state)
    lab.namespace("red")
    lab.namespace("blue")
    lab.link("red", "blue", addresses=("10.0.0.1/24", "10.0.0.2/24"))
    return lab


def test_throughput_runs_a_server_and_a_client(ex: RecordingExecutor, state: Path) -> None:
    ex.answer(shlex.split(CLIENT), stdout=iperf_json())
    with lab_with_link(ex, state) as lab:
        start = len(ex.commands)
        result = lab.throughput("red", "10.0.0.2", seconds=3)
        assert [shlex.join(argv) for argv in ex.commands[start:]] == [SERVER, CLIENT]
        assert result == Throughput(19.2, 4, 3.006, "tcp")
        assert str(result) == "19.2 Mbit/s over 3.0 s (tcp, 4 retransmits)"
        # the client ran from a thread inside red (no mount copy), the server through exec
        client = ex.calls[start + 1]
        assert client.inside is not None and client.inside[0] == "iperf3"
        assert lab.processes == []  # the server was stopped and let go


def test_throughput_options(ex: RecordingExecutor, state: Path) -> None:
    with lab_with_link(ex, state) as lab:
        ex.answer(["ip", "netns", "exec", "blue", "iperf3", "-c"], stdout=iperf_json())
        ex.answer(["ip", "netns", "exec", "red", "iperf3", "-c"], stdout=iperf_json())
        start = len(ex.commands)
        lab.throughput(lab["blue"], "10.0.0.1", reverse=True, port=6000, congestion="cubic")
        assert shlex.join(ex.commands[start + 1]) == (
            "ip netns exec blue iperf3 -c 10.0.0.1 -p 6000 -t 2 -O 1 -J -R -C cubic"
        )
        start = len(ex.commands)
        udp = json.dumps(
            {"end": {"sum_received": {"seconds": 2.0, "bits_per_second": 5e6, "lost_percent": 0.5}}}
        )
        ex.answer(["ip", "netns", "exec", "red", "iperf3", "-c"], stdout=udp)
        result = lab.throughput("red", "10.0.0.2", protocol="udp")
        assert shlex.join(ex.commands[start + 1]).endswith("-t 2 -O 1 -J -u -b 0")
        assert (result.mbit_per_s, result.retransmits, result.lost_percent) == (5.0, None, 0.5)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"seconds": 0}, "seconds"),
        ({"seconds": 2.5}, "seconds"),
        ({"protocol": "sctp"}, "protocol"),
        ({"port": 70000}, "port"),
        ({"congestion": "cubic; rm"}, "congestion"),
        ({"bitrate": "10 M"}, "bitrate"),
    ],
)
def test_bad_options_start_nothing(
    options: dict[str, object], field: str, ex: RecordingExecutor, state: Path
) -> None:
    with lab_with_link(ex, state) as lab:
        start = len(ex.commands)
        with pytest.raises(ValidationError) as raised:
            lab.throughput("red", "10.0.0.2", **options)  # type: ignore[arg-type]
        assert raised.value.field == field
        assert ex.commands[start:] == []


def test_an_address_outside_the_lab_is_refused(ex: RecordingExecutor, state: Path) -> None:
    with lab_with_link(ex, state) as lab:
        with pytest.raises(ValidationError, match="not an address in lab 't'"):
            lab.throughput("red", "10.0.0.9")
        with pytest.raises(ValidationError, match="dst_address"):
            lab.throughput("red", "10.0.0.2/24")
        assert not any("iperf3" in argv for argv in ex.commands)


def test_an_address_added_later_is_found_live(ex: RecordingExecutor, state: Path) -> None:
    with lab_with_link(ex, state) as lab:
        ex.answer(
            "ip -n blue -j addr show",
            stdout='[{"ifname":"veth-blue","addr_info":[{"family":"inet","local":"10.0.0.7",'
            '"prefixlen":24}]}]',
        )
        ex.answer(["ip", "netns", "exec", "red", "iperf3"], stdout=iperf_json())
        start = len(ex.commands)
        lab.throughput("red", "10.0.0.7")
        server = [shlex.join(a) for a in ex.commands[start:] if "-s" in a]
        assert server == [SERVER.replace("10.0.0.2", "10.0.0.7")]


def test_an_iperf3_error_is_a_failure_and_the_server_stops(
    ex: RecordingExecutor, state: Path
) -> None:
    refused = json.dumps({"start": {}, "end": {}, "error": "unable to send control message"})
    ex.answer(shlex.split(CLIENT), stdout=refused)  # exit code 0, as iperf3 -J does
    with lab_with_link(ex, state) as lab:
        with pytest.raises(CommandError, match="iperf3: unable to send control message"):
            lab.throughput("red", "10.0.0.2", seconds=3)
        assert lab.processes == []


def test_missing_iperf3_names_its_package(ex: RecordingExecutor, state: Path) -> None:
    missing = 'exec of "iperf3" failed: No such file or directory\n'
    ex.answer(shlex.split(CLIENT), stderr=missing, returncode=255)
    with lab_with_link(ex, state) as lab:
        with pytest.raises(
            ToolMissingError, match=r"'iperf3' is not installed.*Debian package 'iperf3'"
        ):
            lab.throughput("red", "10.0.0.2", seconds=3)
        assert lab.processes == []


def test_parse_reads_what_arrived() -> None:
    result = Result(("iperf3",), 0, iperf_json(bits=4.8e6, retransmits=11))
    measured = measure.parse(result)
    assert (measured.mbit_per_s, measured.retransmits) == (4.8, 11)
    with pytest.raises(CommandError, match="sum_received"):
        measure.parse(Result(("iperf3",), 0, '{"end": {}}'))
    with pytest.raises(CommandError, match="no JSON output"):
        measure.parse(Result(("iperf3",), 1, ""))
