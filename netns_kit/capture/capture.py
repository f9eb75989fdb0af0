"""``lab.capture(...)``: tcpdump on a lab's link ends, as a lab resource.

Each tap (:mod:`netns_kit.capture.where`) is one ``tcpdump -n -U --immediate-mode
-i IF -w FILE`` started in its namespace through the lab's executor, like every
process.  ``--immediate-mode`` hands each packet to tcpdump at once and ``-U``
writes it at once: without them packets reached the file 0.7 s late and a SIGINT
threw away what was buffered; with them even SIGKILL leaves a complete file.
:func:`start` returns once every tcpdump has said "listening on" (bounded by
:data:`READY_TIMEOUT`), so no packet sent after the call is missed.

A capture belongs to its lab: its PID and start time go into the lab's record (an
entry ``process`` whose undo is ``kill`` and whose check compares the start time,
so :func:`~netns_kit.recover` kills it after a crash and never a reused PID), the
lab stops it before its namespaces go, and the files go with the lab unless the
user named them.  On a machine of a lab spread over several, tcpdump writes on that
machine and the file is brought back (``base64``) when the capture stops.
"""

from __future__ import annotations

import base64
import contextlib
import html
import os
import secrets
import shutil
import signal
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import attrs

from netns_kit import validate
from netns_kit.capture import pcap
from netns_kit.capture.decode import summary as summary_line
from netns_kit.capture.where import Tap, taps
from netns_kit.capture.writer import compile_command, writer_argv
from netns_kit.command import Command, in_namespace
from netns_kit.engine.step import Entry
from netns_kit.errors import CommandTimeoutError, NetnsKitError, ValidationError
from netns_kit.executors import Process

#: How long tcpdump may take to say "listening on" (9-20 ms here, 240 ms under load).
READY_TIMEOUT = 10.0
#: How long a stopped tcpdump may take to finish its file.
STOP_TIMEOUT = 5.0
#: The largest snap length tcpdump takes.
MAX_SNAPLEN = 262144
#: What tcpdump says once its capture is open.
READY_TEXT = "listening on"


class CaptureError(NetnsKitError):
    """A capture could not start or finish; says tcpdump's own words."""


# -- argv (pure) ----------------------------------------------------------------------
def tcpdump_argv(
    interface: str,
    *,
    file: str | None,
    filter: str | None = None,
    snaplen: int | None = None,
    count: int | None = None,
) -> tuple[str, ...]:
    """tcpdump writing ``file`` (``-`` is stdout), or printing lines (``file=None``:
    ``-l``, line-buffered).  The filter comes after ``--``, as one word: tcpdump
    joins its words, and nothing in it is ever read as an option."""
    argv = ["tcpdump", "-n"]
    argv += (
        ["-U", "--immediate-mode", "-i", interface, "-w", file]
        if file
        else [
            "-l",
            "--immediate-mode",
            "-i",
            interface,
        ]
    )
    if snaplen is not None:
        argv += ["-s", str(snaplen)]
    if count is not None:
        argv += ["-c", str(count)]
    if filter is not None:
        argv += ["--", filter]
    return tuple(argv)


def tcpdump_command(
    tap: Tap,
    *,
    file: str | None,
    filter: str | None = None,
    snaplen: int | None = None,
    count: int | None = None,
) -> Command:
    """The tcpdump of ``tap``, in its namespace (``ip netns exec``), on its machine."""
    argv = tcpdump_argv(tap.interface, file=file, filter=filter, snaplen=snaplen, count=count)
    return attrs.evolve(in_namespace(argv, tap.namespace, read=True), machine=tap.machine)


def packet_socket_command(
    tap: Tap, file: str, snaplen: int | None, count: int | None, bpf: str | None = None
) -> Command:
    """The sandbox's capture: :mod:`netns_kit.capture.writer` in the tap's namespace,
    started from inside it (``inside``: nsenter straight into the namespace)."""
    argv = writer_argv(tap.interface, file, snaplen, count, bpf)
    return attrs.evolve(
        in_namespace(argv, tap.namespace, read=True, mounts=False), machine=tap.machine
    )


def record_entry(tap: Tap, pid: int, started: int) -> Entry:
    """How a lab's record names a running capture: ``kill`` undoes it, and the check
    passes only while that PID still has that start time (field 22 of its stat)."""
    check = (
        "sh",
        "-c",
        'want=$2; set -- $(sed "s/^.*) //" "/proc/$1/stat" 2>/dev/null); '
        '[ "${20:-none}" = "$want" ]',
        "netns-kit-check",
        str(pid),
        str(started),
    )
    return Entry(
        "process",
        f"tcpdump {tap}",
        None,
        undo=("kill", "-TERM", str(pid)),
        check=check,
        value=str(started),
        machine=tap.machine,
    )


def check_filter(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 4096:
        raise ValidationError("filter", value, "is not a tcpdump filter (1-4096 characters)")
    if any(not ch.isprintable() for ch in value):
        raise ValidationError("filter", value, "holds a control character")
    return value


def check_file(value: object) -> Path | None:
    """A pcap file to write: ``.pcap``/``.cap`` (Debian's AppArmor profile for tcpdump
    lets it write only those, or under ``$HOME``), in a directory that exists."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ValidationError("file", value, "is not a path")
    path = Path(os.fspath(value)).expanduser().absolute()
    if path.suffix.lower() not in (".pcap", ".cap"):
        raise ValidationError(
            "file",
            value,
            "must end in .pcap or .cap (tcpdump's AppArmor profile allows only those)",
        )
    if not path.parent.is_dir():
        raise ValidationError(
            "file", value, f"is in a directory that does not exist ({path.parent})"
        )
    return path


def file_for(path: Path, tap: Tap, many: bool) -> Path:
    """Each tap's file: ``path`` itself, or with the tap's label when there are several."""
    return path if not many else path.with_name(f"{path.stem}-{tap.label}{path.suffix}")


# -- packets ----------------------------------------------------------------------------
@attrs.frozen
class Packet:
    """One captured packet: when, where from and to, what, how long, in one line."""

    time: float
    src: str
    dst: str
    protocol: str
    length: int
    summary: str
    tap: str = ""


@attrs.frozen
class Summary:
    """Packets and bytes (on the wire) by protocol and by (source, destination)."""

    packets: int
    bytes: int
    by_protocol: dict[str, tuple[int, int]]
    by_pair: dict[tuple[str, str], tuple[int, int]]

    @classmethod
    def of(cls, packets: Sequence[Packet]) -> Summary:
        protocols: Counter[str] = Counter()
        protocol_bytes: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        pair_bytes: Counter[tuple[str, str]] = Counter()
        for p in packets:
            protocols[p.protocol] += 1
            protocol_bytes[p.protocol] += p.length
            pairs[(p.src, p.dst)] += 1
            pair_bytes[(p.src, p.dst)] += p.length
        return cls(
            len(packets),
            sum(p.length for p in packets),
            {k: (n, protocol_bytes[k]) for k, n in protocols.most_common()},
            {k: (n, pair_bytes[k]) for k, n in pairs.most_common()},
        )

    def __str__(self) -> str:
        lines = [f"{self.packets} packets, {self.bytes} bytes"]
        lines += [f"  {k}: {n} packets, {b} bytes" for k, (n, b) in self.by_protocol.items()]
        lines += [f"  {s} > {d}: {n} packets, {b} bytes" for (s, d), (n, b) in self.by_pair.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{n}</td><td>{b}</td></tr>"
            for k, (n, b) in self.by_protocol.items()
        )
        pairs = "".join(
            f"<tr><td>{html.escape(s)} &gt; {html.escape(d)}</td><td>{n}</td><td>{b}</td></tr>"
            for (s, d), (n, b) in self.by_pair.items()
        )
        head = "<tr><th>{}</th><th>packets</th><th>bytes</th></tr>"
        return (
            f"<p>{self.packets} packets, {self.bytes} bytes</p>"
            f"<table>{head.format('protocol')}{rows}</table>"
            f"<table>{head.format('pair')}{pairs}</table>"
        )


def packets_of(path: str | os.PathLike[str], tap: str = "") -> list[Packet]:
    """The packets of a classic pcap file (summaries through dpkt when installed)."""
    found = pcap.read(path)
    linktype = found.header.linktype
    out = []
    for record in found.records:
        basic = pcap.classify(linktype, record.data)
        line = summary_line(linktype, record.data, basic)
        out.append(
            Packet(record.time, basic.src, basic.dst, basic.protocol, record.length, line, tap)
        )
    return out


# -- the capture ---------------------------------------------------------------------------
@attrs.define
class Leg:
    """One running tcpdump of a capture."""

    tap: Tap
    path: Path  # where the file ends up, here
    process: Process
    entry: Entry | None = None
    remote: str | None = None  # the file on the tap's machine, brought back at stop
    said: str = ""


class Capture:
    """A running (or finished) capture: ``stop()``, ``path``, ``packets()``, ``summary()``.

    A context manager too: the block's end stops it.  ``owned``: the files are the
    lab's (no ``file`` was given) and go when the lab closes (:meth:`close`).
    """

    def __init__(self, lab: Any, legs: list[Leg], owned: Path | None) -> None:
        self.lab = lab
        self.legs = legs
        self.owned = owned
        self._stopped = False

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<Capture {state}: {', '.join(str(leg.tap) for leg in self.legs)}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def path(self) -> Path:
        """The pcap file (the first tap's, for a link: see :attr:`paths`)."""
        return self.legs[0].path

    @property
    def paths(self) -> list[Path]:
        return [leg.path for leg in self.legs]

    @property
    def running(self) -> bool:
        return any(leg.process.running for leg in self.legs)

    def stop(self) -> Self:
        """End every tcpdump with SIGINT and wait until each file is complete (then
        brought back from another machine).  Safe to call twice."""
        if self._stopped:
            return self
        problems: list[str] = []
        for leg in self.legs:  # all at once, then each waited for
            with contextlib.suppress(OSError):
                leg.process.send_signal(signal.SIGINT)
        for leg in self.legs:
            try:  # one SIGINT only: a second one during its exit may cut its last words
                leg.said = leg.process.wait(STOP_TIMEOUT).stderr
            except CommandTimeoutError:  # SIGKILL then: -U kept the file whole
                leg.process.send_signal(signal.SIGKILL)
                try:
                    leg.said = leg.process.wait(STOP_TIMEOUT).stderr
                except CommandTimeoutError as error:
                    problems.append(str(error))
                problems.append(f"the capture on {leg.tap} ignored SIGINT and was killed")
            if leg.remote is not None:
                try:
                    _bring_back(self.lab, leg)
                except NetnsKitError as error:
                    problems.append(str(error))
            if leg.entry is not None:
                self.lab.journal.forget([leg.entry])
                leg.entry = None
        self._stopped = True
        if problems:
            raise CaptureError("; ".join(problems))
        return self

    def close(self) -> None:
        """Stop, and remove the files if they are the lab's own (the lab does this)."""
        try:
            self.stop()
        finally:
            if self.owned is not None:
                shutil.rmtree(self.owned, ignore_errors=True)

    def packets(self) -> list[Packet]:
        """Every packet captured so far, of every tap, in time order."""
        found: list[Packet] = []
        for leg in self.legs:
            if leg.path.exists():
                found += packets_of(leg.path, str(leg.tap))
        return sorted(found, key=lambda p: p.time)

    def __iter__(self) -> Iterator[Packet]:
        return iter(self.packets())

    def summary(self) -> Summary:
        return Summary.of(self.packets())

    def _repr_html_(self) -> str:
        packets = self.packets()
        rows = "".join(
            f"<tr><td>{p.time - packets[0].time:.6f}</td><td>{html.escape(p.tap)}</td>"
            f"<td>{html.escape(p.protocol)}</td><td>{p.length}</td>"
            f"<td>{html.escape(p.summary)}</td></tr>"
            for p in packets[:20]
        )
        more = f"<p>... {len(packets) - 20} more</p>" if len(packets) > 20 else ""
        files = ", ".join(html.escape(str(p)) for p in self.paths)
        return (
            f"<p>capture of {html.escape(', '.join(str(leg.tap) for leg in self.legs))} "
            f"({'stopped' if self._stopped else 'running'}): {files}</p>"
            "<table><tr><th>time</th><th>tap</th><th>protocol</th><th>length</th>"
            f"<th>summary</th></tr>{rows}</table>{more}" + Summary.of(packets)._repr_html_()
        )


def _bring_back(lab: Any, leg: Leg) -> None:
    """Copy a file from the tap's machine (base64: commands carry text) and remove it."""
    assert leg.remote is not None
    read = Command(("base64", "--", leg.remote), read=True, machine=leg.tap.machine)
    result = lab.journal.runner.run(read, check=True)
    leg.path.write_bytes(base64.b64decode(result.stdout))
    remove = Command(("rm", "-f", "--", leg.remote), machine=leg.tap.machine)
    lab.journal.runner.run(remove, check=False)


def _started_at(lab: Any, leg: Leg) -> int:
    """The start time of the tcpdump (field 22 of /proc/PID/stat on its machine)."""
    pid = leg.process.machine_pid
    if leg.tap.machine is None:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return 0
    else:
        stat = Command(("cat", f"/proc/{pid}/stat"), read=True, machine=leg.tap.machine)
        text = lab.journal.runner.run(stat, check=False).stdout
    fields = text.rpartition(")")[2].split()
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else 0


def start(
    lab: Any,
    where: object,
    *,
    filter: str | None = None,
    file: str | os.PathLike[str] | None = None,
    snaplen: int | None = None,
    count: int | None = None,
) -> Capture:
    """Start capturing ``where`` in ``lab`` (see :meth:`netns_kit.Lab.capture`)."""
    chosen = taps(lab, where)
    filter = check_filter(filter)
    path = check_file(file)
    if snaplen is not None:
        validate.positive_int(snaplen, "snaplen", minimum=1, maximum=MAX_SNAPLEN)
    if count is not None:
        validate.positive_int(count, "count")
    if lab.state != "open":
        raise NetnsKitError(f"lab {lab.name!r} is {lab.state}: open it before capturing")
    bpf = None
    if filter is not None and getattr(lab.ex, "captures_with_packet_socket", False):
        bpf = compiled(lab, filter)  # before the directory: a bad filter leaves nothing
    owned = None
    if path is None:
        owned = Path(tempfile.mkdtemp(prefix=f"netns-kit-{lab.name}-capture-"))
        path = owned / "capture.pcap"
    return start_taps(
        lab, chosen, path, owned, filter=filter, snaplen=snaplen, count=count, bpf=bpf
    )


def compiled(lab: Any, filter: str) -> str:
    """A filter as BPF for the packet-socket writer (``tcpdump -ddd``, a read through
    the lab's executor); a filter tcpdump cannot parse is a ValidationError."""
    result = lab.journal.runner.run(Command(compile_command(filter), read=True), check=False)
    if not result or not result.stdout.strip():
        said = result.stderr.strip() or "tcpdump could not compile it"
        raise ValidationError("filter", filter, said.removeprefix("tcpdump: "))
    return str(result.stdout)


def start_taps(
    lab: Any,
    chosen: Sequence[Tap],
    path: Path,
    owned: Path | None,
    *,
    filter: str | None = None,
    snaplen: int | None = None,
    count: int | None = None,
    labelled: bool = False,
    bpf: str | None = None,
) -> Capture:
    """Start a tcpdump per tap (all of them first, then wait until each listens, so
    that their start-ups overlap), record each in the lab's record, and hand the
    capture to the lab.  Arguments are checked already.  Each tap's file is ``path``
    with the tap's label when there are several taps, or when ``labelled``."""
    many = labelled or len(chosen) > 1
    legs: list[Leg] = []
    capture = Capture(lab, legs, owned)
    try:
        for tap in chosen:
            local = file_for(path, tap, many)
            remote = None
            if tap.machine is not None and lab.machines is not None:
                token = secrets.token_hex(4)
                remote = f"/tmp/netns-kit-{lab.name}-{token}-{tap.label}.pcap"
            if getattr(lab.ex, "captures_with_packet_socket", False):
                command = packet_socket_command(tap, str(local), snaplen, count, bpf)
            else:
                command = tcpdump_command(
                    tap, file=remote or str(local), filter=filter, snaplen=snaplen, count=count
                )
            legs.append(Leg(tap, local, lab.ex.start(command), remote=remote))
        for leg in legs:
            _ready(leg)
            if not lab.rootless:  # a sandbox's programs all go with its holder
                leg.entry = record_entry(leg.tap, leg.process.machine_pid, _started_at(lab, leg))
        entries = [leg.entry for leg in legs if leg.entry is not None]
        if entries:
            lab.journal.remember(*entries)
    except BaseException:
        _quietly_stop(capture)
        if owned is not None:
            shutil.rmtree(owned, ignore_errors=True)
        raise
    lab.captures.append(capture)
    return capture


def _ready(leg: Leg) -> None:
    """Wait, bounded, for tcpdump's "listening on"; its own words when it fails."""
    try:
        ready = leg.process.wait_for(READY_TEXT, READY_TIMEOUT)
    except CommandTimeoutError:
        raise CaptureError(
            f"the capture on {leg.tap} did not say {READY_TEXT!r} within {READY_TIMEOUT:g} s"
        ) from None
    if not ready:
        said = leg.process.wait(STOP_TIMEOUT).stderr.strip()
        raise CaptureError(f"the capture on {leg.tap} failed: {said or 'it said nothing'}")


def _quietly_stop(capture: Capture) -> None:
    with contextlib.suppress(NetnsKitError):
        capture.stop()
