"""Flow telemetry: what TCP and the qdiscs did while iperf3 ran, sampled over time.

``lab.throughput(..., sample=0.1)`` starts the iperf3 server and waits until it
listens (``ss -Hltn``, bounded), starts the client in the background, and every
``sample`` seconds reads the sender's socket with ``ss -Htin`` (cwnd, RTT,
retransmits, delivery rate, bytes acknowledged: iperf3 has a control connection
and a data connection, and the one with more bytes acknowledged is the data) and
the sender namespace's qdiscs with ``tc -s -j qdisc show`` (sent, dropped,
overlimits, backlog; a shaped link's ``tbf``), each a process through the executor
(about 2-5 ms each here).  The result is a :class:`~netns_kit.lab.measure.Throughput`
with the time series, and ``plot()`` draws throughput and cwnd over time
(matplotlib, the ``notebook`` extra).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

import attrs

from netns_kit import validate
from netns_kit.command import Command, in_namespace, tc
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors import Executor
from netns_kit.lab import measure

#: How long the server may take to listen.
LISTEN_TIMEOUT = 10.0

_RATE = re.compile(r"^([\d.]+)([KMG]?)bps$")
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}


@attrs.frozen
class SocketSample:
    """The data connection at one moment (``t`` seconds after the client started)."""

    t: float
    cwnd: int | None
    rtt_ms: float | None
    retransmits: int | None  # in total so far
    delivery_mbit: float | None
    bytes_acked: int | None


@attrs.frozen
class QdiscSample:
    """A qdisc's counters at one moment (``t`` seconds after the client started)."""

    t: float
    dev: str
    kind: str
    sent_bytes: int
    sent_packets: int
    dropped: int
    overlimits: int
    backlog: int


@attrs.frozen
class Sampled(measure.Throughput):
    """A throughput measurement with what was sampled while it ran."""

    sample: float = 0.1
    sockets: tuple[SocketSample, ...] = ()
    qdiscs: tuple[QdiscSample, ...] = ()

    def series(self) -> list[tuple[float, float]]:
        """Throughput over time, Mbit/s between samples, from bytes acknowledged."""
        points = [s for s in self.sockets if s.bytes_acked is not None]
        out = []
        for before, after in itertools.pairwise(points):
            span = after.t - before.t
            if span > 0:
                assert after.bytes_acked is not None and before.bytes_acked is not None
                out.append((after.t, (after.bytes_acked - before.bytes_acked) * 8 / span / 1e6))
        return out

    def plot(self) -> Any:
        """A matplotlib figure: throughput (Mbit/s) and cwnd (segments) over time."""
        try:
            import matplotlib

            if not _in_notebook():
                matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise NetnsKitError(
                "plot() needs matplotlib: pip install 'netns-kit[notebook]'"
            ) from None
        figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 4.5))
        rate = self.series()
        top.plot([t for t, _ in rate], [m for _, m in rate], label="throughput")
        top.set_ylabel("Mbit/s")
        top.set_title(str(self))
        cwnd = [(s.t, s.cwnd) for s in self.sockets if s.cwnd is not None]
        bottom.plot([t for t, _ in cwnd], [c for _, c in cwnd], color="tab:orange")
        bottom.set_ylabel("cwnd (segments)")
        bottom.set_xlabel("seconds")
        figure.tight_layout()
        return figure


def _in_notebook() -> bool:
    import sys

    return "ipykernel" in sys.modules


# -- commands (pure) -------------------------------------------------------------------
def ss_command(namespace: str | None, address: str, port: int, *, reverse: bool) -> Command:
    """The sender's TCP sockets: the client's to ``address:port``, or with ``reverse``
    the server's from ``address:port``."""
    side = (
        ("src", address, "sport", "=", f":{port}")
        if reverse
        else (
            "dst",
            address,
            "dport",
            "=",
            f":{port}",
        )
    )
    argv = ("ss", "-H", "-t", "-i", "-n", "state", "established", *side)
    return in_namespace(argv, namespace, read=True, mounts=False)


def listening_command(namespace: str | None, address: str, port: int) -> Command:
    argv = ("ss", "-H", "-l", "-t", "-n", "src", address, "sport", "=", f":{port}")
    return in_namespace(argv, namespace, read=True, mounts=False)


def qdisc_command(namespace: str | None) -> Command:
    return tc("-s", "-j", "qdisc", "show", namespace=namespace, read=True)


# -- parsing (pure) ---------------------------------------------------------------------
def parse_ss(text: str, t: float) -> SocketSample | None:
    """The data connection in ``ss -Htin`` output: the socket with most bytes acked."""
    best: SocketSample | None = None
    for block in re.split(r"\n(?=\S)", text.strip()):
        fields = dict(_fields(block))
        if not fields:
            continue
        acked = _int(fields.get("bytes_acked"))
        rtt = fields.get("rtt", "").split("/")[0]
        retrans = fields.get("retrans", "").split("/")
        sample = SocketSample(
            t,
            _int(fields.get("cwnd")),
            float(rtt) if _is_float(rtt) else None,
            _int(retrans[-1]) if len(retrans) == 2 else 0,
            _rate(fields.get("delivery_rate", "")),
            acked,
        )
        if best is None or (acked or 0) > (best.bytes_acked or 0):
            best = sample
    return best


def _fields(block: str) -> list[tuple[str, str]]:
    words = block.split()
    out = []
    for k, word in enumerate(words):
        if ":" in word and not word[0].isdigit():
            key, _, value = word.partition(":")
            out.append((key, value))
        elif word in ("delivery_rate", "send", "pacing_rate") and k + 1 < len(words):
            out.append((word, words[k + 1]))
    return out


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _rate(text: str) -> float | None:
    found = _RATE.match(text)
    return None if found is None else float(found[1]) * _SCALE[found[2]] / 1e6


def parse_qdiscs(text: str, t: float) -> list[QdiscSample]:
    """Counters of every qdisc but ``noqueue`` in ``tc -s -j qdisc show`` output."""
    try:
        data = json.loads(text) if text.strip() else []
    except json.JSONDecodeError:
        return []
    return [
        QdiscSample(
            t,
            str(q.get("dev", "")),
            str(q.get("kind", "")),
            int(q.get("bytes", 0)),
            int(q.get("packets", 0)),
            int(q.get("drops", 0)),
            int(q.get("overlimits", 0)),
            int(q.get("backlog", 0)),
        )
        for q in data
        if isinstance(q, dict) and q.get("kind") not in (None, "noqueue")
    ]


# -- running ---------------------------------------------------------------------------
def sampled(
    lab: Any,
    src: object,
    dst_address: str,
    *,
    seconds: int = 2,
    sample: float = 0.1,
    protocol: str = "tcp",
    reverse: bool = False,
    port: int = measure.PORT,
    bitrate: str | None = None,
    congestion: str | None = None,
) -> Sampled:
    """``lab.throughput(..., sample=S)`` (see the module docstring)."""
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0.01 <= sample <= 60:
        raise ValidationError("sample", sample, "is not a number of seconds in [0.01, 60]")
    if protocol != "tcp":
        raise ValidationError("protocol", protocol, "sampling reads TCP sockets: use 'tcp'")
    source = lab.held.side(src)
    target = str(validate.address(dst_address, "dst_address"))
    destination = measure.locate(lab.held, lab.ex, validate.address(dst_address, "dst_address"))
    seconds = validate.positive_int(seconds, "seconds", maximum=3600)
    port = validate.positive_int(port, "port", maximum=65535)
    client = measure.client_command(
        source,
        target,
        seconds=seconds,
        reverse=bool(reverse),
        port=port,
        bitrate=measure._word(bitrate, "bitrate"),
        congestion=measure._word(congestion, "congestion"),
    )
    sender = destination if reverse else source
    return _run(
        lab.ex,
        lab.processes,
        client,
        source,
        destination,
        sender,
        target,
        port,
        reverse=bool(reverse),
        sample=float(sample),
        seconds=seconds,
    )


def _run(
    ex: Executor,
    processes: list[Any],
    client: Command,
    source: str | None,
    destination: str | None,
    sender: str | None,
    target: str,
    port: int,
    *,
    reverse: bool,
    sample: float,
    seconds: int,
) -> Sampled:
    runner = Runner(ex)
    server = ex.start(measure.server_command(destination, target, port))
    processes.append(server)
    running = None
    try:
        _wait_listening(runner, destination, target, port, server)
        ss = ss_command(sender, target, port, reverse=reverse)
        qdiscs_of = qdisc_command(sender)
        running = ex.start(client)
        processes.append(running)
        start = time.monotonic()
        sockets: list[SocketSample] = []
        qdiscs: list[QdiscSample] = []
        deadline = start + seconds + 60
        k = 0
        while running.running and time.monotonic() < deadline:
            t = time.monotonic() - start
            found = parse_ss(runner.run(ss, check=False).stdout, t)
            if found is not None and _same_flow(sockets, found):
                sockets.append(found)
            qdiscs += parse_qdiscs(runner.run(qdiscs_of, check=False).stdout, t)
            k += 1
            pause = start + k * sample - time.monotonic()  # the sampling clock
            if pause > 0:
                time.sleep(pause)
        result = running.wait(max(deadline - time.monotonic(), 1.0))
        measured = measure.parse(result, protocol="tcp", reverse=reverse)
        return Sampled(
            **attrs.asdict(measured), sample=sample, sockets=tuple(sockets), qdiscs=tuple(qdiscs)
        )
    finally:
        for process in (running, server):
            if process is not None:
                process.stop()
                if process in processes:
                    processes.remove(process)


def _same_flow(before: list[SocketSample], found: SocketSample) -> bool:
    """Whether ``found`` goes on the data connection's series: once the data
    connection has closed, only the control connection (a few hundred bytes) is left,
    and a sample of it would read as a fall to nothing."""
    if not before or before[-1].bytes_acked is None or found.bytes_acked is None:
        return True
    return found.bytes_acked >= before[-1].bytes_acked


def _wait_listening(
    runner: Runner, namespace: str | None, address: str, port: int, server: Any
) -> None:
    """Until the server's socket listens (bounded); its own words if it died."""
    deadline = time.monotonic() + LISTEN_TIMEOUT
    check = listening_command(namespace, address, port)
    pause = 0.001
    while not runner.run(check, check=False).stdout.strip():
        if not server.running:
            measure.parse(server.wait(5))  # raises what the server said
            raise NetnsKitError("the iperf3 server ended before it listened")
        if time.monotonic() > deadline:
            raise NetnsKitError(f"the iperf3 server did not listen within {LISTEN_TIMEOUT:g} s")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
