"""The executor's prober: raw ICMP sockets opened inside namespaces.

This is executor code (like :mod:`netns_kit.executors`, it touches the machine; only
:class:`~netns_kit.executors.ShellExecutor` uses it).  A socket belongs to the network
namespace it was made in, so a worker thread enters a namespace, opens its sockets
and comes straight back; the sockets keep working from the home namespace.  One
worker sends a namespace's echo requests all at once, then moves on to the next
namespace while the replies queue up in the first one's socket; it reads them as it
goes and at the end.  Measured (docs/notes/issue-13.md): all pairs of 100
namespaces, 9,900 probes, in well under a second from two workers.

A raw socket sees every ICMP message of its namespace: a filter lets only echo
replies in, and replies are matched by identifier and sequence number and checked
against the address they were sent to.  Round-trip times come from the kernel's
receive timestamp, so a worker that is busy sending elsewhere does not inflate them.

Open sockets are bounded (``window`` namespaces at a time per worker) so that a
thousand namespaces do not run out of file descriptors.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import resource
import secrets
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager

from netns_kit.executors.probes import (
    ProbeAnswer,
    ProbeJob,
    echo_request,
    family_of,
    parse_reply,
    reply_filter,
)

#: setsockopt options not in Python's socket module.
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("=qq")
#: Bytes of socket buffer per expected reply (an echo reply's skb is about 1 KiB).
_PER_REPLY = 2048
_MIN_BUFFER = 256 * 1024
_MAX_BUFFER = 64 * 1024 * 1024

Enter = Callable[[str], AbstractContextManager[None]]


class _Echoes:
    """One job under way: its sockets and the requests still waiting for a reply."""

    def __init__(self, job: ProbeJob, count: int, timeout: float) -> None:
        self.job = job
        self.count = count
        self.timeout = timeout
        size = len(job.addresses)
        self.rtts: list[float | None] = [None] * size
        self.errors: list[str | None] = [None] * size
        self.sockets: dict[int, socket.socket] = {}
        # (family, ident, sequence) -> (address index, sent at, source the reply must have)
        self.pending: dict[tuple[int, int, int], tuple[int, int, bytes]] = {}
        self.deadline = 0.0

    def answer(self) -> ProbeAnswer:
        return ProbeAnswer(self.job.namespace, self.rtts, self.errors)

    def close(self) -> None:
        for sock in self.sockets.values():
            sock.close()
        self.sockets.clear()


class Pinger:
    """Probes from many namespaces in one thread (see the module docstring).

    ``enter(namespace)`` is a context manager that puts the calling thread in that
    namespace for the block (the executor's setns).
    """

    def __init__(self, enter: Enter, *, timeout: float, count: int, window: int = 64) -> None:
        self.enter = enter
        self.timeout = timeout
        self.count = count
        self.window = max(1, window)
        self._lock = threading.Lock()
        self._packet_sockets: list[socket.socket] = []

    def run(
        self, jobs: Sequence[ProbeJob], barrier: threading.Barrier | None = None
    ) -> list[ProbeAnswer]:
        """Every job's answer, in the order given.

        Every job's introductions go first; ``barrier`` (shared with the other
        workers) holds the echoes back until every worker has sent its
        introductions, so that no echo request goes out before its peer knows us.
        """
        try:
            for job in jobs:
                self._introduce(job)
        except BaseException:
            if barrier is not None:
                barrier.abort()  # the other workers must not wait for this one
            raise
        if barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        selector = selectors.DefaultSelector()
        under_way: collections.deque[_Echoes] = collections.deque()
        finished: list[_Echoes] = []
        try:
            for job in jobs:
                while len(under_way) >= self.window:
                    finished += self._wait(selector, under_way, first_only=True)
                echoes = _Echoes(job, self.count, self.timeout)
                under_way.append(echoes)
                self._open(echoes, selector)
                self._send(echoes)
                self._drain(selector)
            while under_way:
                finished += self._wait(selector, under_way, first_only=False)
        finally:
            for echoes in under_way:
                echoes.close()
            selector.close()
        order = {id(job): i for i, job in enumerate(jobs)}
        finished.sort(key=lambda e: order[id(e.job)])
        return [echoes.answer() for echoes in finished]

    # -- sockets ------------------------------------------------------------------------
    def _introduce(self, job: ProbeJob) -> None:
        """Send the job's introductions from packet sockets bound to its interfaces.

        Failures are ignored: an introduction only saves the probe a broadcast.  The
        sockets stay open until :meth:`close`: closing a packet socket waits for an
        RCU grace period (``synchronize_net``, about 16 ms here), so they are closed
        all at once at the end rather than one after another on the way.
        """
        by_interface: dict[str, list[bytes]] = {}
        for introduction in job.introductions:
            by_interface.setdefault(introduction.interface, []).append(introduction.frame())
        for interface, frames in by_interface.items():
            try:
                with self.enter(job.namespace):
                    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            except OSError:
                return
            with self._lock:
                self._packet_sockets.append(sock)
            try:
                sock.bind((interface, 0))
                for frame in frames:
                    sock.send(frame)
            except OSError:
                continue

    def close(self) -> None:
        """Close the packet sockets of every introduction, many at a time."""
        with self._lock:
            sockets, self._packet_sockets = self._packet_sockets, []
        if len(sockets) <= 1:
            for sock in sockets:
                sock.close()
            return
        with ThreadPoolExecutor(min(64, len(sockets))) as pool:
            list(pool.map(socket.socket.close, sockets))

    def _open(self, echoes: _Echoes, selector: selectors.BaseSelector) -> None:
        families = sorted({family_of(a) for a in echoes.job.addresses})
        if not families:
            return
        replies = len(echoes.job.addresses) * self.count
        size = min(_MAX_BUFFER, max(_MIN_BUFFER, replies * _PER_REPLY))
        try:
            with self.enter(echoes.job.namespace):
                for family in families:
                    echoes.sockets[family] = _raw_socket(family, size)
        except OSError as error:
            echoes.close()
            said = error.strerror or str(error)
            echoes.errors = [said] * len(echoes.job.addresses)
            return
        for family, sock in echoes.sockets.items():
            selector.register(sock, selectors.EVENT_READ, (echoes, family))

    def _send(self, echoes: _Echoes) -> None:
        base = secrets.randbits(16)
        ordinal = 0
        went = [False] * len(echoes.job.addresses)
        for _ in range(self.count):
            for index, address in enumerate(echoes.job.addresses):
                family = family_of(address)
                sock = echoes.sockets.get(family)
                if sock is None:
                    continue
                ident = (base + (ordinal >> 16)) & 0xFFFF
                sequence = ordinal & 0xFFFF
                ordinal += 1
                source = socket.inet_pton(
                    socket.AF_INET if family == 4 else socket.AF_INET6, address
                )
                sent = time.time_ns()
                try:
                    sock.sendto(echo_request(family, ident, sequence), (address, 0))
                except OSError as error:
                    if not went[index]:
                        echoes.errors[index] = error.strerror or str(error)
                    continue
                went[index] = True
                echoes.errors[index] = None
                echoes.pending[(family, ident, sequence)] = (index, sent, source)
        echoes.deadline = time.monotonic() + self.timeout

    def _drain(self, selector: selectors.BaseSelector) -> None:
        for key, _ in selector.select(0):
            echoes, family = key.data
            _receive(key.fileobj, family, echoes)  # type: ignore[arg-type]

    def _wait(
        self,
        selector: selectors.BaseSelector,
        under_way: collections.deque[_Echoes],
        *,
        first_only: bool,
    ) -> list[_Echoes]:
        """Read replies until the first job under way (or, without ``first_only``,
        every one) has all its replies or has timed out; returns the jobs retired."""
        retired: list[_Echoes] = []
        while under_way:
            now = time.monotonic()
            for echoes in list(under_way):
                if not echoes.pending or now >= echoes.deadline:
                    under_way.remove(echoes)
                    for sock in echoes.sockets.values():
                        selector.unregister(sock)
                    echoes.close()
                    retired.append(echoes)
            if not under_way or (first_only and retired):
                break
            wait = max(0.0, min(e.deadline for e in under_way) - now)
            for key, _ in selector.select(wait):
                echoes, family = key.data
                _receive(key.fileobj, family, echoes)  # type: ignore[arg-type]
        return retired


def _raw_socket(family: int, size: int) -> socket.socket:
    if family == 4:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(*reply_filter(family))
        for option in (SO_RCVBUFFORCE, SO_SNDBUFFORCE):
            with contextlib.suppress(OSError):  # without CAP_NET_ADMIN: the default size
                sock.setsockopt(socket.SOL_SOCKET, option, size)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def replies(sock: socket.socket, family: int) -> Iterator[tuple[tuple[int, int, int], bytes, int]]:
    """Every echo reply waiting on ``sock``: its key (family, identifier, sequence),
    the source address it came from, and the kernel's receive time (ns).  Anything
    else a raw socket sees (it sees all of its namespace's ICMP) is skipped."""
    while True:
        try:
            data, ancillary, _, sender = sock.recvmsg(2048, 64)
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno in (errno.EINTR, errno.EAGAIN):
                continue
            return
        found = parse_reply(family, data)
        if found is not None:
            ident, sequence = found
            yield (family, ident, sequence), _source(family, data, sender), _stamp(ancillary)


def _receive(sock: socket.socket, family: int, echoes: _Echoes) -> None:
    """Read every datagram waiting on ``sock`` and match it to a pending request."""
    for key, source, received in replies(sock, family):
        waiting = echoes.pending.get(key)
        if waiting is None:
            continue
        index, sent, expected = waiting
        if source != expected:
            continue
        del echoes.pending[key]
        rtt = (received - sent) / 1e6
        best = echoes.rtts[index]
        echoes.rtts[index] = rtt if best is None else min(best, rtt)


def _source(family: int, data: bytes, sender: object) -> bytes:
    if family == 4:
        return data[12:16]
    host = str(sender[0]).split("%", 1)[0] if isinstance(sender, tuple) else ""
    try:
        return socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        return b""


def _stamp(ancillary: list[tuple[int, int, bytes]]) -> int:
    """The kernel's receive time (CLOCK_REALTIME, ns), or now when it gave none."""
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
            seconds, nanoseconds = _TIMESPEC.unpack_from(value)
            return int(seconds * 1_000_000_000 + nanoseconds)
    return time.time_ns()


def file_budget(lanes: int) -> int:
    """How many namespaces a worker may keep sockets open for at once (two each),
    within this process's file descriptor limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    spare = max(16, soft - len(os.listdir("/proc/self/fd")) - 64)
    return max(1, min(256, spare // (2 * max(1, lanes))))
