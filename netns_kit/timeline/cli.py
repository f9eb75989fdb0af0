"""``netns-kit run FILE``: build a lab, run its timeline while probing, report, tear down.

The file is a topology file with ``[watch]``, ``[[events]]`` and, optionally, the run
bounds of ``[expect]`` (:mod:`netns_kit.timeline.files`).  The events are printed as
they happen, then the outages as a table (``--json``: one JSON document).  The lab is
torn down at the end (``--keep`` leaves it up, as ``netns-kit up`` would).

Exit codes: 0 when every bound of ``[expect]`` held, 1 when one did not (or a command
failed), 2 for a bad file, 130 after Ctrl-C.  Ctrl-C (or SIGTERM) stops the run: the
probes stop, what was measured so far is reported, and the lab is torn down.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from netns_kit.errors import NetnsKitError
from netns_kit.executors.sandbox import SandboxExecutor
from netns_kit.lab.lab import Lab
from netns_kit.timeline.events import Timeline
from netns_kit.timeline.files import RunPlan, check_sections
from netns_kit.timeline.run import Happened, Run
from netns_kit.topology import files as topology_files
from netns_kit.topology.dicts import from_dict

Handler = Callable[[Any], int]


def register(add: Callable[[str, Handler, str], argparse.ArgumentParser]) -> None:
    """Add ``run`` to the command line (``add`` is the main parser's helper)."""
    run = add(
        "run",
        cmd_run,
        "build a lab, run its [[events]] while probing its [watch] pairs, print the "
        "outages, tear it down; exit 1 when an [expect] bound fails",
    )
    run.add_argument("file", metavar="FILE", help="a topology file with [watch] and [[events]]")
    run.add_argument("--json", action="store_true", help="machine-readable output")
    run.add_argument("--keep", action="store_true", help="leave the lab up afterwards")


@contextlib.contextmanager
def _stopping(stop: threading.Event) -> Iterator[list[int]]:
    """Ctrl-C and SIGTERM set ``stop`` for the block (main thread only)."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, frame: object) -> None:
        caught.append(signum)
        stop.set()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for signum, previous in old.items():
            signal.signal(signum, previous)


def timeline_of(lab: Lab, plan: RunPlan) -> Timeline:
    timeline = Timeline(lab)
    for event in plan.events:
        timeline.add(event.at, event.do, event.target, event.arguments)
    return timeline


def cmd_run(ctx: Any) -> int:
    """The ``run`` subcommand (``ctx`` is the command line's context)."""
    args = ctx.args
    topo, plan = load(args.file)
    if plan.watch is None:
        raise NetnsKitError(f"{args.file} has no [watch] table: nothing to measure")
    executor = ctx.watched(SandboxExecutor()) if ctx.rootless else ctx.executor
    lab = Lab.from_topology(topo, executor=executor, state_dir=ctx.state_dir, rootless=ctx.rootless)
    stop = threading.Event()
    run: Run | None = None
    kept = False

    def said(event: Happened) -> None:
        if not args.json:
            ctx.print(f"{event.started:8.3f} s  {event.label}")

    try:
        lab.open()
        timeline = timeline_of(lab, plan)
        watch = plan.watch
        if not args.json:
            pairs = ", ".join(f"{a} -> {b}" for a, b in watch.pairs)
            ctx.print(
                f"lab {topo.name!r} built; probing {pairs} every {watch.interval * 1000:g} ms"
            )
        with _stopping(stop) as caught:
            run = timeline.run(
                list(watch.pairs),
                interval=watch.interval,
                until=watch.until,
                timeout=watch.timeout,
                stop=stop,
                on_event=said,
            )
        if args.keep:
            lab.keep()
            kept = True
    finally:
        if not kept:
            lab.close()
    failures = plan.expect.bounds.failures(run)
    interrupted = bool(caught)
    if args.json:
        data = {
            "lab": topo.name,
            "kept": kept,
            "interrupted": interrupted,
            "run": run.to_dict(),
            "expect": {"ok": not failures, "failures": failures},
        }
        ctx.print(json.dumps(data, indent=2))
    else:
        ctx.print(run.table())
        if not plan.expect.bounds.empty:
            ctx.print("expect: OK" if not failures else "expect: FAILED")
            for failure in failures:
                ctx.print(f"  {failure}")
        ctx.print(f"lab {topo.name!r} " + ("kept up" if kept else "torn down"))
    if interrupted:
        return 130
    return 1 if failures else 0


def load(path: str) -> tuple[Any, RunPlan]:
    """A topology file with its timeline: (the checked topology, its run plan)."""
    data = topology_files.read(path)
    topo = from_dict(data, source=path)  # every problem of the file, timeline included
    assert isinstance(data, Mapping)
    ignored: list[str] = []
    links = [(link.a, link.b) for link in topo.links]
    plan = check_sections(data, topo.namespaces, links, lambda p, t: ignored.append(t))
    return topo, plan
