"""Whether a lab's owner process still runs: its PID, and its start time.

A lab is judged by its owner, not by its lock.  The lock is inherited by every
short-lived program the owner starts (see :mod:`netns_kit.record.registry`), so after a
``kill -9`` an orphaned ``ip -batch`` keeps it held for a while: a held lock alone does
not mean a live lab.  The owner's PID does, if it is still the same process: its start
time (field 22 of ``/proc/PID/stat``, clock ticks after boot) tells it from a process
that got the PID later, and a zombie (killed, not yet reaped) is dead.  A PID is
only meaningful in its own PID namespace, which the record notes too.
"""

from __future__ import annotations

import os


def pid_namespace() -> str | None:
    """This process's PID namespace, as ``/proc/self/ns/pid`` names it; None if unknown."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def started(pid: int) -> int | None:
    """The start time of process ``pid`` (clock ticks after boot), or None if unknown."""
    found = _stat(pid)
    return None if found is None else found[1]


def alive(pid: int, started_at: int | None = None) -> bool:
    """Whether ``pid`` runs and is not a zombie; and, when ``started_at`` is given,
    whether it is still the process that started then (not one that reused the PID)."""
    found = _stat(pid)
    if found is None:
        return _signalable(pid)  # no /proc entry to read (hidepid): ask the kernel
    state, ticks = found
    if state in ("Z", "X"):
        return False
    return started_at is None or ticks == started_at


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time) from ``/proc/PID/stat``; None when there is no such entry."""
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and ")"
    return fields[0], int(fields[19])


def _signalable(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's: alive
        return True
    return True
