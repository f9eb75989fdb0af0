"""Running a reachability check: read, plan, make room, probe, ask failures again.

What :meth:`Lab.reachability() <netns_kit.Lab.reachability>`, :meth:`KeptLab.check`
and ``netns-kit check`` do, in order:

1. read the lab with one fast snapshot (:mod:`netns_kit.readback.snapshot`): the targets
   are its namespaces' global addresses, and their segments and MAC addresses give
   the introductions (:mod:`netns_kit.check.probe_plan`);
2. make room in the kernel's shared neighbour table, raising its limits (recorded,
   put back at the end and after a crash) or pacing the probes in rounds
   (:mod:`netns_kit.check.neighbours`);
3. probe: with raw ICMP sockets opened inside the namespaces when the executor can
   (:meth:`ShellExecutor.probe <netns_kit.executors.ShellExecutor.probe>`: root,
   no sudo), else with one ``fping`` per source namespace (:mod:`netns_kit.check.fping`),
   through the executor like any command;
4. ask every pair that failed once more, after flushing the neighbour tables: a
   pair fails only when it fails twice, so a lost first ARP exchange or a full
   neighbour table never reads as a broken link;
5. flush the lab's neighbour tables, then put the limits back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from netns_kit import validate
from netns_kit.check import fping, neighbours
from netns_kit.check import probe_plan as reach_plan
from netns_kit.check.neighbours import Keeper
from netns_kit.check.probe_plan import ProbePair
from netns_kit.check.result import Pair, Reachability, Target
from netns_kit.engine import progress
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError, ValidationError
from netns_kit.executors import Executor
from netns_kit.executors.probes import ProbeAnswer, ProbeJob
from netns_kit.readback.reader import Snapshot
from netns_kit.readback.snapshot import snapshot

log = logging.getLogger("netns_kit")

#: How many workers send raw probes at once (one per CPU of a small machine).
WORKERS = 2


def options(timeout: object, count: object) -> tuple[float, int]:
    """Checked ``timeout`` (seconds, up to 60) and ``count`` (echoes per pair)."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 60:
        raise ValidationError("timeout", timeout, "is not a number of seconds in (0, 60]")
    return float(timeout), validate.positive_int(count, "count", maximum=100)


def run(
    executor: Executor,
    *,
    read: Sequence[str | None],
    namespaces: Sequence[str],
    sources: object = None,
    targets: object = None,
    timeout: object = 1.0,
    count: object = 1,
    keeper: Keeper | None = None,
    lab: str | None = None,
) -> Reachability:
    """Check ``namespaces`` (a lab's own): ``read`` lists every namespace to read
    (with the host side, whose bridges say which links share a segment).

    Arguments are checked before anything is sent, and ``sources``/``targets`` name
    namespaces of the lab (``targets`` also its addresses).
    """
    wait, echoes = options(timeout, count)
    chosen_sources = reach_plan.choose(sources, "sources", namespaces)
    if targets is not None:  # names and address syntax now, the lab's addresses once read
        reach_plan.choose(targets, "targets", namespaces, any_address=True)
    snap = snapshot(executor, read)
    every = reach_plan.targets_of(snap, namespaces)
    addresses = {t.address for t in every}
    chosen = (
        None if targets is None else reach_plan.choose(targets, "targets", namespaces, addresses)
    )
    return check(
        executor,
        snap,
        sources=chosen_sources,
        targets=every,
        chosen=chosen,
        timeout=wait,
        count=echoes,
        keeper=keeper,
        lab=lab,
        flush_in=[n for n in read if n is not None],
    )


def check(
    executor: Executor,
    snap: Snapshot,
    *,
    sources: Sequence[str],
    targets: Sequence[Target],
    chosen: Sequence[str] | None = None,
    timeout: float = 1.0,
    count: int = 1,
    keeper: Keeper | None = None,
    lab: str | None = None,
    flush_in: Sequence[str] | None = None,
) -> Reachability:
    """Probe every (source, target) pair, as the module docstring says.

    ``flush_in`` lists the namespaces whose neighbour tables the check empties (by
    default those of the pairs); never the root namespace's.
    """
    started = time.monotonic()
    unique, notes = _unique(targets)
    planned = reach_plan.pairs(sources, unique, chosen, reach_plan.families_of(targets))
    involved = list(flush_in or dict.fromkeys([*sources, *(t.namespace for _, t in planned)]))
    if not planned:  # nothing to probe (a dry run reads an empty lab): touch nothing
        seconds = time.monotonic() - started
        return Reachability(tuple(sources), (), {}, seconds=seconds, notes=tuple(notes), lab=lab)
    probe = _Probe(executor, snap, timeout=timeout, count=count)
    runner = Runner(executor)
    rtts: dict[Pair, float | None] = {}
    errors: dict[Pair, str] = {}
    retried = 0
    with neighbours.room_for(executor, keeper, reach_plan.neighbour_entries(planned)) as room:
        notes += list(room.notes)
        batches = reach_plan.rounds(planned, room.budget)
        if room.paced:
            neighbours.flush(runner, involved)
        reporter = progress.active()
        done = 0
        for number, batch in enumerate(batches):
            if number:  # empty what the last round filled
                neighbours.flush(runner, reach_plan.namespaces_of(batches[number - 1]))
            if reporter is not None:
                reporter.waiting(progress.PROBING, done, len(planned))
            probe.run(batch, rtts, errors)
            done += len(batch)
        if reporter is not None:
            reporter.waiting(progress.PROBING, done, len(planned))
        failed = [pair for pair in planned if rtts[(pair[0], pair[1].address)] is None]
        if failed:
            neighbours.flush(runner, involved)
            again: dict[Pair, float | None] = {}
            second = reach_plan.rounds(failed, room.budget)
            for number, batch in enumerate(second):
                if number:
                    neighbours.flush(runner, reach_plan.namespaces_of(second[number - 1]))
                if reporter is not None:
                    reporter.waiting(progress.RETRYING, 0, len(failed))
                probe.run(batch, again, errors)
            for key, rtt in again.items():
                if rtt is not None:
                    rtts[key] = rtt
                    errors.pop(key, None)
                    retried += 1
        if room.raised or room.paced:  # empty the table before its limits go back
            neighbours.flush(runner, involved)
    if retried:
        log.info("check: %d pair(s) answered only on the second try", retried)
    return Reachability(
        tuple(sources),
        tuple(dict.fromkeys(t for _, t in planned)),
        rtts,
        errors,
        seconds=time.monotonic() - started,
        method=probe.method,
        paced=room.paced,
        rounds=len(batches),
        retried=retried,
        notes=tuple(notes),
        lab=lab,
    )


def _unique(targets: Sequence[Target]) -> tuple[list[Target], list[str]]:
    """Targets with an address held twice (by two namespaces) probed once, noted."""
    seen: dict[str, Target] = {}
    notes = []
    for target in targets:
        first = seen.setdefault(target.address, target)
        if first is not target:
            notes.append(
                f"{target.address} is held by {first.namespace} and {target.namespace}: "
                f"probed as {first.namespace}'s"
            )
    return list(seen.values()), notes


class _Probe:
    """Sends one round of probes the best way the executor allows."""

    def __init__(self, executor: Executor, snap: Snapshot, *, timeout: float, count: int) -> None:
        self.executor = executor
        self.snap = snap
        self.timeout = timeout
        self.count = count
        self.raw = bool(getattr(executor, "can_probe", False))
        self.method = "raw" if self.raw else "fping"

    def run(
        self, batch: Sequence[ProbePair], rtts: dict[Pair, float | None], errors: dict[Pair, str]
    ) -> None:
        if self.raw:
            introduced = reach_plan.introductions(self.snap, batch)
            jobs = reach_plan.jobs(batch, introduced)
            answers = self._raw(jobs)
        else:
            jobs = reach_plan.jobs(batch, {})
            answers = self._fping(jobs)
        for job, answer in zip(jobs, answers, strict=True):
            for address, rtt, error in zip(job.addresses, answer.rtts, answer.errors, strict=True):
                rtts[(job.namespace, address)] = rtt
                if error is not None and rtt is None:
                    errors[(job.namespace, address)] = f"not sent: {error}"

    def _raw(self, jobs: list[ProbeJob]) -> list[ProbeAnswer]:
        workers = max(1, int(getattr(self.executor, "parallel", WORKERS)))
        lanes = reach_plan.lanes(jobs, workers)
        probe = getattr(self.executor, "probe")  # noqa: B009 - a capability, not every executor's
        answered = probe(lanes, timeout=self.timeout, count=self.count)
        by_job = {
            id(job): answer
            for lane, got in zip(lanes, answered, strict=True)
            for job, answer in zip(lane, got, strict=True)
        }
        return [by_job[id(job)] for job in jobs]

    def _fping(self, jobs: list[ProbeJob]) -> list[ProbeAnswer]:
        busy = [job for job in jobs if job.addresses]
        report = Runner(self.executor).run_each(
            fping.commands(busy, timeout=self.timeout, count=self.count)
        )
        if report.error is not None and report.failed is None:
            raise report.error  # fping is missing, say
        answers = {}
        for job, result in zip(busy, report.results, strict=True):
            if result is None:
                raise NetnsKitError(f"fping in {job.namespace} did not run")
            answers[id(job)] = fping.parse(job, result)
        return [answers.get(id(job), ProbeAnswer(job.namespace, [], [])) for job in jobs]
