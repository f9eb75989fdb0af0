"""The executor's continuous prober: raw ICMP sockets in namespaces, one thread.

Executor code, like :mod:`netns_kit.executors.pinger` (whose packets and socket set-up it
shares): only :meth:`ShellExecutor.watch <netns_kit.executors.ShellExecutor.watch>`
uses it.  A raw socket belongs to the namespace it was opened in, so the calling
thread enters each source namespace once, opens one socket per address family and
comes straight back; from then on one thread sends every pair's echo request each
``interval`` and reads the replies in between, matching them by identifier and
sequence number (a raw socket sees all of its namespace's ICMP) and checking that
they come from the address probed.

Every probe is kept: its send time (``time.monotonic()``, the clock events are
stamped with) and its reply's time, from the kernel's receive timestamp, so a busy
thread does not stretch round trips.  Not ``ping``: its one-packet send buffer blocks
about 3 s while a neighbour on a dead link resolves, and stretches outages tenfold
(DESIGN.md, "Outage probes"); a raw socket's send never waits for a neighbour.
"""

from __future__ import annotations

import contextlib
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence

from netns_kit.executors.pinger import Enter, _raw_socket, replies
from netns_kit.executors.probes import (
    TIMEOUT,
    Probe,
    ProbeJob,
    echo_request,
    family_of,
)

#: Socket buffer for a watch: replies are read every interval, so little queues up.
_BUFFER = 256 * 1024


_ECHO4 = struct.Struct("!BBHHH")


def _echo4(ident: int, sequence: int) -> bytes:
    """An ICMPv4 echo request without payload, its checksum summed directly (this
    runs 2,000 times a second for 20 pairs at 100 Hz; ``probes.echo_request`` makes
    the same bytes, three times slower)."""
    total = 0x0800 + ident + sequence
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return _ECHO4.pack(8, 0, ~total & 0xFFFF, ident, sequence)


class _Target:
    """One pair's probes so far, as plain lists (cheap to append to at 100 Hz)."""

    __slots__ = ("address", "answered", "family", "ident", "packed", "sent", "sent_real", "sock")

    def __init__(self, address: str, ident: int, sock: socket.socket | None) -> None:
        self.address = address
        self.family = family_of(address)
        self.packed = socket.inet_pton(
            socket.AF_INET if self.family == 4 else socket.AF_INET6, address
        )
        self.ident = ident
        self.sock = sock
        self.sent: list[float] = []
        self.sent_real: list[int] = []
        self.answered: list[float | None] = []

    def probes(self) -> list[Probe]:
        return [Probe(s, a) for s, a in zip(self.sent, self.answered, strict=True)]


class Stream:
    """Echo requests from every job's namespace to each of its addresses, every
    ``interval`` seconds, from :meth:`start` until :meth:`stop`."""

    def __init__(
        self,
        enter: Enter,
        jobs: Sequence[ProbeJob],
        *,
        interval: float,
        timeout: float = TIMEOUT,
        on_thread: Callable[[], None] | None = None,
    ) -> None:
        self.enter = enter
        self.jobs = list(jobs)
        self.interval = interval
        self.timeout = timeout
        self.on_thread = on_thread
        self._sockets: list[socket.socket] = []
        self._families: list[tuple[socket.socket, int]] = []
        self._targets: list[list[_Target]] = []
        self._by_key: dict[tuple[int, int, int], tuple[_Target, int]] = {}
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> Stream:
        """Open the sockets (here: OSError with the kernel's words if a namespace is
        gone), then start the sending thread."""
        base = secrets.randbits(16)
        count = 0
        try:
            for job in self.jobs:
                families = sorted({family_of(a) for a in job.addresses})
                opened: dict[int, socket.socket] = {}
                with self.enter(job.namespace):
                    for family in families:
                        opened[family] = _raw_socket(family, _BUFFER)
                        self._sockets.append(opened[family])
                for family, sock in opened.items():
                    self._selector.register(sock, selectors.EVENT_READ, family)
                    self._families.append((sock, family))
                targets = []
                for address in job.addresses:
                    ident = (base + count) & 0xFFFF
                    count += 1
                    targets.append(_Target(address, ident, opened[family_of(address)]))
                self._targets.append(targets)
        except BaseException:
            self._close()
            raise
        self._thread = threading.Thread(target=self._loop, name="netns-kit-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[list[list[Probe]]]:
        """Stop sending, wait (up to the timeout) for the last replies, close the
        sockets; every job's probes, address by address."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._close()
        if self._failure is not None:
            raise self._failure
        return [[t.probes() for t in targets] for targets in self._targets]

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._selector.close()
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    # -- the thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            if self.on_thread is not None:
                self.on_thread()
            every = [t for targets in self._targets for t in targets]
            due = time.monotonic()
            # One wake-up per round: read what came since the last one (the kernel's
            # receive stamps keep the times right), then send the next round.  Waking
            # for every reply cost about twice the CPU.
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                self._drain()
                now = time.monotonic()
                self._send(every)
                due += self.interval
                if due < now:  # fell behind (a stalled machine): keep the pace
                    due = now + self.interval
            self._linger(every)
        except BaseException as error:  # reported by stop()
            self._failure = error

    def _send(self, targets: list[_Target]) -> None:
        """One round: every target's next echo request.  The round is stamped once
        (its requests leave within a fraction of a millisecond of each other)."""
        real = time.time_ns()
        now = time.monotonic()
        for target in targets:
            index = len(target.sent)
            sequence = index & 0xFFFF
            if target.family == 4:
                packet = _echo4(target.ident, sequence)
            else:
                packet = echo_request(6, target.ident, sequence)
            target.answered.append(None)
            target.sent_real.append(real)
            target.sent.append(now)
            if target.sock is None:
                continue
            try:
                target.sock.sendto(packet, (target.address, 0))
            except OSError:
                continue  # unreachable, no buffer space...: a lost probe
            self._by_key[(target.family, target.ident, sequence)] = (target, index)

    def _drain(self) -> None:
        for sock, family in self._families:
            self._receive(sock, family)

    def _read(self, wait: float) -> None:
        for key, _ in self._selector.select(wait):
            self._receive(key.fileobj, key.data)  # type: ignore[arg-type]

    def _linger(self, targets: list[_Target]) -> None:
        """After the last send: read until the last round is answered or timed out."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if all(not t.sent or t.answered[-1] is not None for t in targets):
                return
            self._read(min(0.01, max(0.0, deadline - time.monotonic())))

    def _receive(self, sock: socket.socket, family: int) -> None:
        for key, source, received in replies(sock, family):
            waiting = self._by_key.pop(key, None)
            if waiting is None:
                continue
            target, index = waiting
            if source != target.packed:
                self._by_key[key] = waiting
                continue
            rtt = (received - target.sent_real[index]) / 1e9
            target.answered[index] = target.sent[index] + max(0.0, rtt)
