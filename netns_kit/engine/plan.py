"""The planner: steps in, processes out, ordered once, from the steps' own metadata.

Two ways to plan:

* :func:`schedule` takes :class:`~netns_kit.engine.step.Step` values and orders them by
  :class:`~netns_kit.engine.step.Phase`: every step of a phase ends before the next phase
  starts, so each namespace exists before anything uses it, each link before its
  settings, and each link is up before its IPv6 addresses.  Within a phase, each
  namespace's steps form a *lane*: one batch per batch program (``ip``, ``tc``),
  then the commands that cannot be batched, in the order they were given.  Lanes of
  different namespaces are independent and may run at the same time.  Lanes that
  make bridge ports run first: when the far end of a veth comes up
  before its bridge port, the first ARP exchange is lost and the first ping takes a
  second (measured: 0.1 ms against 600-2000 ms).  The port lanes of all namespaces
  share that first wave: each lane enslaves a port before it brings it up.
* :func:`in_order` keeps a plain list of commands in its order (teardown, recovery,
  an object's own action) and only merges neighbours into batches.

A plan is a list of :class:`Wave` values.  A wave's lanes may overlap; the next wave
starts when the whole wave is done.

In a lab spread over machines a lane is one namespace *of one machine*
(``Command.machine``): the same name may be a namespace on each (the host side), and
nothing of two machines ever shares a lane or a batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import attrs

from netns_kit.command import Command
from netns_kit.engine.step import Step
from netns_kit.executors.batch import chunks, fits


@attrs.frozen
class Run:
    """Commands that start as one process: ``indexes`` into the planned list.

    ``family`` is the batch program (``ip``/``tc``) when the run is a batch, ``None``
    for a single command; ``machine`` the machine it runs on.
    """

    indexes: tuple[int, ...]
    family: str | None
    namespace: str | None
    machine: str | None = None


Lane = tuple[Run, ...]


@attrs.frozen
class Wave:
    """Lanes that may run at the same time; each lane's runs run one after another."""

    lanes: tuple[Lane, ...]

    def runs(self) -> list[Run]:
        return [run for lane in self.lanes for run in lane]


def in_order(commands: Sequence[Command]) -> list[Wave]:
    """Consecutive batchable commands of one program and namespace become one batch;
    nothing is reordered and nothing overlaps, except that each machine of a lab
    spread over several keeps its own order, side by side with the others'."""
    per_machine: dict[str | None, list[int]] = {}
    for index, command in enumerate(commands):
        per_machine.setdefault(command.machine, []).append(index)
    if len(per_machine) <= 1:
        runs = _in_order(commands, range(len(commands)))
        return [Wave(((run,),)) for run in _split_runs(runs, commands)]
    lines = [
        _split_runs(_in_order(commands, indexes), commands) for indexes in per_machine.values()
    ]
    return [
        Wave(tuple((run,) for run in side if run is not None))
        for side in itertools.zip_longest(*lines)
    ]


def _split_runs(runs: Sequence[Run], commands: Sequence[Command]) -> list[Run]:
    """Each batch cut into chunks an ``ip`` process survives
    (:func:`~netns_kit.executors.batch.chunks`), one after another."""
    out: list[Run] = []
    for run in runs:
        if run.family is None or len(run.indexes) == 1:
            out.append(run)
            continue
        start = 0
        for size in chunks([commands[i] for i in run.indexes]):
            out.append(attrs.evolve(run, indexes=run.indexes[start : start + size]))
            start += size
    return out


def _chunked(waves: list[Wave], commands: Sequence[Command]) -> list[Wave]:
    return [
        Wave(tuple(tuple(_split_runs(lane, commands)) for lane in wave.lanes)) for wave in waves
    ]


def _in_order(commands: Sequence[Command], indexes: Iterable[int]) -> list[Run]:
    runs: list[Run] = []
    for index in indexes:
        command = commands[index]
        last = runs[-1] if runs else None
        family = command.family if fits(command) else None
        if (
            last is not None
            and family is not None
            and last.family == family
            and last.namespace == command.namespace
            and last.machine == command.machine
        ):
            runs[-1] = attrs.evolve(last, indexes=(*last.indexes, index))
        else:
            runs.append(Run((index,), family, command.namespace, command.machine))
    return runs


def _lane(steps: Sequence[tuple[int, Step]]) -> Lane:
    """One namespace's steps of one phase: a batch per program, then the singles."""
    batches: dict[str, list[int]] = {}
    singles: list[Run] = []
    for index, step in steps:
        command = step.command
        if fits(command):
            assert command.family is not None
            batches.setdefault(command.family, []).append(index)
        else:
            singles.append(Run((index,), None, command.namespace, command.machine))
    first = steps[0][1].command
    where, machine = first.namespace, first.machine
    return (*(Run(tuple(ix), family, where, machine) for family, ix in batches.items()), *singles)


def _phase_waves(steps: Sequence[tuple[int, Step]]) -> list[Wave]:
    """A phase's lanes: the lanes that make bridge ports in one wave, then the others.

    Port lanes of different namespaces (every switch of a tree) may overlap: each
    lane enslaves each of its ports before it brings that end up (the objects give
    a port's step before that end's settings, and a lane keeps the steps' order),
    and a veth has carrier only once both its ends are up, so no frame crosses a
    port that is not yet a port.  (One
    wave per switch namespace made a tree of N hosts N/4 waves, one after another.)
    """
    by_namespace: dict[tuple[str | None, str | None], list[tuple[int, Step]]] = {}
    for item in steps:
        command = item[1].command
        by_namespace.setdefault((command.machine, command.namespace), []).append(item)
    ports = [key for key, items in by_namespace.items() if any(s.port for _, s in items)]
    waves = []
    if ports:
        waves.append(Wave(tuple(_lane(by_namespace[key]) for key in ports)))
    rest = tuple(_lane(items) for key, items in by_namespace.items() if key not in ports)
    if rest:
        waves.append(Wave(rest))
    return waves


def schedule(steps: Sequence[Step]) -> list[Wave]:
    """Order ``steps`` into waves (see the module docstring), in few processes."""
    phases = sorted({step.phase for step in steps})
    waves: list[Wave] = []
    for phase in phases:
        waves += _phase_waves([(i, s) for i, s in enumerate(steps) if s.phase == phase])
    return _chunked(_merged(waves), [step.command for step in steps])


def _merged(waves: list[Wave]) -> list[Wave]:
    """Fewer processes: a batch joins the same namespace's batch of a neighbouring
    wave when that wave has no other lane.

    Pulling a run forward into a wave whose only lane is its own namespace's, or
    pushing it back into the next wave when that wave is only its own namespace's,
    keeps every dependency: whatever waited for either wave still waits for both.
    This is what makes the root namespace's ``netns add`` and veth lines one batch,
    and a bridge's creation one batch with its ports.
    """
    changed = True
    while changed:
        changed = False
        for i in range(len(waves) - 1):
            here, there = waves[i], waves[i + 1]
            if len(here.lanes) == 1:
                merged = _pull(here, there)
            elif len(there.lanes) == 1:
                merged = _push(here, there)
            else:
                continue
            if merged is not None:
                waves[i : i + 2] = [w for w in merged if w.lanes]
                changed = True
                break
    return waves


def _joinable(first: Run, second: Run) -> bool:
    return (
        first.family is not None
        and first.family == second.family
        and first.namespace == second.namespace
        and first.machine == second.machine
    )


def _pull(here: Wave, there: Wave) -> tuple[Wave, Wave] | None:
    """Move the next wave's first run of ``here``'s only namespace into ``here``."""
    (lane,) = here.lanes
    for k, other in enumerate(there.lanes):
        if other and _joinable(lane[-1], other[0]):
            joined = attrs.evolve(lane[-1], indexes=lane[-1].indexes + other[0].indexes)
            rest = (*there.lanes[:k], other[1:], *there.lanes[k + 1 :])
            return Wave(((*lane[:-1], joined),)), Wave(tuple(x for x in rest if x))
    return None


def _push(here: Wave, there: Wave) -> tuple[Wave, Wave] | None:
    """Move ``here``'s last run of the next wave's only namespace into the next wave."""
    (lane,) = there.lanes
    for k, other in enumerate(here.lanes):
        if other and _joinable(other[-1], lane[0]):
            joined = attrs.evolve(other[-1], indexes=other[-1].indexes + lane[0].indexes)
            rest = tuple((*here.lanes[:k], other[:-1], *here.lanes[k + 1 :]))
            return Wave(tuple(x for x in rest if x)), Wave(((joined, *lane[1:]),))
    return None
