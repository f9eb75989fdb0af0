"""Measuring a lab: TCP or UDP throughput between two of its namespaces, with iperf3.

An iperf3 server starts in the namespace that holds the destination address, bound
to it, for one test (``--one-off``, and ``--idle-timeout`` so that it ends by itself
even if we are killed before a client comes); the client runs in the source
namespace with ``-J`` and its JSON is read.  The server is stopped (by its PID)
before the measurement returns, whatever happened, so nothing is left running.

What iperf3 says, as measured on this project's test machine:

* With ``-J`` a failed connection still exits 0: an ``"error"`` key is the failure.
* The throughput is ``end.sum_received.bits_per_second`` (what arrived, not what was
  sent) and the TCP retransmits ``end.sum_sent.retransmits``.
* ``-O 1`` leaves the first second (TCP slow start) out of the figures.
* A namespace inherits the host's TCP congestion control (bbr on that machine) and
  may not set another with sysctl; ``congestion=`` passes iperf3's ``-C``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from netns_kit import validate
from netns_kit.command import Command, in_namespace
from netns_kit.engine.runner import Runner
from netns_kit.errors import CommandError, ValidationError, command_error
from netns_kit.executors import Executor, Process
from netns_kit.lab.holdings import Holdings
from netns_kit.readback.reader import Reader
from netns_kit.result import Result

PORT = 5201
#: How long the client keeps trying while the server is not listening yet.
CONNECT_TRIES = 50
CONNECT_PAUSE = 0.1  # seconds between tries
#: A server that no client reached ends by itself after this many seconds.
SERVER_IDLE = 30


@attrs.frozen
class Throughput:
    """One iperf3 measurement.

    ``mbit_per_s`` is what arrived, in megabits (10**6 bits) per second;
    ``retransmits`` the TCP segments sent again (``None`` for UDP); ``seconds`` the
    time measured (the omitted first second not counted); ``lost_percent`` the UDP
    datagrams lost (``None`` for TCP).  ``reverse``: the destination sent (``-R``).
    """

    mbit_per_s: float
    retransmits: int | None
    seconds: float
    protocol: str = "tcp"
    reverse: bool = False
    lost_percent: float | None = None

    def __str__(self) -> str:
        extra = f", {self.retransmits} retransmits" if self.retransmits is not None else ""
        if self.lost_percent is not None:
            extra = f", {self.lost_percent:g}% lost"
        return f"{self.mbit_per_s:.1f} Mbit/s over {self.seconds:.1f} s ({self.protocol}{extra})"


# -- commands (pure) -------------------------------------------------------------------
def server_command(namespace: str | None, address: str, port: int = PORT) -> Command:
    argv = ("iperf3", "-s", "-1", "-B", address, "-p", str(port))
    return in_namespace((*argv, "--idle-timeout", str(SERVER_IDLE), "-J"), namespace)


def client_command(
    namespace: str | None,
    address: str,
    *,
    seconds: int = 2,
    protocol: str = "tcp",
    reverse: bool = False,
    port: int = PORT,
    bitrate: str | None = None,
    congestion: str | None = None,
) -> Command:
    """The client: ``-O 1`` leaves slow start out; UDP sends as fast as it can
    (``-b 0``) unless given a ``bitrate`` (iperf3's units: ``10M``)."""
    argv = ["iperf3", "-c", address, "-p", str(port), "-t", str(seconds), "-O", "1", "-J"]
    if reverse:
        argv.append("-R")
    if protocol == "udp":
        argv += ["-u", "-b", bitrate or "0"]
    elif bitrate is not None:
        argv += ["-b", bitrate]
    if congestion is not None:
        argv += ["-C", congestion]
    return in_namespace(argv, namespace, read=True, mounts=False)


def _word(value: object, field: str) -> str | None:
    """An option iperf3 takes as one word (``10M``, ``cubic``), or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.]{1,32}", value):
        raise ValidationError(field, value, "is not a plain word (e.g. '10M', 'cubic')")
    return value


# -- reading iperf3 (pure) -------------------------------------------------------------
def parse(result: Result, *, protocol: str = "tcp", reverse: bool = False) -> Throughput:
    """The client's ``-J`` output; its ``error`` key (or no JSON) is a CommandError."""
    try:
        data: Any = json.loads(result.stdout)
    except json.JSONDecodeError:  # it never ran (no iperf3?) or died: say what it said
        said = result.stderr.strip() or result.stdout.strip() or "no JSON output"
        raise command_error(result.argv, result.returncode or 1, result.stdout, said) from None
    if not isinstance(data, dict) or "error" in data:
        error = data.get("error") if isinstance(data, dict) else "not a JSON object"
        raise CommandError(result.argv, result.returncode or 1, "", f"iperf3: {error}")
    end = data.get("end") or {}
    received = end.get("sum_received") or end.get("sum") or {}
    sent = end.get("sum_sent") or {}
    try:
        rate = float(received["bits_per_second"])
        seconds = float(received.get("seconds", 0.0))
    except (KeyError, TypeError, ValueError):
        raise CommandError(
            result.argv, 1, "", "iperf3: no end.sum_received.bits_per_second in its JSON"
        ) from None
    retransmits = sent.get("retransmits") if protocol == "tcp" else None
    lost = received.get("lost_percent") if protocol == "udp" else None
    return Throughput(
        rate / 1e6,
        None if retransmits is None else int(retransmits),
        seconds,
        protocol,
        reverse,
        None if lost is None else float(lost),
    )


def _refused(result: Result) -> bool:
    """The server is not listening yet (iperf3 says so in its JSON, exit code 0)."""
    return "Connection refused" in result.stdout or "Connection refused" in result.stderr


# -- running ---------------------------------------------------------------------------
class _Lab(Protocol):
    """What :func:`in_lab` needs of a :class:`~netns_kit.Lab`."""

    held: Holdings
    processes: list[Process]

    @property
    def ex(self) -> Executor: ...


def in_lab(
    lab: _Lab, src: object, dst_address: str, *, seconds: int = 2, **options: Any
) -> Throughput:
    """``lab.throughput``: from the lab's namespace ``src`` (``None``: its host side) to
    the namespace that holds ``dst_address``."""
    source = lab.held.side(src)
    where = locate(lab.held, lab.ex, validate.address(dst_address, "dst_address"))
    return throughput(
        lab.ex, source, where, dst_address, seconds=seconds, processes=lab.processes, **options
    )


def locate(held: Holdings, executor: Executor, address: validate.IPAddress) -> str | None:
    """The namespace that holds ``address``: where the lab put it, else where the
    kernel says it is now among the lab's own namespaces (an address added later)."""
    try:
        return held.owner(address)
    except KeyError:
        pass
    reader = Reader(executor)
    places: Iterable[str | None] = [*([held.host_side] if held.host_side else []), *held.namespaces]
    for where in places:
        for info in reader.addresses(where):
            if info.address.split("/")[0] == str(address):
                return where
    raise ValidationError("dst_address", str(address), f"is not an address in lab {held.lab!r}")


def throughput(
    executor: Executor,
    source: str | None,
    destination: str | None,
    address: str,
    *,
    seconds: int = 2,
    protocol: str = "tcp",
    reverse: bool = False,
    port: int = PORT,
    bitrate: str | None = None,
    congestion: str | None = None,
    processes: list[Process] | None = None,
) -> Throughput:
    """iperf3 from namespace ``source`` to ``address`` in namespace ``destination``.

    ``processes`` (a lab's list) holds the server while it runs, so that closing the
    lab would stop it too.  A missing iperf3 raises ToolMissingError.
    """
    if protocol not in ("tcp", "udp"):
        raise ValidationError("protocol", protocol, "is not 'tcp' or 'udp'")
    seconds = validate.positive_int(seconds, "seconds", maximum=3600)
    port = validate.positive_int(port, "port", maximum=65535)
    target = str(validate.address(address, "dst_address"))
    client = client_command(
        source,
        target,
        seconds=seconds,
        protocol=protocol,
        reverse=bool(reverse),
        port=port,
        bitrate=_word(bitrate, "bitrate"),
        congestion=_word(congestion, "congestion"),
    )
    runner = Runner(executor)
    server = executor.start(server_command(destination, target, port))
    if processes is not None:
        processes.append(server)
    try:
        for _ in range(CONNECT_TRIES):
            result = runner.run(client, check=False, timeout=seconds + 60)
            if not _refused(result) or not server.running:
                break
            time.sleep(CONNECT_PAUSE)
        if _refused(result) and not server.running:  # the server could not start
            parse(server.wait(5))  # raises what the server said
        return parse(result, protocol=protocol, reverse=reverse)
    finally:
        server.stop()
        if processes is not None and server in processes:
            processes.remove(server)
