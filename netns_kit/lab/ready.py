"""Ready means ready: a build returns once its spanning-tree bridges have converged.

A bridge with STP starts each new port in ``listening``, then ``learning``, and only
then (twice ``forward_delay``, 4 s with :data:`~netns_kit.objects.link.STP_TIMERS`) in
``forwarding``, or ``blocking`` where the port would close a loop.  A lab waits for
that before a builder (or a batch) returns, so that the first ping after a build
goes through.  Measured on a ring of three bridges: 4.3-5.2 s.

Bridges without STP need no wait: their ports forward as soon as they have carrier,
which takes milliseconds once the veth ends have distinct interface indexes
(:meth:`netns_kit.lab.holdings.Holdings.ends`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence

from netns_kit.command import Command, in_namespace
from netns_kit.engine.progress import SPANNING_TREE
from netns_kit.engine.runner import Runner
from netns_kit.errors import NetnsKitError
from netns_kit.objects.link import Bridge

#: How long a lab waits for spanning tree: several times the 4-5 s it takes, and
#: more than max_age (6 s), after which a lost root is noticed and elected anew.
STP_TIMEOUT = 30.0
#: Port states that will not change by themselves any more.
SETTLED = frozenset({"forwarding", "blocking"})


def ports_command(namespace: str | None) -> Command:
    """Every bridge port of a namespace with its state (``bridge -j link show``)."""
    return in_namespace(("bridge", "-j", "link", "show"), namespace, read=True, mounts=False)


def unsettled_ports(stdout: str, bridges: set[str]) -> list[str]:
    """``port (state)`` for each port of ``bridges`` that is not settled yet."""
    try:
        entries = json.loads(stdout) if stdout.strip() else []
    except ValueError:
        return ["(unreadable `bridge -j link show`)"]
    return [
        f"{entry.get('ifname')} ({entry.get('state')})"
        for entry in entries
        if isinstance(entry, dict)
        and entry.get("master") in bridges
        and entry.get("state") not in SETTLED
    ]


def wait_settled(
    runner: Runner,
    bridges: Sequence[Bridge],
    *,
    timeout: float = STP_TIMEOUT,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait until every port of ``bridges`` is forwarding or blocking.

    A namespace is read once a round (one ``bridge`` process); a namespace whose
    ports have settled is not read again.  Raises :class:`NetnsKitError` naming the
    ports still moving after ``timeout`` seconds.
    """
    pending: dict[str | None, set[str]] = {}
    for bridge in bridges:
        pending.setdefault(bridge.namespace, set()).add(bridge.name)
    deadline = clock() + timeout
    moving: list[str] = []
    reporter = runner.reporter()
    total = len(pending)
    while pending:
        if reporter is not None:
            reporter.waiting(SPANNING_TREE, total - len(pending), total)
        for namespace, names in list(pending.items()):
            result = runner.run(ports_command(namespace), check=False)
            moving = unsettled_ports(result.stdout, names) if result else ["(no answer)"]
            if not moving:
                del pending[namespace]
        if not pending:
            if reporter is not None:
                reporter.waiting(SPANNING_TREE, total, total)
            return
        if clock() >= deadline:
            where = ", ".join(repr(ns or "the root namespace") for ns in pending)
            raise NetnsKitError(
                f"spanning tree did not settle within {timeout:g} s in {where}: "
                f"{', '.join(moving[:5])}"
            )
        sleep(interval)
