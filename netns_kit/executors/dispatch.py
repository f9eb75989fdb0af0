"""One executor for a lab spread over machines: each command to its machine's.

A lab on several machines (``Lab(..., machines={"a": ..., "b": ...})``) places every
step on a machine (``Command.machine``, set by :func:`netns_kit.engine.step.on_machine`).  The
runner sees one executor, a :class:`RoutingExecutor`; it asks it for each machine's
own (:meth:`RoutingExecutor.route`) to run that machine's lanes, side by side with
the other machines', each as far as its own executor overlaps them.  A command with
no machine goes to the first machine, the lab's default.

The lab's record notes how to reach each machine again (:func:`describe`): an
:class:`~netns_kit.SSHExecutor`'s target and options, or "this machine" for a
:class:`~netns_kit.ShellExecutor`, so that :func:`~netns_kit.recover` can clean
every machine after a crash without being told (:func:`rebuild`).  Any other
executor cannot be made again from a record: recovery is then given the machines
(``recover(name, machines={...})``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from netns_kit.command import Command
from netns_kit.errors import NetnsKitError
from netns_kit.executors import Executor, Process, ShellExecutor, detached, interact, quiet_thread
from netns_kit.executors.base import FinishedProcess
from netns_kit.executors.batch import Batch
from netns_kit.executors.ssh import SSHExecutor
from netns_kit.result import Result


class RoutingExecutor:
    """Sends each command, batch and background program to its machine's executor."""

    def __init__(self, executors: Mapping[str, Executor]) -> None:
        if not executors:
            raise NetnsKitError("a RoutingExecutor needs at least one machine")
        self.executors = dict(executors)
        self.default = next(iter(self.executors))

    def __repr__(self) -> str:
        return f"RoutingExecutor({', '.join(self.executors)})"

    @property
    def parallel(self) -> int:
        """What one machine overlaps (the runner asks each machine's own executor)."""
        return max(int(getattr(ex, "parallel", 1)) for ex in self.executors.values())

    def route(self, machine: str | None) -> Executor:
        """The executor of ``machine`` (``None``: the first)."""
        try:
            return self.executors[self.default if machine is None else machine]
        except KeyError:
            raise NetnsKitError(f"no machine {machine!r} in this lab") from None

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        return self.route(command.machine).execute(command, timeout)

    def execute_batch(self, batch: Batch) -> Result:
        return self.route(batch.machine).execute_batch(batch)

    def start(self, command: Command) -> Process:
        return self.route(command.machine).start(command)

    def interact(self, command: Command, *, tty: bool = False) -> int:
        return interact(self.route(command.machine), command, tty=tty)

    def start_detached(self, commands: Sequence[Command], logs: Sequence[str]) -> list[Process]:
        """Each machine's programs through its own executor, the machines side by side
        (one launcher a machine where it has ``start_detached``); in the given order.
        A machine that fails (unreachable) does not lose the others' programs: its own
        come back as never started, with the error's words."""
        groups: dict[str | None, list[int]] = {}
        for index, command in enumerate(commands):
            groups.setdefault(command.machine, []).append(index)

        def one(machine: str | None) -> list[Process]:
            mine = [commands[i] for i in groups[machine]]
            try:
                return detached.start_detached(
                    self.route(machine), mine, [logs[i] for i in groups[machine]]
                )
            except NetnsKitError as error:
                said = Result((), 1, "", str(error))
                return [Process(c, FinishedProcess(said, pid=0)) for c in mine]

        with ThreadPoolExecutor(max(1, len(groups)), initializer=quiet_thread) as pool:
            done = dict(zip(groups, pool.map(one, groups), strict=True))
        out: list[Process | None] = [None] * len(commands)
        for machine, indexes in groups.items():
            for index, process in zip(indexes, done[machine], strict=True):
                out[index] = process
        return [p for p in out if p is not None]


def describe(executor: Executor) -> dict[str, Any]:
    """How a lab's record names a machine's executor (see the module docstring)."""
    if isinstance(executor, SSHExecutor):
        return {"ssh": executor.describe()}
    if isinstance(executor, ShellExecutor):
        return {"local": {"sudo": executor.sudo}}
    return {"other": repr(executor)}


def rebuild(description: Mapping[str, Any]) -> Executor | None:
    """The executor a record describes, or ``None`` when it cannot be made again."""
    if "ssh" in description:
        return SSHExecutor.from_description(description["ssh"])
    if "local" in description:
        return ShellExecutor(sudo=bool(description["local"].get("sudo", False)))
    return None
