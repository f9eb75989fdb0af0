"""Has the kernel this qdisc?  Asked once per executor, before a link is shaped.

A kernel without ``sch_netem`` (as on the machine this was built on) refuses a netem
qdisc only when ``tc`` runs; asked first, in a throwaway ``unshare --net`` namespace,
the lab refuses the builder before anything is built, with an error that names the
module.  Kept apart from :mod:`netns_kit.objects.shaping`, whose values and commands
are pure, because this one runs a process.
"""

from __future__ import annotations

import weakref

from netns_kit.command import Command
from netns_kit.engine.runner import Runner
from netns_kit.errors import (
    CommandTimeoutError,
    KernelFeatureMissingError,
    ToolMissingError,
    result_error,
)
from netns_kit.executors import Executor

_PROBES: dict[str, tuple[str, ...]] = {
    "tbf": ("tbf", "rate", "1mbit", "burst", "3028", "latency", "50ms"),
    "netem": ("netem", "delay", "1ms"),
}


def probe_command(kind: str) -> Command:
    """A qdisc of ``kind`` on ``lo`` of a namespace that ends with the command."""
    argv = ("unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", *_PROBES[kind])
    return Command(argv, read=True, needs=f"sch_{kind}")


# -- the kernel: has it the qdisc? -------------------------------------------------------
_present: weakref.WeakKeyDictionary[Executor, set[str]] = weakref.WeakKeyDictionary()


def require(executor: Executor, kind: str) -> None:
    """Raise :class:`KernelFeatureMissingError` when the kernel lacks the ``kind`` qdisc.

    Asked once per executor: a kernel that has it keeps it.  A probe that cannot run
    (no ``unshare``, no right to make a namespace) proves nothing, and the shaping's
    own ``tc`` will say what is wrong; its failure is mapped to the same error.
    """
    try:
        present = _present.setdefault(executor, set())
    except TypeError:  # an executor that cannot be weakly referenced: ask every time
        present = set()
    if kind in present:
        return
    command = probe_command(kind)
    try:
        result = Runner(executor).run(command, check=False, timeout=30)
    except (ToolMissingError, CommandTimeoutError):
        return
    if result:
        present.add(kind)
        return
    error = result_error(result, module=command.needs)
    if isinstance(error, KernelFeatureMissingError):
        raise error
