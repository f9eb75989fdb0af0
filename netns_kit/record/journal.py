"""The journal: a lab's memory of what it changed, on disk and in memory.

It holds the write-ahead record (what is about to exist, written before it does),
the undo log (what undoes each step that ran, taken from the runner's report), the
rollback of a half-made builder, the teardown, and the shield that holds Ctrl-C and
SIGTERM while a step runs, so that the log always matches the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import Any

import attrs

from netns_kit.command import Command
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Entry, Step
from netns_kit.errors import AlreadyExistsError, NetnsKitError, NotFoundError, result_error
from netns_kit.executors import Executor
from netns_kit.readback import reader as state
from netns_kit.record.registry import Record, Registry

#: A namespace on a machine: (machine, name), ``None`` for the lab's only machine or the
#: root namespace.  The host side has one name on every machine of a lab.
_Where = tuple[str | None, str | None]


@attrs.define
class _Undo:
    commands: tuple[Command, ...]
    lives_in: frozenset[_Where]
    deletes: _Where | None  # the namespace these commands delete, if any
    tolerant: bool = False  # the step may not have happened: "not found" is fine


class Journal:
    """The undo log and the write-ahead record of one lab."""

    def __init__(self, registry: Registry, runner: Runner) -> None:
        self.registry = registry
        self.runner = runner
        self.record: Record | None = None
        self._undo: list[_Undo] = []
        self._lock_fd: int | None = None
        self._on_exit: Callable[[], None] | None = None
        self._old_sigterm: Any = None

    # -- the lab's claim on its name ------------------------------------------------------
    def claim(self, name: str, on_exit: Callable[[], None]) -> None:
        """Take the lab's lock (LabBusyError if taken), and make sure ``on_exit`` runs
        at interpreter exit and that SIGTERM unwinds like Ctrl-C (main thread only)."""
        self._lock_fd = self.registry.acquire(name)
        self._name = name
        self._on_exit = on_exit
        atexit.register(on_exit)
        if threading.current_thread() is threading.main_thread():
            self._old_sigterm = signal.signal(signal.SIGTERM, _on_sigterm)

    def release(self) -> None:
        """Let go of the name, the exit hook and the SIGTERM handler.  Safe twice."""
        if self._on_exit is not None:
            atexit.unregister(self._on_exit)
            self._on_exit = None
        if self._old_sigterm is not None:
            with contextlib.suppress(ValueError):  # not the main thread any more
                signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None
        if self._lock_fd is not None:
            if self.record is None:  # an open that failed before its record: the lock
                with contextlib.suppress(FileNotFoundError):  # file is all it made
                    self.registry.lock_path(self._name).unlink()
            self.registry.release(self._lock_fd)
            self._lock_fd = None

    def begin(self, record: Record) -> None:
        self.record = record
        self.registry.write(record)

    def set_state(self, state: str) -> None:
        assert self.record is not None
        if self.record.state != state:
            self.record.state = state
            self.registry.write(self.record)

    # -- applying steps -----------------------------------------------------------------
    def apply(self, steps: Sequence[Step], *, rollback: bool) -> None:
        """Write ahead, run, log the undo of what ran; on failure roll this call back
        (``rollback``) or keep what ran, drop the record entries of what did not, and
        raise the failure."""
        with shielded():  # the record writes too: a signal there could be lost
            self._apply(steps, rollback=rollback)

    def _apply(self, steps: Sequence[Step], *, rollback: bool) -> None:
        assert self.record is not None
        entries = [s.entry for s in steps if s.entry is not None]
        if entries:  # write ahead: what is about to exist, before it does
            self.record.resources.extend(entries)
            self.record.state = "building"
            self.registry.write(self.record)
        logged = len(self._undo)
        try:
            report = self.runner.run_steps(steps)
        except BaseException:  # unknown: every step may have happened
            self._log(steps, tolerant=True)
            raise
        order = report.ran()  # the order they ran in: undone in reverse
        self._log([steps[i] for i in order], tolerant=False)
        ran = set(order)
        if report.uncertain:  # a batch failed without saying where: read back
            maybe = self._present([steps[i] for i in sorted(report.uncertain - ran)])
            self._log(maybe, tolerant=True)
            ran |= {i for i, step in enumerate(steps) if any(step is m for m in maybe)}
        if report.error is None:
            self.set_state("up")
            return
        if rollback:
            self._rollback(logged, report.error)
        if report.failed is not None:
            self.name_owner(report.error, steps[report.failed].entry)
        gone = [s.entry for i, s in enumerate(steps) if s.entry and (rollback or i not in ran)]
        self._forget(gone)
        raise report.error

    def name_owner(self, failure: BaseException, entry: Entry | None) -> None:
        """Say whose a name is, when the kernel said it exists already."""
        if not isinstance(failure, AlreadyExistsError) or entry is None or self.record is None:
            return
        failure.add_note(self.registry.owner_note(entry, self.record.name))

    def _log(self, steps: Iterable[Step], *, tolerant: bool) -> None:
        for step in steps:
            if step.undo:
                machine = step.command.machine
                lives_in = frozenset((machine, ns) for ns in step.lives_in)
                gone = step.deletes_namespace
                deletes = None if gone is None else (machine, gone)
                self._undo.append(_Undo(step.undo, lives_in, deletes, tolerant))

    def _present(self, steps: Sequence[Step]) -> list[Step]:
        """Of steps that may or may not have run, those whose work may exist now: a
        namespace or a root-side link only if the kernel shows it (read back once per
        machine); anything else inside a namespace only if that namespace exists."""
        machines = {step.command.machine for step in steps}
        names: dict[str | None, set[str]] = {}
        links: dict[str | None, set[str]] = {}
        for machine in machines:
            ex = self.runner.executor_for(machine)
            names[machine] = set(state.namespace_names(ex))
            if any(s.entry and s.entry.kind == "link" and not s.entry.namespace for s in steps):
                links[machine] = set(state.link_names(ex))
        present = []
        for step in steps:
            machine, entry = step.command.machine, step.entry
            if entry is not None and entry.kind == "namespace":
                exists = entry.name in names[machine]
            elif entry is not None and entry.kind == "link" and entry.namespace is None:
                exists = entry.name in links.get(machine, set())
            else:
                exists = all(ns is None or ns in names[machine] for ns in step.lives_in)
            if exists and step.undo:
                present.append(step)
        return present

    def _rollback(self, start: int, failure: BaseException) -> None:
        """Undo a half-made builder (log entries from ``start`` on); the lab stays open.

        What goes with a namespace this rollback deletes is left to it; a step that
        may never have run (``tolerant``) may find nothing to undo."""
        undo = self._undo[start:]
        del self._undo[start:]
        deleted = {u.deletes for u in undo if u.deletes is not None}
        plan = [u for u in reversed(undo) if not (u.lives_in and u.lives_in <= deleted)]
        commands = [c for u in plan for c in u.commands]
        tolerant = [u.tolerant for u in plan for _ in u.commands]
        report = self.runner.run_all(commands, keep_going=True)
        for result, may_be_absent in zip(report.results, tolerant, strict=True):
            if result is not None and not result:
                if may_be_absent and isinstance(result_error(result), NotFoundError):
                    continue
                failure.add_note(f"rolling back also failed: `{' '.join(result.argv)}`")

    def _forget(self, entries: Sequence[Entry]) -> None:
        """Drop record entries of steps that did not happen (or were rolled back), so
        that recovery never reaches for a name this lab does not hold."""
        if self.record is None or not entries:
            return
        ids = {id(entry) for entry in entries}
        self.record.resources = [e for e in self.record.resources if id(e) not in ids]
        self.registry.write(self.record)

    def remember(self, *entries: Entry) -> None:
        """Add record entries for what is not a step: running programs (captures,
        routing daemons, whose PID is known only once they run) that recovery must
        stop after a crash.  One write for all of them."""
        if self.record is None or not entries:
            return
        with shielded():
            self.record.resources.extend(entries)
            self.registry.write(self.record)

    def forget(self, entries: Sequence[Entry]) -> None:
        """Drop record entries :meth:`remember` added, once what they name is gone (a
        capture or a daemon stopped)."""
        with shielded():
            self._forget(entries)

    def revert(self, steps: Sequence[Step]) -> list[BaseException]:
        """Undo steps that :meth:`apply` ran, now, and forget them: their undo leaves
        the log and their entries the record (a check's raised neighbour limits).

        Goes on past failures and returns them."""
        with shielded():
            return self._revert(steps)

    def _revert(self, steps: Sequence[Step]) -> list[BaseException]:
        undone: list[Command] = []
        for step in reversed(steps):
            for k in range(len(self._undo) - 1, -1, -1):
                if self._undo[k].commands == step.undo:
                    undone += self._undo.pop(k).commands
                    break
        report = self.runner.run_all(undone, keep_going=True)
        self._forget([s.entry for s in steps if s.entry is not None])
        problems: list[BaseException] = list(report.failures())
        if report.error is not None and report.failed is None:
            problems.append(report.error)
        return problems

    def refuse_taken(self, steps: Sequence[Step]) -> None:
        """Refuse, before changing anything, names that already exist.

        Namespaces are global; links are checked where they would survive the lab's
        own namespaces, in the root namespace (a lab that is not isolated).  Links in
        the lab's fresh namespaces cannot collide with anything outside the lab.
        """
        by_machine: dict[str | None, list[Step]] = {}
        for step in steps:
            if step.entry is not None:
                by_machine.setdefault(step.command.machine, []).append(step)
        for machine, mine in by_machine.items():  # each machine has its own names
            self._refuse_taken(mine, self.runner.executor_for(machine))

    def _refuse_taken(self, steps: Sequence[Step], ex: Executor) -> None:
        made = [s for s in steps if s.entry is not None and s.deletes_namespace is not None]
        roots = [s for s in steps if s.entry and s.entry.kind == "link" and not s.entry.namespace]
        taken = set(state.namespace_names(ex)) if made else set()
        clashes = [(s, "namespace") for s in made if s.deletes_namespace in taken]
        if roots and not clashes:
            present = state.link_names(ex)
            clashes = [(s, "device") for s in roots if s.entry and s.entry.name in present]
        if clashes:
            step, what = clashes[0]
            assert step.entry is not None
            said = f'{what} "{step.entry.name}": File exists'
            failure = AlreadyExistsError(step.command.argv, 1, "", said)
            self.name_owner(failure, step.entry)
            raise failure

    # -- teardown -------------------------------------------------------------------------
    def _teardown_plan(self) -> list[_Undo]:
        """The undo log reversed, minus what goes with a namespace deleted anyway."""
        deleted = {u.deletes for u in self._undo if u.deletes is not None}
        return [u for u in reversed(self._undo) if not (u.lives_in and u.lives_in <= deleted)]

    def forget_undo(self) -> None:
        """Drop the undo log: what it would undo is gone already (a sandbox ended)."""
        self._undo.clear()

    def teardown_commands(self) -> list[Command]:
        return [c for undo in self._teardown_plan() for c in undo.commands]

    def teardown(self) -> list[BaseException]:
        """Run the teardown, going on past failures; the problems that matter."""
        plan = self._teardown_plan()
        commands = [c for undo in plan for c in undo.commands]
        tolerant = [undo.tolerant for undo in plan for _ in undo.commands]
        try:
            report = self.runner.run_all(commands, keep_going=True)
        except NetnsKitError as broken:
            return [broken]
        self._undo.clear()
        problems: list[BaseException] = []
        for result, may_be_absent in zip(report.results, tolerant, strict=True):
            if result is None or result:
                continue
            failed = result_error(result)
            if not (may_be_absent and isinstance(failed, NotFoundError)):
                problems.append(failed)
        if report.error is not None and report.failed is None:
            problems.append(report.error)
        return problems


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while a step runs or the lab is torn down.

    A signal that arrives meanwhile is delivered right after, so Ctrl-C lands between
    steps and the undo log always knows what exists.  Only the main thread can do
    this; elsewhere it does nothing.

    The held signal is taken off the queue and its handler called here, in this frame.
    Left to the kernel, it would be delivered as the mask is restored, and Python
    could run the handler inside a garbage-collector callback, which ignores the
    exception it raises: the SIGTERM was lost in 2 of 30 real runs.  The same happens
    to a signal that arrives while a collection runs outside any shield, which is why
    a step's record writes are shielded too (SIGINT lost in 2 of 60 runs without).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    with held_signals(caught):
        yield
    for signum in caught:
        _deliver(signum)


@contextlib.contextmanager
def held_signals(caught: list[int]) -> Iterator[None]:
    """Block SIGINT and SIGTERM for the block; the ones that came go into ``caught``
    (taken off the queue, not delivered).  Main thread only."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        while pending := (signal.sigpending() & held) - old:  # an outer shield keeps its own
            info = signal.sigtimedwait(pending, 0)
            if info is None:
                break
            caught.append(info.si_signo)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _deliver(signum: int) -> None:
    """Do what the process does on ``signum``, now: call its handler, or the default."""
    handler = signal.getsignal(signum)
    if callable(handler):
        handler(signum, None)
    elif handler != signal.SIG_IGN:
        signal.raise_signal(signum)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C does, so ``with`` blocks tear their labs down."""
    raise SystemExit(128 + signum)
