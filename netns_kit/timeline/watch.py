"""Continuous probes: ``lab.watch(pairs)``, every probe kept.

A watch resolves its pairs against the lab before anything is sent (a source is a
namespace of the lab, or an address the lab gave one; a target is a namespace, meaning
its first address, or any address), groups them into one probe job per source
namespace (the check's :class:`~netns_kit.executors.probes.ProbeJob`), and asks the executor to
probe them continuously:

* with raw ICMP sockets after setns, from one thread, where the executor can
  (:meth:`ShellExecutor.watch <netns_kit.executors.ShellExecutor.watch>`, root);
* with one ``fping -l -p PERIOD -D`` per source namespace, started through the
  executor like any background program, where it cannot (a rootless sandbox, another
  machine, sudo): :mod:`netns_kit.timeline.fping_loop`.

Probes and events are stamped with one clock, ``time.monotonic()``.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs

from netns_kit import units
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors import Executor, Process, Watching
from netns_kit.executors.probes import ProbeJob
from netns_kit.timeline import fping_loop
from netns_kit.timeline.outages import TIMEOUT, Outage, Probe, Series, all_outages

if TYPE_CHECKING:
    from netns_kit.lab.core import LabCore

#: The shortest and the longest interval between two probes of a pair, in seconds.
INTERVAL_MIN = 0.001
INTERVAL_MAX = 60.0


def seconds(value: object, field: str, *, minimum: float = 0.0, maximum: float = 3600.0) -> float:
    """A time in seconds from ``"10ms"``, ``"2s"`` or a number of seconds, in bounds."""
    found = units.duration(value, field) / 1e6
    if not minimum <= found <= maximum:
        raise ValidationError(field, value, f"is not between {minimum:g} s and {maximum:g} s")
    return found


@attrs.frozen
class Watched:
    """One pair as the user named it (``label``), and what is probed: from
    ``namespace`` to ``address``."""

    label: tuple[str, str]
    namespace: str
    address: str


def _name(item: object) -> object:
    return getattr(item, "name", item)


def _plain_address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.split("/", 1)[0]))
    except ValueError:
        return None


def first_address(lab: LabCore, namespace: str) -> str | None:
    """The first address the lab gave ``namespace`` (IPv4 before IPv6)."""
    mine = [c for where, _, c in lab.held.addressed() if where == namespace]
    mine.sort(key=lambda c: ":" in c)
    return str(ipaddress.ip_interface(mine[0]).ip) if mine else None


def resolve(lab: LabCore, pairs: object, field: str = "pairs") -> list[Watched]:
    """Each pair as what it probes; :class:`ValidationError` names the bad one."""
    if isinstance(pairs, str) or not isinstance(pairs, Iterable):
        raise ValidationError(field, pairs, "is not a list of (source, target) pairs")
    found: list[Watched] = []
    namespaces = lab.held.namespaces
    for index, pair in enumerate(pairs):
        where = f"{field}[{index}]"
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValidationError(where, pair, "is not a (source, target) pair")
        source, target = _name(pair[0]), _name(pair[1])
        if isinstance(source, str) and source in namespaces:
            origin = source
        else:
            plain = _plain_address(source)
            owner = None
            if plain is not None:
                try:
                    owner = lab.held.owner(ipaddress.ip_address(plain))
                except KeyError:
                    owner = None
            if owner is None or owner not in namespaces:
                raise ValidationError(
                    f"{where}[0]", pair[0], "is not a namespace of this lab or one's address"
                )
            origin = owner
        if isinstance(target, str) and target in namespaces:
            address = first_address(lab, target)
            if address is None:
                raise ValidationError(f"{where}[1]", pair[1], "is a namespace without an address")
        else:
            address = _plain_address(target)
            if address is None:
                raise ValidationError(
                    f"{where}[1]", pair[1], "is not a namespace of this lab or an address"
                )
        label = (str(source), str(target))
        found.append(Watched(label, origin, address))
    if not found:
        raise ValidationError(field, pairs, "names no pair to watch")
    labels = [w.label for w in found]
    for label in labels:
        if labels.count(label) > 1:
            raise ValidationError(field, list(label), "is watched twice")
    return found


def jobs_of(watched: Sequence[Watched]) -> tuple[list[ProbeJob], list[tuple[int, int]]]:
    """One job per source namespace, and where each pair's probes come back
    (job index, address index)."""
    by_namespace: dict[str, list[str]] = {}
    places = []
    for item in watched:
        addresses = by_namespace.setdefault(item.namespace, [])
        job = list(by_namespace).index(item.namespace)
        places.append((job, len(addresses)))
        addresses.append(item.address)
    return [ProbeJob(ns, tuple(a)) for ns, a in by_namespace.items()], places


class Watch:
    """Pairs probed every ``interval`` seconds while the block (or start..stop) runs.

    ``series`` holds every pair's probes once stopped; ``outages()`` computes the
    outages from them.  ``method`` says how: ``raw`` or ``fping``.
    """

    def __init__(
        self,
        executor: Executor,
        watched: Sequence[Watched],
        *,
        interval: float,
        timeout: float = TIMEOUT,
        processes: list[Process] | None = None,
    ) -> None:
        self.executor = executor
        self.watched = list(watched)
        self.interval = interval
        self.timeout = timeout
        self.method = "raw" if getattr(executor, "can_watch", False) else "fping"
        self.series: list[Series] = []
        self.started: float | None = None
        self.stopped: float | None = None
        self._jobs, self._places = jobs_of(self.watched)
        self._handle: Watching | None = None
        self._processes: list[Process] = []
        self._lab_processes = processes
        self._offset = 0.0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped" if self.stopped else "new"
        return f"<Watch {len(self.watched)} pairs every {self.interval:g} s, {state}>"

    @property
    def running(self) -> bool:
        return self.started is not None and self.stopped is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Self:
        if self.started is not None:
            raise NetnsKitError("a watch starts once; make a new one")
        self._offset = time.time() - time.monotonic()
        self.started = time.monotonic()
        if self.method == "raw":
            watch = getattr(self.executor, "watch")  # noqa: B009 - a capability
            self._handle = watch(self._jobs, interval=self.interval, timeout=self.timeout)
            return self
        try:
            for command in fping_loop.commands(
                self._jobs, interval=self.interval, timeout=self.timeout
            ):
                process = self.executor.start(command)
                self._processes.append(process)
                if self._lab_processes is not None:  # a lab's close stops it too
                    self._lab_processes.append(process)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> list[Series]:
        """Stop probing (safe twice); every pair's series."""
        if self.started is None or self.stopped is not None:
            return self.series
        self.stopped = time.monotonic()
        per_job: list[list[list[Probe]]]
        if self._handle is not None:
            per_job = self._handle.stop()
        else:
            per_job = []
            for job, process in zip(self._jobs, self._processes, strict=False):
                result = process.stop()
                if self._lab_processes is not None and process in self._lab_processes:
                    self._lab_processes.remove(process)
                per_job.append(
                    fping_loop.parse(
                        job,
                        result.stdout,
                        interval=self.interval,
                        timeout=self.timeout,
                        started=self.started,
                        stopped=self.stopped,
                        offset=self._offset,
                    )
                )
            if len(per_job) < len(self._jobs):
                return self.series  # failed to start
        self.series = [
            Series(item.label, per_job[j][a], item.address)
            for item, (j, a) in zip(self.watched, self._places, strict=True)
        ]
        return self.series

    def outages(self, events: Sequence[tuple[float, str]] = ()) -> list[Outage]:
        """Every pair's outages (times on the monotonic clock)."""
        return all_outages(self.series, events, timeout=self.timeout)


def watch(
    lab: LabCore, pairs: object, *, interval: object = 0.01, timeout: object = TIMEOUT
) -> Watch:
    """``lab.watch(...)``: checked, not started (a ``with`` block or ``start()`` does)."""
    every = seconds(interval, "interval", minimum=INTERVAL_MIN, maximum=INTERVAL_MAX)
    wait = seconds(timeout, "timeout", minimum=0.001, maximum=60.0)
    if lab.state != "open":
        raise NetnsKitError(f"lab {lab.name!r} is {lab.state}: watch it once built")
    if lab.machines is not None:
        raise NetnsKitError(f"lab {lab.name!r} spans machines: watch its pairs from one")
    watched = resolve(lab, pairs)
    return Watch(lab.ex, watched, interval=every, timeout=wait, processes=lab.processes)


def describe(watched: Iterable[Watched]) -> list[dict[str, Any]]:
    return [
        {"pair": list(w.label), "namespace": w.namespace, "address": w.address} for w in watched
    ]
