"""Steps: the one currency between the objects and the rest of the library.

A :class:`Step` is a change with everything the layers below need to know about it,
said once by the object that built it: the command, the commands that undo it, the
resource it creates (as the write-ahead record will name it), when it may run
(:class:`Phase`) and where it lives.  The journal records and undoes steps, the
planner orders them, the runner runs them; none of them reads argv to find out what
a step is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from netns_kit.command import Command


class Phase(enum.IntEnum):
    """When a step may run.  Every step of a phase ends before the next phase starts,
    so a plan keeps these dependencies whatever order the builders were called in."""

    #: ``ip netns add``, in the root namespace.
    NAMESPACE = 0
    #: A new namespace's own kernel settings that must hold before its links exist
    #: (``accept_dad`` for the links made from now on, a switch's br_netfilter
    #: settings), each in its namespace's lane: an executor that enters namespaces
    #: writes them to ``/proc/sys`` itself, without a process.
    SETTINGS = 1
    #: Links made: veth pairs from the root namespace (both ends made in place),
    #: bridges in the namespace they live in.
    CREATE = 2
    #: Each namespace's own settings: tags, MTU, bridge ports, IPv4 addresses, links
    #: up, IPv4 routes, kernel settings.
    CONFIGURE = 3
    #: IPv6 addresses and routes, once every link is up.  An IPv6 address added
    #: before its link has carrier stays unusable for about a second.
    ADDRESS6 = 4
    #: Firewall rules and the like, once everything they name exists.
    FILTER = 5


def _argv(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"expected an argv list, not {type(value).__name__}")
    return tuple(str(word) for word in value)


@attrs.frozen
class Entry:
    """One resource in a lab's write-ahead record, as :func:`~netns_kit.recover` reads it.

    ``kind`` is ``namespace``, ``link``, ``route``, ``sysctl`` or ``iptables``.
    ``undo`` is the argv that removes it; ``check`` an argv that succeeds while it is
    still there (an ``iptables -C``); ``value`` the value a sysctl was set to (it is
    put back only while it still holds that value), or a VXLAN link's VNI, and
    ``previous`` what a sysctl held.  ``machine`` is the machine it is on, by the lab's
    name for it (``None``: the lab's only machine).
    """

    kind: str
    name: str
    namespace: str | None = None
    undo: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    check: tuple[str, ...] | None = attrs.field(default=None, converter=_argv)
    value: str | None = None
    previous: str | None = None
    machine: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.machine is not None:
            out["machine"] = self.machine
        if self.kind != "namespace":
            out["namespace"] = self.namespace
        for key in ("undo", "check"):
            argv = getattr(self, key)
            if argv is not None:
                out[key] = list(argv)
        for key in ("value", "previous"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        names = {f.name for f in attrs.fields(cls)}
        given = {k: v for k, v in data.items() if k in names}
        if "host" in data and "machine" not in data:  # a record written by 0.2
            given["machine"] = data["host"]
        return cls(**given)


@attrs.frozen
class Step:
    """One change and its inverse.

    ``lives_in`` lists where the change lives: when every one of those namespaces is
    deleted by the same teardown, the undo is skipped (the kernel removes it with the
    namespace).  ``None`` stands for the root namespace, which is never deleted; an
    empty set means "never skip" (the namespace itself).  By default a step lives
    where its command acts.  ``port`` marks a step that makes a link a bridge port:
    the planner finishes those before the far ends of the links come up, or the
    first ARP exchange is lost and the first ping takes a second.
    """

    command: Command
    undo: tuple[Command, ...] = ()
    entry: Entry | None = None
    phase: Phase = Phase.CONFIGURE
    lives_in: frozenset[str | None] = attrs.field()
    port: bool = False

    @lives_in.default
    def _where_it_acts(self) -> frozenset[str | None]:
        return frozenset({self.command.namespace})

    @property
    def deletes_namespace(self) -> str | None:
        """The namespace this step's undo deletes, if it made one."""
        entry = self.entry
        return entry.name if entry is not None and entry.kind == "namespace" else None


def on_machine(steps: Sequence[Step], machine: str) -> list[Step]:
    """The same steps, placed on ``machine`` of a lab spread over machines: their
    commands, undo and guards run there, and the record says so.  Objects build
    steps without knowing where they run; the lab's builders place them."""
    return [
        attrs.evolve(
            step,
            command=_placed(step.command, machine),
            undo=tuple(_placed(command, machine) for command in step.undo),
            entry=None if step.entry is None else attrs.evolve(step.entry, machine=machine),
        )
        for step in steps
    ]


def _placed(command: Command, machine: str) -> Command:
    guard = None if command.unless is None else _placed(command.unless, machine)
    return attrs.evolve(command, machine=machine, unless=guard)
