"""The runner: the policy above the executor.

An executor only starts processes (:mod:`netns_kit.executors`).  The runner decides
what to start and what the outcome means: it evaluates guards (``iptables -C`` before
``-A``), plans batches (:mod:`netns_kit.engine.plan`), overlaps independent lanes as far as
the executor allows, splits a batch's output back into one result per command, maps
failures to errors, and returns a :class:`RunReport` of what ran and what failed.
Nothing travels back on exception attributes: a lab builds its undo log from the
report.  Every executor, present and future, gets all of this the same way.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from netns_kit.command import Command
from netns_kit.engine.plan import Lane, Run, Wave, in_order, schedule
from netns_kit.engine.progress import COMMANDS, READS, Reporter, phase_labels
from netns_kit.engine.progress import active as progress_active
from netns_kit.engine.step import Step
from netns_kit.errors import NetnsKitError, result_error
from netns_kit.executors import Executor, quiet_thread
from netns_kit.executors import batch as batches
from netns_kit.result import Result

log = logging.getLogger("netns_kit")

Progress = Callable[[int, int], None]


@attrs.frozen
class RunReport:
    """What a run of many commands did.

    ``results`` has one entry per command given, ``None`` for those that never ran.
    ``error`` is the first failure, already mapped to the most specific error, and
    ``failed`` the index of the command it belongs to (``None`` when the failure
    was not a command's, e.g. a missing program).  ``skipped`` are guarded commands
    whose guard held: they changed nothing.  ``order`` lists the indexes of the
    commands that ran, in the order they ran, so that undoing can go in reverse.
    ``uncertain`` are commands of a batch that failed without saying which line
    failed (``ip`` ran out of file descriptors, say): any of them may have run, so
    whoever undoes must find out what exists.
    """

    results: tuple[Result | None, ...]
    error: NetnsKitError | None = None
    failed: int | None = None
    skipped: frozenset[int] = frozenset()
    order: tuple[int, ...] = ()
    uncertain: frozenset[int] = frozenset()

    @property
    def ok(self) -> bool:
        return self.error is None and all(r is not None and r for r in self.results)

    def ran(self) -> list[int]:
        """Indexes of the commands that ran and changed what they were meant to, in
        the order they ran."""
        return [i for i in self.order if self.results[i] and i not in self.skipped]

    def failures(self) -> list[NetnsKitError]:
        """Every failed command's error (with ``keep_going`` there may be many)."""
        return [result_error(r) for r in self.results if r is not None and not r]

    def check(self) -> RunReport:
        """Raise the first failure, if any; else return the report."""
        if self.error is not None:
            raise self.error
        return self


class Runner:
    """Runs commands and steps through an executor (see the module docstring).

    ``on_progress(done, total)`` is called after every process, so a long build can
    show how far it got.
    """

    def __init__(
        self,
        executor: Executor,
        *,
        on_progress: Progress | None = None,
        progress: Reporter | None = None,
    ) -> None:
        self.executor = executor
        self.on_progress = on_progress
        #: Where phases and counts go (:mod:`netns_kit.engine.progress`); else the active one.
        self.progress = progress

    def reporter(self) -> Reporter | None:
        """This runner's reporter, or the one of an enclosing ``progress.reporting``."""
        return self.progress if self.progress is not None else progress_active()

    # -- one command ------------------------------------------------------------------
    def run(self, command: Command, *, check: bool = True, timeout: float | None = None) -> Result:
        """Run one command (its guard first); raise its error when ``check``."""
        result, _ = self._single(command, timeout)
        if check and not result:
            raise result_error(result, module=command.needs)
        return result

    def _single(self, command: Command, timeout: float | None = None) -> tuple[Result, bool]:
        """The result, and whether the guard held (the command itself did not run)."""
        if command.unless is not None and not getattr(self.executor, "handles_guards", False):
            guard = self.executor.execute(command.unless, timeout)
            if guard:
                log.debug("skipped (guard held): %s", command)
                return guard, True
        log.debug("run: %s", command)
        return self.executor.execute(command, timeout), False

    # -- many -------------------------------------------------------------------------
    def run_steps(self, steps: Sequence[Step]) -> RunReport:
        """Run steps in phase order, in as few processes as the plan allows; stop at
        the first failure."""
        commands = [step.command for step in steps]
        labels = phase_labels([step.phase for step in steps])
        return self._execute(commands, schedule(steps), keep_going=False, labels=labels)

    def run_all(self, commands: Sequence[Command], *, keep_going: bool = False) -> RunReport:
        """Run commands in their order, neighbours batched.  ``keep_going`` tries every
        command (``ip -force -batch``), as teardown and recovery want."""
        todo = list(commands)
        return self._execute(todo, in_order(todo), keep_going=keep_going, labels=COMMANDS)

    def executor_for(self, machine: str | None) -> Executor:
        """The executor of ``machine``: the runner's own, unless that one routes
        each command to its machine's (:class:`~netns_kit.executors.dispatch.RoutingExecutor`)."""
        route = getattr(self.executor, "route", None)
        return self.executor if route is None else route(machine)

    def run_each(self, commands: Sequence[Command]) -> RunReport:
        """Independent commands (reads, probes), each in a lane of its own, overlapped
        as far as the executor allows.  Every one runs, whatever the others gave."""
        todo = list(commands)
        lanes = tuple((Run((i,), None, c.namespace, c.machine),) for i, c in enumerate(todo))
        return self._execute(todo, [Wave(lanes)] if lanes else [], keep_going=True, labels=READS)

    def _execute(
        self,
        commands: list[Command],
        waves: list[Wave],
        *,
        keep_going: bool,
        labels: Sequence[str] | str,
    ) -> RunReport:
        state = _State(len(commands), self.on_progress)
        reporter = self.reporter() if commands else None
        if reporter is not None:
            state.labels = [labels] * len(commands) if isinstance(labels, str) else labels
            state.reporter = reporter
            reporter.plan(state.labels)
        for wave in waves:
            by_machine: dict[str | None, list[Lane]] = {}
            for lane in wave.lanes:
                if lane:
                    by_machine.setdefault(lane[0].machine, []).append(lane)
            if len(by_machine) <= 1:
                for machine, lanes in by_machine.items():
                    self._wave(machine, lanes, commands, state, keep_going)
            else:  # machines build side by side, each through its own executor
                with ThreadPoolExecutor(len(by_machine), initializer=quiet_thread) as pool:
                    for future in [
                        pool.submit(self._wave, machine, lanes, commands, state, keep_going)
                        for machine, lanes in by_machine.items()
                    ]:
                        future.result()
            if state.error is not None and not keep_going:
                break
        return RunReport(
            tuple(state.results),
            state.error,
            state.failed,
            frozenset(state.skipped),
            tuple(state.order),
            frozenset(state.uncertain),
        )

    def _wave(
        self,
        machine: str | None,
        lanes: list[Lane],
        commands: list[Command],
        state: _State,
        keep_going: bool,
    ) -> None:
        """One machine's lanes of a wave, overlapping as far as its executor allows.

        An executor that can take many runs in one go (``execute_many``: a remote
        machine, where each process costs a round trip) gets the lanes in as many
        groups as it has sessions, each group one call."""
        executor = self.executor_for(machine)
        parallel = max(1, int(getattr(executor, "parallel", 1)))
        jobs: list[Callable[[], None]]
        if getattr(executor, "execute_many", None) is not None and len(lanes) > 1:
            grouped, alone = _groupable(lanes, commands)
            jobs = [
                functools.partial(self._group, executor, group, commands, state, keep_going)
                for group in _groups(grouped, parallel)
            ]
            jobs += [
                functools.partial(self._lane, lane, commands, state, keep_going) for lane in alone
            ]
        else:
            jobs = [
                functools.partial(self._lane, lane, commands, state, keep_going) for lane in lanes
            ]
        if parallel > 1 and len(jobs) > 1:
            with ThreadPoolExecutor(min(parallel, len(jobs)), initializer=quiet_thread) as pool:
                for future in [pool.submit(job) for job in jobs]:
                    future.result()
        else:
            for job in jobs:
                job()

    def _group(
        self,
        executor: Executor,
        runs: list[Run],
        commands: list[Command],
        state: _State,
        keep_going: bool,
    ) -> None:
        """Runs of several lanes as one call (``execute_many``), one lane after another;
        without ``keep_going`` the call stops at the first failure."""
        if state.stopped and not keep_going:
            return
        processes = [self._process(run, commands, keep_going) for run in runs]
        try:
            outcomes = executor.execute_many(processes, keep_going=keep_going)  # type: ignore[attr-defined]
        except NetnsKitError as error:
            state.fail(None, error)
            return
        for run, outcome in zip(runs, outcomes, strict=True):
            if outcome is not None:
                self._finish(run, commands, outcome, state, keep_going)

    @staticmethod
    def _process(run: Run, commands: list[Command], keep_going: bool) -> Command:
        given = tuple(commands[i] for i in run.indexes)
        if run.family is None:
            return given[0]
        return batches.Batch(run.family, run.namespace, given, keep_going, run.machine).process()

    def _finish(
        self, run: Run, commands: list[Command], outcome: Result, state: _State, keep_going: bool
    ) -> None:
        given = [commands[i] for i in run.indexes]
        if run.family is None:
            state.done(run.indexes[0], outcome, needs=given[0].needs)
            return
        outcomes = batches.split(given, outcome, force=keep_going)
        unsaid = not outcome and not batches.failures(outcome.stderr)
        if unsaid:  # no `Command failed -:N`: any line may have run
            state.unsure(run.indexes)
        for index, command, result in zip(run.indexes, given, outcomes, strict=False):
            state.done(index, result, needs=command.needs)
        if unsaid and state.error is not None and len(given) > 1:
            state.error.add_note(
                f"the batch of {len(given)} lines failed without saying which line: any of "
                "them may have run (what exists is undone)"
            )

    def _lane(
        self, lane: Sequence[Run], commands: list[Command], state: _State, keep_going: bool
    ) -> None:
        for run in lane:
            if state.stopped and not keep_going:
                return
            try:
                self._run(run, commands, state, keep_going)
            except NetnsKitError as error:  # not a command's failure: a missing tool...
                state.fail(None, error)
                if not keep_going:
                    return

    def _run(self, run: Run, commands: list[Command], state: _State, keep_going: bool) -> None:
        given = [commands[i] for i in run.indexes]
        if run.family is None:
            (index,) = run.indexes
            result, skipped = self._single(given[0])
            state.done(index, result, skipped=skipped, needs=given[0].needs)
            return
        job = batches.Batch(run.family, run.namespace, tuple(given), keep_going, run.machine)
        if log.isEnabledFor(logging.DEBUG):
            for command in given:
                log.debug("batch in %s: %s", run.namespace or "root", command)
        self._finish(run, commands, self.executor.execute_batch(job), state, keep_going)


def _groupable(lanes: list[Lane], commands: list[Command]) -> tuple[list[Lane], list[Lane]]:
    """Lanes whose runs can go in a group (batches, and commands without a guard to
    check first), and the others."""
    grouped: list[Lane] = []
    alone: list[Lane] = []
    for lane in lanes:
        plain = all(run.family or commands[run.indexes[0]].unless is None for run in lane)
        (grouped if plain else alone).append(lane)
    return grouped, alone


def _groups(lanes: list[Lane], count: int) -> list[list[Run]]:
    """Lanes dealt into ``count`` groups of neighbours, each group the lanes' runs in
    order."""
    size = -(-len(lanes) // count) if lanes else 1
    return [
        [run for lane in lanes[i : i + size] for run in lane] for i in range(0, len(lanes), size)
    ]


class _State:
    """The results so far, shared by the lanes of a wave (hence the lock)."""

    def __init__(self, total: int, on_progress: Progress | None) -> None:
        self.results: list[Result | None] = [None] * total
        self.order: list[int] = []
        self.skipped: set[int] = set()
        self.uncertain: set[int] = set()
        self.error: NetnsKitError | None = None
        self.failed: int | None = None
        self.finished = 0
        self.total = total
        self.on_progress = on_progress
        self.reporter: Reporter | None = None
        self.labels: Sequence[str] = ()
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.error is not None

    def done(
        self, index: int, result: Result, *, skipped: bool = False, needs: str | None = None
    ) -> None:
        with self._lock:
            self.results[index] = result
            self.order.append(index)
            if skipped:
                self.skipped.add(index)
            self.finished += 1
            if not result and self.error is None:
                self.error = result_error(result, module=needs)
                self.failed = index
            finished = self.finished
        if self.reporter is not None:
            self.reporter.advance(self.labels[index])
        if self.on_progress is not None:
            self.on_progress(finished, self.total)

    def unsure(self, indexes: Sequence[int]) -> None:
        with self._lock:
            self.uncertain.update(indexes)

    def fail(self, index: int | None, error: NetnsKitError) -> None:
        with self._lock:
            if self.error is None:
                self.error, self.failed = error, index


def act(executor: Executor, commands: Sequence[Command]) -> list[Result]:
    """Run an object's own commands in order (batched where they can be); raise the
    first failure.  What ``Interface.up()`` or ``Namespace.create()`` do."""
    report = Runner(executor).run_all(commands).check()
    return [r for r in report.results if r is not None]


def apply_steps(executor: Executor, steps: Sequence[Step]) -> list[Step]:
    """Run steps outside a lab; return those that ran, in order.  On a failure, what
    ran is undone first, then it raises.

    A guarded step whose guard held did nothing, so it is not among those that ran:
    that is how ``Masquerade.enable()`` leaves alone a rule it found.
    """
    runner = Runner(executor)
    report = runner.run_steps(steps)
    ran = [steps[i] for i in report.ran()]
    if report.error is not None:
        for result in runner.run_all(undo_of(ran), keep_going=True).results:
            if result is not None and not result:
                report.error.add_note(f"undoing also failed: `{' '.join(result.argv)}`")
        raise report.error
    return ran


def undo_of(steps: Sequence[Step]) -> list[Command]:
    """The commands that undo ``steps``, last step first."""
    return [command for step in reversed(steps) for command in step.undo]
