"""Labs known from their record: kept up by ``netns-kit up``, or left by a dead process.

What the command line shows of such a lab (its status, its live state, its picture)
is library code, so the Python API has it too.  A rootless lab is entered through its
sandbox (:meth:`KeptLab.executor`): its namespaces exist nowhere else.
"""

from __future__ import annotations

from typing import Any

import attrs

from netns_kit.check import checker
from netns_kit.check.neighbours import LeaseKeeper
from netns_kit.check.result import Reachability
from netns_kit.errors import NetnsKitError
from netns_kit.executors import Executor
from netns_kit.executors.sandbox import SandboxExecutor, holder_alive
from netns_kit.readback import reader as state
from netns_kit.readback.reader import Snapshot
from netns_kit.readback.snapshot import snapshot
from netns_kit.record.registry import Record, Registry, tag_for
from netns_kit.spec import Topology


@attrs.frozen
class KeptLab:
    """A lab read from the state directory."""

    record: Record
    registry: Registry

    @property
    def name(self) -> str:
        return self.record.name

    def namespaces(self) -> list[str]:
        """The namespaces it made, its host side first; ``own`` leaves the host out."""
        return self.record.namespaces()

    def own_namespaces(self) -> list[str]:
        return [n for n in self.record.namespaces() if n != self.record.host_side]

    @property
    def rootless(self) -> bool:
        return self.record.sandbox is not None

    def executor(self, machine: Executor) -> Executor:
        """What reaches the lab: its sandbox for a rootless lab (SandboxGoneError when
        that ended), else ``machine``, the executor of the machine's namespaces."""
        if self.record.sandbox is None:
            return machine
        return SandboxExecutor.attach(self.record.sandbox)

    def status(self, present: set[str]) -> str:
        """up, open, building, checking, dying (its process died; programs it started
        still finish its last batch), stale (its process died) or partial (pieces are
        missing).

        ``present`` is the set of namespaces the machine has now.  A lab is judged by
        its owner process, not by its lock alone (:meth:`Registry.condition`).  A
        rootless lab is up while its sandbox runs, and stale once that is gone.
        """
        condition = self.registry.condition(self.record)
        if condition == "live":
            if self.record.state == "checking":  # a check's record (netns_kit.check.neighbours)
                return "checking"
            return "open" if self.record.state == "up" else "building"
        if self.record.state != "kept":
            return condition
        if self.record.sandbox is not None:
            return "up" if holder_alive(self.record.sandbox) else "stale"
        return "partial" if any(n not in present for n in self.namespaces()) else "up"

    def to_dict(self, present: set[str]) -> dict[str, Any]:
        """What ``netns-kit ls --json`` prints of it, keyed as this class names things:
        ``name``, ``state`` (:meth:`status`), ``isolated``, ``rootless``, ``host_side``
        (its host side's namespace, or null), ``namespaces`` (:meth:`own_namespaces`)
        and ``pid`` (the process that holds or held it).  ``show --json`` prints the
        same keys, with ``namespaces`` from :meth:`Snapshot.to_dict
        <netns_kit.readback.reader.Snapshot.to_dict>` (each namespace read live) and ``missing``."""
        return {
            "name": self.name,
            "state": self.status(present),
            "isolated": self.record.isolated,
            "rootless": self.rootless,
            "host_side": self.record.host_side,
            "namespaces": self.own_namespaces(),
            "pid": self.record.pid,
        }

    def snapshot(self, executor: Executor) -> tuple[Snapshot, list[str]]:
        """Its namespaces read live (the root side too, when not isolated, with only
        the lab's own tagged links), and the namespaces that are missing."""
        wanted = self.namespaces()
        present = set(state.namespace_names(executor))
        missing = [n for n in wanted if n not in present]
        names: list[str | None] = [n for n in wanted if n in present]
        if not self.record.isolated:
            names.insert(0, None)
        snap = snapshot(executor, names)
        if not self.record.isolated:
            tag = tag_for(self.name)
            snap = Snapshot(tuple(state.only_tagged(s, tag) if s.name is None else s for s in snap))
        return snap, missing

    def check(
        self,
        executor: Executor,
        *,
        sources: Any = None,
        targets: Any = None,
        timeout: float = 1.0,
        count: int = 1,
    ) -> Reachability:
        """Its reachability matrix (see :meth:`Lab.reachability <netns_kit.Lab.reachability>`).

        A neighbour-limit raise is recorded in a record of its own, ``<name>:check``,
        held while the check runs (``netns-kit cleanup`` undoes it after a crash).
        """
        wanted = self.namespaces()
        present = set(state.namespace_names(executor))
        missing = [n for n in wanted if n not in present]
        if missing:
            raise NetnsKitError(
                f"lab {self.name!r} is missing namespaces: {', '.join(missing)}; "
                f"see `netns-kit show {self.name}`"
            )
        read: list[str | None] = list(wanted)
        if not self.record.isolated:
            read.insert(0, None)
        return checker.run(
            executor,
            read=read,
            namespaces=self.own_namespaces(),
            sources=sources,
            targets=targets,
            timeout=timeout,
            count=count,
            keeper=LeaseKeeper(self.registry, self.name, executor),
            lab=self.name,
        )

    def topology(self, executor: Executor) -> Topology:
        """Its topology as the kernel holds it now."""
        snap, _ = self.snapshot(executor)
        record = self.record
        from netns_kit.topology.observed import topology_of  # files load on first use

        return topology_of(
            snap, name=record.name, isolated=record.isolated, host_side=record.host_side
        )


def kept_labs(registry: Registry) -> list[KeptLab]:
    """Every lab the state directory has a record of."""
    return [KeptLab(record, registry) for record in registry.records()]
