"""The kernel's neighbour table during a check: its limits, raised and put back.

Every namespace's ARP and NDP entries live in one table per IP version, whose
limits exist only in the root namespace (``net.ipv4.neigh.default.gc_thresh1/2/3``,
128/512/1024 by default, and the ``ipv6`` ones).  Above ``gc_thresh3`` the kernel
refuses new entries (``neighbor table overflow!``, sends fail with ENOBUFS), and its
forced garbage collection cannot free entries younger than 5 s.  An all-pairs check
of N namespaces on one segment needs about N^2 entries within a second: at N=100,
unmitigated, only about 1,000 of 9,900 pairs answered.  An overflow must never be
reported as a broken link, so a check:

* raises ``gc_thresh2`` and ``gc_thresh3`` of each IP version it probes by what it
  needs, when that is more than half the room ``gc_thresh2`` leaves (``gc_thresh1``
  stays: it only keeps entries from being collected).  The raise is a root kernel
  setting recorded like any other: written ahead to a record (the lab's own, or for
  a kept lab one of its own, ``<lab>:check``), undone when the check ends, and
  after a crash by :func:`~netns_kit.recover` or ``netns-kit cleanup``, which put a
  value back only while it still holds what the check set.  Checks that raise the
  limits take a machine-wide lock, so that two never undo each other's raise;
* flushes the lab's neighbour tables when it is done (before the limits go back),
  and between rounds;
* where the limits cannot be raised (not root, a rootless lab), sends
  its probes in rounds small enough to fit, flushing in between, and says in the
  result that it was paced.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import attrs

from netns_kit.command import Command, in_namespace, ip
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Step
from netns_kit.errors import CommandError, NetnsKitError
from netns_kit.executors import Executor
from netns_kit.objects.nat import Sysctl
from netns_kit.record.journal import Journal
from netns_kit.record.registry import DEFAULT_STATE_DIR, Record, Registry, check_lease, undo_record

log = logging.getLogger("netns_kit")

FAMILIES = {4: "ipv4", 6: "ipv6"}
#: Entries one round may need at most, even with raised limits (about 400 bytes
#: each: 200,000 entries are some 80 MB of kernel memory per IP version).
MOST_PER_ROUND = 200_000
#: Entries a paced round may need at most: never more than this share of gc_thresh2,
#: which the lab shares with everything else on the machine.
PACED_SHARE = 0.5
LOCK_PATH = Path(DEFAULT_STATE_DIR) / "neighbour-limits.lock"
LOCK_WAIT = 60.0


def limit_key(family: int, level: int) -> str:
    return f"net.{FAMILIES[family]}.neigh.default.gc_thresh{level}"


KEYS = tuple(limit_key(family, level) for family in (4, 6) for level in (1, 2, 3))


def read_command() -> Command:
    """One ``sysctl -n`` for all six limits, in the root namespace."""
    return in_namespace(("sysctl", "-n", *KEYS), None, read=True)


def parse_limits(stdout: str) -> dict[str, int] | None:
    """The limits by key, or ``None`` when the output is not six numbers (a dry run)."""
    words = stdout.split()
    if len(words) != len(KEYS) or not all(w.isdigit() for w in words):
        return None
    return {key: int(word) for key, word in zip(KEYS, words, strict=True)}


def read_limits(executor: Executor) -> dict[str, int] | None:
    result = Runner(executor).run(read_command(), check=False)
    return parse_limits(result.stdout) if result else None


def wanted(current: dict[str, int], needed: dict[int, int]) -> dict[str, int]:
    """The raised values a check needing ``needed[family]`` entries asks for; empty
    when the table has room enough (half of what ``gc_thresh2`` leaves)."""
    out: dict[str, int] = {}
    for family, count in needed.items():
        if count <= current[limit_key(family, 2)] * PACED_SHARE:
            continue
        extra = min(count, MOST_PER_ROUND)
        for level in (2, 3):
            key = limit_key(family, level)
            out[key] = current[key] + extra
    return out


def paced_budget(current: dict[str, int] | None) -> int:
    """Entries a round may need when the limits stay as they are."""
    thresh2 = min(current[limit_key(f, 2)] for f in (4, 6)) if current else 512
    return max(16, int(thresh2 * PACED_SHARE))


def raise_steps(current: dict[str, int], values: dict[str, int]) -> list[Step]:
    """Root settings, each with the undo that puts its current value back."""
    steps: list[Step] = []
    for key, value in values.items():
        steps += Sysctl(key, value).steps(str(current[key]))
    return steps


def flush_commands(namespaces: Sequence[str]) -> list[Command]:
    """Empty each namespace's neighbour tables, both IP versions (permanent entries
    stay)."""
    return [ip("neigh", "flush", "all", namespace=ns) for ns in namespaces]


def flush(runner: Runner, namespaces: Sequence[str]) -> None:
    """Flush, overlapped; a namespace that cannot be flushed is only logged."""
    report = runner.run_each(flush_commands(namespaces))
    for failure in report.failures():
        log.debug("neighbour flush failed: %s", failure)


class Keeper(Protocol):
    """Where a check's raised limits are written down while they are raised."""

    def hold(self, steps: Sequence[Step]) -> None:
        """Record the steps, then run them (raise if they fail, recording nothing)."""

    def release(self) -> list[BaseException]:
        """Run their undo and forget them; the problems, if any."""


class LabKeeper:
    """In an open lab's own journal and record, like any of its root settings."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.steps: list[Step] = []

    def hold(self, steps: Sequence[Step]) -> None:
        self.journal.apply(steps, rollback=True)
        self.steps = list(steps)

    def release(self) -> list[BaseException]:
        steps, self.steps = self.steps, []
        return self.journal.revert(steps) if steps else []


class LeaseKeeper:
    """In a record of its own, ``<lab>:check``, for a lab that has no Lab object here
    (``netns-kit check``): its lock is held while the limits are raised, so a crash
    leaves a stale record that ``netns-kit cleanup`` (or ``recover``) undoes."""

    def __init__(self, registry: Registry, lab: str, executor: Executor) -> None:
        self.registry = registry
        self.name = check_lease(lab)
        self.journal = Journal(registry, Runner(executor))
        self.steps: list[Step] = []

    def hold(self, steps: Sequence[Step]) -> None:
        leftover = self.registry.read(self.name)
        self.journal.claim(self.name, self._at_exit)
        try:
            if leftover is not None:  # a check that died: put its values back first
                undo_record(leftover, self.journal.runner.executor)
            self.journal.begin(Record(self.name, os.getpid(), state="checking"))
            self.journal.apply(steps, rollback=True)
            self.journal.set_state("checking")
        except BaseException:
            self.registry.remove(self.name)
            self.journal.release()
            raise
        self.steps = list(steps)

    def _at_exit(self) -> None:
        self.release()

    def release(self) -> list[BaseException]:
        if not self.steps:
            self.journal.release()
            return []
        self.steps = []
        problems = self.journal.teardown()
        if not problems:
            self.registry.remove(self.name)
        self.journal.release()
        return problems


@attrs.frozen
class Room:
    """What the neighbour table allows a check: entries per round, whether the check
    is paced because the limits could not be raised, whether they were raised."""

    budget: int
    paced: bool
    notes: tuple[str, ...] = ()
    raised: bool = False


@contextlib.contextmanager
def machine_lock(path: Path = LOCK_PATH, wait: float = LOCK_WAIT) -> Iterator[bool]:
    """One check at a time raises the limits on this machine; yields whether the
    lock is held (it cannot be when the file cannot be made: not root).

    The lock file is removed when the lock is let go, before it is unlocked; a
    waiter that then gets the lock on the removed file sees it is gone and tries
    the path again, so two never hold it at once.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            yield False
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(0.05)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # removed by the holder that let go: try the path again
    try:
        yield True
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)  # closing unlocks


def _same_file(fd: int, path: Path) -> bool:
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    here = os.fstat(fd)
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@contextlib.contextmanager
def room_for(executor: Executor, keeper: Keeper | None, needed: dict[int, int]) -> Iterator[Room]:
    """Make room in the neighbour table for ``needed`` entries per IP version, for the
    block: raise the limits through ``keeper`` if it takes that, else pace."""
    current = read_limits(executor)
    if current is None:
        yield Room(paced_budget(None), True, ("the neighbour limits could not be read",))
        return
    if not wanted(current, needed):
        yield Room(min(MOST_PER_ROUND, max(needed.values(), default=0) or 1), False)
        return
    if keeper is None:
        yield Room(paced_budget(current), True, ("the neighbour limits cannot be raised here",))
        return
    with machine_lock() as locked:
        current = read_limits(executor) or current  # another check may have finished
        values = wanted(current, needed)
        if not locked:
            note = "another check holds the neighbour limits"
            yield Room(paced_budget(current), True, (note,))
            return
        steps = raise_steps(current, values)
        try:
            keeper.hold(steps)
        except (CommandError, NetnsKitError) as refused:
            note = f"the neighbour limits could not be raised ({refused})".splitlines()[0]
            yield Room(paced_budget(current), True, (note,))
            return
        said = ", ".join(f"{key} {current[key]} -> {value}" for key, value in values.items())
        log.info("check: raised %s (put back when the check ends)", said)
        try:
            budget = min(MOST_PER_ROUND, max(needed.values()))
            note = f"raised {said} for the check, then put it back"
            yield Room(budget, False, (note,), raised=True)
        finally:
            for problem in keeper.release():
                log.warning("check: putting a neighbour limit back failed: %s", problem)
