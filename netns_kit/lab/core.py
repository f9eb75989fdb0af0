"""A lab's life cycle: open, run steps, batch, keep, close, and nothing left behind.

:class:`LabCore` is the part of :class:`~netns_kit.Lab` that every builder stands on.
A builder checks its arguments, asks the objects for their steps
(:mod:`netns_kit.engine.step`) and hands them to :meth:`LabCore._run`, which gives them
to the lab's :class:`~netns_kit.record.journal.Journal`: it writes them ahead to the
lab's record, has the runner run them and keeps their undo.  Closing replays the undo
in reverse: on a normal exit, on an exception, on Ctrl-C, on SIGTERM, at interpreter
exit, and after a crash through :func:`~netns_kit.recover`.

Teardown does no avoidable kernel work: what lives in a namespace that is being
deleted goes with it, so only the namespaces (and whatever lives in namespaces that
survive, such as the root side of a veth) are deleted explicitly.  A rootless lab
(:mod:`netns_kit.executors.sandbox`) does none at all: its sandbox takes everything
with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

from netns_kit import validate
from netns_kit.engine.progress import Hook, Reporter, notebook_hook
from netns_kit.engine.runner import Progress, Runner
from netns_kit.engine.step import Step
from netns_kit.errors import LabBusyError, NetnsKitError, TeardownError
from netns_kit.executors import Executor, Process, default_executor
from netns_kit.executors.sandbox import SandboxExecutor, lab_sandbox
from netns_kit.lab.holdings import Holdings
from netns_kit.lab.machines import spread
from netns_kit.lab.placement import Placement
from netns_kit.lab.ready import wait_settled
from netns_kit.objects.namespace import Namespace
from netns_kit.record.journal import Journal, shielded
from netns_kit.record.registry import Record, Registry, tag_for, undo_record

log = logging.getLogger("netns_kit")


class LabCore:
    """A lab's life cycle and its one way of running steps (see the module).

    :class:`~netns_kit.Lab` adds the builders (:mod:`netns_kit.lab.builders`) and
    the views (:mod:`netns_kit.lab.views`); its docstring has the arguments.
    """

    @validate.renamed_keywords(hosts="machines")
    def __init__(
        self,
        name: str,
        *,
        executor: Executor | None = None,
        isolated: bool = False,
        state_dir: str | os.PathLike[str] | None = None,
        ipv6_link_local: bool = False,
        on_progress: Progress | None = None,
        progress: Hook | None = None,
        rootless: bool | None = None,
        machines: Mapping[str, Executor] | None = None,
        underlay: Mapping[str, str] | None = None,
    ) -> None:
        self.name = validate.lab_name(name)
        self.isolated = bool(isolated)
        self.ipv6_link_local = bool(ipv6_link_local)
        self.machines = spread(self.name, machines, underlay, executor, rootless)
        self.sandbox = lab_sandbox(rootless, executor, self.name) if machines is None else None
        self.executor = executor if executor or not self.sandbox else SandboxExecutor(self.sandbox)
        if self.machines is not None:
            self.executor = self.machines.executor
        self.tag = tag_for(self.name)
        #: The lab's host-side namespace: ``<name>-host`` when isolated, else ``None``
        #: (the root namespace).
        self.host_side: str | None = f"{self.name}-host" if self.isolated else None
        self.registry = Registry(state_dir)
        self.processes: list[Process] = []
        #: Running captures (netns_kit.capture), stopped before anything is torn down.
        self.captures: list[Any] = []
        #: Called after every build (a builder, a batch): what follows the lab as it
        #: grows, such as the pytest plugin's captures of every namespace.
        self.after_build: list[Callable[[], None]] = []
        self.held = Holdings(self.name, self.host_side)
        self.placement = Placement(
            self.tag, self.host_side, self.executor, self.held, self.machines
        )
        hook = progress if progress is not None else notebook_hook()
        self._progress = None if hook is None else Reporter(hook, task=f"lab {self.name}")
        self.journal = Journal(self.registry, self._runner(on_progress))
        self._on_progress = on_progress
        self._queue: list[Step] | None = None
        self._state = "new"

    def __repr__(self) -> str:
        return f"<Lab {self.name!r} {self._state}, {len(self.resources)} resources>"

    @property
    def ex(self) -> Executor:
        return self.executor or default_executor()

    @property
    def rootless(self) -> bool:
        return self.sandbox is not None

    @property
    def state(self) -> str:
        """new, open, closed or kept."""
        return self._state

    @property
    def batching(self) -> bool:
        """Inside :meth:`batch`: builder calls are queued, nothing has run yet."""
        return self._queue is not None

    @property
    def resources(self) -> list[Any]:
        """What the lab made, in the order it made it."""
        return self.held.resources

    # -- life cycle ---------------------------------------------------------------
    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(error)

    def open(self) -> Self:
        """Take the lab's name, write its record, and make the host namespace."""
        if self._state == "open":
            return self
        if self._state != "new":
            raise NetnsKitError(f"lab {self.name!r} is {self._state}; make a new Lab")
        self.journal.claim(self.name, self.close)
        # the executor is the one in force when the lab opens, for its whole life
        self.journal.runner = self._runner(self._on_progress)
        try:
            if self.machines is not None:  # every machine reached before anything
                self.machines.check()
            holder = self.sandbox.start() if self.sandbox is not None else None
            leftover = self.registry.read(self.name)
            if leftover is not None and leftover.state == "kept":
                raise LabBusyError(
                    f"lab {self.name!r} is kept up (netns-kit up): take it down first "
                    f"with `netns-kit down {self.name}` or netns_kit.recover({self.name!r})"
                )
            if leftover is not None:  # its owner is dead: we hold the lock
                log.warning("lab %r: cleaning up what a dead process left", self.name)
                hosts = None if self.machines is None else self.machines.executor.executors
                undo_record(leftover, self.ex, hosts)
            record = Record(self.name, os.getpid(), self.isolated, self.host_side, sandbox=holder)
            record.machines = self.machines.describe() if self.machines is not None else {}
            with shielded():  # a Ctrl-C here would leave a lock and no record
                self.journal.begin(record)
                self._state = "open"
            if self.host_side is not None:
                side = Namespace(self.host_side).create_steps(self.tag)
                self._run(self.placement.everywhere(side))
            self._opened()
        except BaseException:
            self.close()
            raise
        return self

    def close(self, error: BaseException | None = None) -> None:
        """Tear everything down, in reverse.  Safe to call twice.

        Undo failures are collected: if ``error`` (the exception that ended a ``with``
        block) is given they are attached to it as notes, otherwise they are raised
        together as a :class:`TeardownError`.
        """
        if self._state != "open":
            if self.sandbox is not None and self._state != "kept":
                self.sandbox.stop()  # an open that failed
            self.journal.release()
            return
        problems: list[BaseException] = []
        with shielded():
            try:
                for capture in reversed(self.captures):
                    try:
                        capture.close()
                    except Exception as stopping:
                        problems.append(stopping)
                self.captures.clear()
                for process in reversed(self.processes):
                    try:
                        process.stop()
                    except Exception as stopping:
                        problems.append(stopping)
                self.processes.clear()
                problems += self._stop_services()
                if self.sandbox is None:
                    problems += self.journal.teardown()
                else:  # everything goes with the sandbox
                    self.sandbox.stop()
                    self.journal.forget_undo()
            finally:
                if self._progress is not None:
                    self._progress.finish()
                self._state = "closed"
                if not problems:
                    self.registry.remove(self.name)
                self.journal.release()
                if self.machines is not None and self.machines.owned:
                    self.machines.close()
        if problems:
            failure = TeardownError(self.name, problems)
            if error is None:
                raise failure
            error.add_note(str(failure))

    def keep(self) -> None:
        """Leave the lab up after this process ends (``netns-kit up``).

        The record stays, marked ``kept``; ``netns_kit.recover(name)`` or
        ``netns-kit down NAME`` removes it later.
        """
        if self._state != "open":
            raise NetnsKitError(f"lab {self.name!r} is not open")
        if self.sandbox is not None:
            self.sandbox.keep()
        self.journal.set_state("kept")
        self._state = "kept"
        self.journal.release()

    def teardown_commands(self) -> list[Any]:
        """What closing will run, in order: the undo log, reversed, minus the moot."""
        return self.journal.teardown_commands()

    def _stop_services(self) -> list[BaseException]:
        """Stop what runs on top of the lab before it is torn down (routing daemons, in
        :mod:`netns_kit.daemons.builders`); what would not stop is returned."""
        return []

    def _batched(self) -> None:
        """At the end of a ``batch()`` block, once its steps ran (routing converges)."""

    def _opened(self) -> None:
        """What a lab does once it is open, before :meth:`open` returns (nothing here;
        a lab made from a topology builds it)."""

    # -- running steps ------------------------------------------------------------
    def _runner(self, on_progress: Progress | None) -> Runner:
        return Runner(self.ex, on_progress=on_progress, progress=self._progress)

    def _run(self, steps: list[Step], machine: str | None = None) -> None:
        """Run steps now, or queue them inside ``batch()``.  Either way the undo log
        ends up holding exactly the steps that ran.  ``machine``: where they run."""
        steps = self.placement.placed(steps, machine)
        if self._state == "new":
            self.open()
        elif self._state != "open":
            raise NetnsKitError(f"lab {self.name!r} is {self._state}; make a new Lab")
        if self._queue is not None:
            self._queue.extend(steps)
        else:
            self.journal.apply(steps, rollback=True)
            self._built()

    def _built(self) -> None:
        for hook in self.after_build:
            hook()

    @contextlib.contextmanager
    def batch(self) -> Iterator[Self]:
        """Queue builder calls and run them at the end of the block, in few processes.

        Inside the block builders return their objects at once but nothing runs yet.
        At the end the planner orders the steps by phase (namespaces, links, each
        namespace's settings, IPv6 addresses, firewall rules) and runs them as a
        handful of ``ip -batch`` processes.  If the block raises, nothing runs.
        """
        if self._queue is not None:  # nested: the outer block flushes
            yield self
            return
        if self._state == "new":
            self.open()
        self._queue = []
        try:
            yield self
            queued = self._queue
        finally:
            self._queue = None
        self.journal.refuse_taken(queued)
        try:
            self.journal.apply(queued, rollback=False)
            self._settle()
            self._batched()
            self._built()
        finally:
            if self._progress is not None:
                self._progress.finish()

    def _settle(self) -> None:
        """Wait for the spanning-tree bridges that got ports (see :mod:`netns_kit.lab.ready`)."""
        for executor, bridges in self.placement.by_machine(self.held.take_unsettled()):
            wait_settled(self.journal.runner if executor is None else Runner(executor), bridges)
