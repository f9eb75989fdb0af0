"""``netns-kit``: labs from the terminal, the way containerlab deploys and destroys.

Every subcommand is a thin layer over the library: ``up`` is
``Lab.from_topology(load(FILE)).open()`` followed by ``keep()``, ``down`` is
:func:`netns_kit.recover`, ``ls``, ``show`` and ``graph`` read
:class:`~netns_kit.lab.kept.KeptLab` values, ``check`` probes a kept lab's pairs
(:meth:`KeptLab.check <netns_kit.lab.kept.KeptLab.check>`, exit code 1 when a pair does not
answer), and ``script`` runs ``up`` against a :class:`~netns_kit.executors.ScriptExecutor`.

``--rootless`` (the default for a user who is not root, unless ``--sudo``) builds the
lab in a sandbox (:mod:`netns_kit.executors.sandbox`) whose holder ``up`` leaves running; every
subcommand that reaches a lab (:meth:`_Context.reach`) enters a rootless lab's
sandbox, whatever the flags.

Exit codes: 0 on success, 1 when a command (or the lab's state) said no, 2 for bad
usage or a bad topology file.  Expected errors print one message, never a traceback;
``exec`` passes on the exit code of the command it ran.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from netns_kit import __version__, topology
from netns_kit.capture import cli as capture_cli
from netns_kit.check import report as check_report
from netns_kit.check.expect import Expectations
from netns_kit.check.result import Reachability
from netns_kit.command import Command
from netns_kit.daemons import cli as daemons_cli
from netns_kit.engine import progress
from netns_kit.engine.runner import Runner
from netns_kit.errors import LabBusyError, NetnsKitError, UsageError, ValidationError
from netns_kit.executors import (
    Executor,
    Process,
    ScriptExecutor,
    ShellExecutor,
    default_executor,
    interact,
)
from netns_kit.executors.batch import Batch
from netns_kit.executors.probes import ProbeAnswer, ProbeJob
from netns_kit.executors.sandbox import SandboxExecutor
from netns_kit.lab.kept import KeptLab, kept_labs
from netns_kit.lab.lab import Lab
from netns_kit.objects.shaping import egress
from netns_kit.readback.reader import NamespaceState, Snapshot, namespace_names
from netns_kit.record.journal import held_signals
from netns_kit.record.registry import Registry, recover, state_dir
from netns_kit.render import text_table
from netns_kit.result import Result
from netns_kit.spec import Topology
from netns_kit.timeline import cli as timeline_cli
from netns_kit.topology import schema as schema_cli
from netns_kit.validate import lab_name

PROG = "netns-kit"


class NoSuchLab(NetnsKitError):
    """No record of that lab in the state directory (exit code 1)."""

    def __init__(self, name: str, directory: Path) -> None:
        super().__init__(f"no lab named {name!r} (no record in {directory}); see `{PROG} ls`")


# -- executors: echo (-v) ------------------------------------------------------------


class Watched:
    """An executor that prints each command it is given (``-v``), then hands it on.

    A batch is printed line by line, as the commands it stands for.
    """

    def __init__(self, inner: Executor, *, echo: TextIO) -> None:
        self.inner = inner  # also how a lab finds the sandbox a rootless run goes to
        self.echo = echo
        self.parallel = getattr(inner, "parallel", 1)
        self.handles_guards = getattr(inner, "handles_guards", False)
        self.captures_with_packet_socket = getattr(inner, "captures_with_packet_socket", False)

    def _show(self, commands: Iterable[Command]) -> None:
        for command in commands:
            line = str(command)
            if command.unless is not None and self.handles_guards:
                line = f"{command.unless} || {line}"
            print(f"+ {line}", file=self.echo, flush=True)

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        self._show([command])
        return self.inner.execute(command, timeout)

    def execute_batch(self, batch: Batch) -> Result:
        self._show(batch.commands)
        return self.inner.execute_batch(batch)

    def start(self, command: Command) -> Process:
        self._show([command])
        return self.inner.start(command)

    def interact(self, command: Command, *, tty: bool = False) -> int:
        self._show([command])
        return interact(self.inner, command, tty=tty)

    @property
    def can_probe(self) -> bool:
        return bool(getattr(self.inner, "can_probe", False))

    @property
    def can_watch(self) -> bool:
        return bool(getattr(self.inner, "can_watch", False))

    def watch(self, jobs: Sequence[ProbeJob], *, interval: float, timeout: float) -> Any:
        probes = sum(job.probes for job in jobs)
        print(f"+ watch: {probes} pair(s) every {interval:g} s, raw ICMP sockets", file=self.echo)
        return self.inner.watch(jobs, interval=interval, timeout=timeout)  # type: ignore[attr-defined]

    def probe(
        self, lanes: Sequence[Sequence[ProbeJob]], *, timeout: float, count: int
    ) -> list[list[ProbeAnswer]]:
        jobs = [job for lane in lanes for job in lane]
        probes = sum(job.probes for job in jobs)
        print(
            f"+ probe: {probes} echo request(s) from {len(jobs)} namespace(s), "
            f"raw ICMP sockets, {len(lanes)} worker(s)",
            file=self.echo,
            flush=True,
        )
        answers: list[list[ProbeAnswer]] = self.inner.probe(  # type: ignore[attr-defined]
            lanes, timeout=timeout, count=count
        )
        return answers


# -- small helpers ---------------------------------------------------------------------


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"


class _Context:
    """What every subcommand needs: the executor, the registry, the streams."""

    def __init__(
        self, args: argparse.Namespace, executor: Executor | None, out: TextIO, err: TextIO
    ) -> None:
        self.args = args
        self.out = out
        self.err = err
        if args.rootless and args.sudo:
            raise UsageError("--rootless and --sudo do not go together: choose one")
        #: Whether ``up`` builds in a sandbox: asked for, or not root and no --sudo.
        self.rootless = bool(args.rootless) or (
            executor is None and not args.sudo and os.geteuid() != 0
        )
        self.state_dir = state_dir(args.state_dir)
        self.registry = Registry(self.state_dir)
        base = executor or (ShellExecutor(sudo=True) if args.sudo else default_executor())
        self.echo = err if args.verbose else None
        self.executor: Executor = self.watched(base)
        self.base = base
        #: An executor handed in (a test's fake): used for every machine too.
        self.injected = executor is not None

    def watched(self, executor: Executor) -> Executor:
        """``executor``, echoing every command with ``-v``."""
        return Watched(executor, echo=self.echo) if self.echo else executor

    def reach(self, lab: KeptLab) -> Executor:
        """The executor that reaches ``lab``: its sandbox when it is rootless."""
        return self.executor if not lab.rootless else self.watched(lab.executor(self.base))

    def lab(self, name: str) -> KeptLab:
        lab_name(name)
        record = self.registry.read(name)
        if record is None:
            raise NoSuchLab(name, self.registry.directory)
        return KeptLab(record, self.registry)

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def progress_line(self) -> progress.TerminalLine | None:
        """The status line on stderr: only on a terminal, not with --quiet, and not with
        -v (whose command lines would break it)."""
        return progress.terminal_hook(self.err, quiet=self.args.quiet or self.args.verbose)

    def reporting(self, task: str) -> contextlib.AbstractContextManager[object]:
        """Show the progress of everything in the block on the status line."""
        return progress.reporting(self.progress_line(), task=task)


# -- subcommands -----------------------------------------------------------------------


def cmd_validate(ctx: _Context) -> int:
    topo = topology.load(ctx.args.file)
    ctx.print(f"{ctx.args.file}: OK: {_summary(topo)}")
    return 0


def _summary(topo: Topology) -> str:
    parts = [
        _count(len(topo.namespaces), "namespace"),
        _count(len(topo.bridges), "bridge"),
        _count(len(topo.links), "link"),
        _count(len(topo.routes), "route"),
    ]
    if topo.sysctls:
        parts.append(_count(len(topo.sysctls), "sysctl"))
    if topo.masquerades:
        parts.append(_count(len(topo.masquerades), "masquerade"))
    if topo.port_forwards:
        parts.append(_count(len(topo.port_forwards), "port forward"))
    if topo.hosts:
        parts.append("hosts files")
    isolated = "isolated " if topo.isolated else ""
    return f"{isolated}lab {topo.name!r}: " + ", ".join(parts)


def cmd_up(ctx: _Context) -> int:
    topo = topology.load(ctx.args.file)
    expect = check_report.expectations(ctx.args)
    if expect is not None and not ctx.args.check:
        raise UsageError("--expect goes with --check")
    if ctx.args.name:
        topo = topology.check(attrs.evolve(topo, name=ctx.args.name), source=ctx.args.file)
    existing = ctx.registry.read(topo.name)
    if existing is not None and existing.state == "kept":
        raise LabBusyError(
            f"lab {topo.name!r} is already up; `{PROG} down {topo.name}` first, "
            "or give another --name"
        )
    line = ctx.progress_line()
    executor: Executor | None = ctx.watched(SandboxExecutor()) if ctx.rootless else ctx.executor
    rootless: bool | None = ctx.rootless
    if topo.machines and not ctx.injected:
        # each machine through ssh, as the file's [machines] table says; nothing of the
        # lab is on this one but its record
        executor, rootless = None, None
    lab = Lab.from_topology(
        topo,
        executor=executor,
        state_dir=ctx.state_dir,
        progress=line,
        rootless=rootless,
    )
    try:
        lab.open()
    finally:
        if line is not None:
            line.clear()
    # Built: from here on `up` finishes.  A Ctrl-C while the table prints would
    # otherwise report "interrupted" and leave a lab standing that the user thinks
    # was not made.
    with _interrupts_held() as held:
        lab.keep()
        built = lab.topology()
        host_side = lab.host_side or ("(sandbox)" if lab.rootless else None)
        ctx.print(_up_table(built, host_side))
        where = f" in a rootless sandbox (holder {lab.sandbox.pid})" if lab.sandbox else ""
        ctx.print(f"{_summary(built)} is up{where}.  Tear it down with: {PROG} down {topo.name}")
    if held:
        print(f"{PROG}: interrupted after the lab was built: it is up", file=ctx.err)
        return 0
    if ctx.args.check:
        ctx.print()
        kept = ctx.lab(topo.name)
        with ctx.reporting(f"checking {topo.name}"):
            result = kept.check(ctx.reach(kept), timeout=ctx.args.timeout, count=ctx.args.count)
        return _report_check(ctx, result, expect)
    return 0


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM for the block, then drop them; yields what came."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    with held_signals(caught):
        yield caught


def _up_table(topo: Topology, host_side: str | None) -> str:
    """What was built, one row per interface: where, name, address, what it joins."""
    host_name = host_side or "(root)"

    def where(place: str | None) -> str:
        return host_name if place is None else place

    rows: list[tuple[str, str, str | None, str, str | None]] = []
    for bridge in topo.bridges:
        kind = "bridge (stp)" if bridge.stp else "bridge"
        rows.append((where(bridge.namespace), bridge.name, bridge.address, kind, None))
    ends = topo.ends()
    for link in topo.with_link_names().links:
        assert link.names is not None
        pair = (ends.end(link.a), ends.end(link.b))
        out = tuple(None if s is None else s.label for s in egress(link.shape, link.direction))
        for i, end in enumerate(pair):
            other = pair[1 - i]
            if end is None or other is None:
                continue
            if end.bridge is not None:
                joins = f"port of {end.name}"
            elif other.bridge is not None:
                joins = f"veth to {other.name} ({link.names[1 - i]})"
            else:
                joins = f"veth to {where(other.namespace)}/{link.names[1 - i]}"
            rows.append((where(end.namespace), link.names[i], link.addresses[i], joins, out[i]))
    rows.sort(key=lambda row: (row[0] != host_name, row[0]))
    text = text_table(("NAMESPACE", "INTERFACE", "ADDRESS", "JOINS", "SHAPING"), rows)
    if topo.routes:
        text += "\n" + text_table(
            ("NAMESPACE", "ROUTE", "VIA", "DEV"),
            [(where(r.namespace), r.destination, r.via, r.dev) for r in topo.routes],
        )
    rules = [
        (where(m.namespace), f"masquerade {m.source}", m.out_interface and f"out {m.out_interface}")
        for m in topo.masquerades
    ]
    rules += [
        (
            where(f.namespace),
            f"forward {f.protocol} {f.port} -> {f.to}",
            f.in_interface and f"in {f.in_interface}",
        )
        for f in topo.port_forwards
    ]
    if rules:
        text += "\n" + text_table(("NAMESPACE", "NAT", "INTERFACE"), rules)
    return text.rstrip("\n")


def cmd_check(ctx: _Context) -> int:
    lab = ctx.lab(ctx.args.name)
    expect = check_report.expectations(ctx.args)
    with ctx.reporting(f"checking {lab.name}"):
        result = lab.check(ctx.reach(lab), timeout=ctx.args.timeout, count=ctx.args.count)
    return _report_check(ctx, result, expect)


def _report_check(ctx: _Context, result: Reachability, expect: Expectations | None) -> int:
    text, code = check_report.report(
        result,
        expect,
        as_json=getattr(ctx.args, "json", False),
        full=getattr(ctx.args, "full", False),
    )
    ctx.print(text)
    return code


def cmd_down(ctx: _Context) -> int:
    name = ctx.args.name
    ctx.lab(name)
    with ctx.reporting(f"tearing down {name}"):
        removed = recover(name, executor=ctx.executor, state_dir=ctx.state_dir)
    for item in removed:
        if ctx.args.verbose:
            ctx.print(f"removed {item}")
    ctx.print(f"lab {name!r} is down ({_count(len(removed), 'resource')} removed)")
    return 0


def cmd_ls(ctx: _Context) -> int:
    known = kept_labs(ctx.registry)
    present = set(namespace_names(ctx.executor)) if known else set()
    labs = [lab.to_dict(present) for lab in known]
    if ctx.args.json:
        ctx.print(json.dumps(labs, indent=2))
    elif not labs:
        ctx.print(f"no labs (state directory {ctx.registry.directory})")
    else:
        rows = [
            (x["name"], x["state"], _isolation(x), len(x["namespaces"]), x["pid"]) for x in labs
        ]
        header = ("NAME", "STATE", "ISOLATED", "NAMESPACES", "PID")
        ctx.print(text_table(header, rows).rstrip("\n"))
    return 0


def _isolation(lab: dict[str, Any]) -> str:
    """The ISOLATED column: a rootless lab is in a sandbox of its own."""
    return "sandbox" if lab["rootless"] else "yes" if lab["isolated"] else "no"


def cmd_show(ctx: _Context) -> int:
    lab = ctx.lab(ctx.args.name)
    snap, missing = lab.snapshot(ctx.reach(lab))
    if ctx.args.json:
        present = {n for n in lab.namespaces() if n not in missing}
        data: dict[str, Any] = lab.to_dict(present)
        data["missing"] = missing
        data.update(snap.to_dict())
        ctx.print(json.dumps(data, indent=2))
        return 0
    ctx.print(_show_text(snap, "(sandbox)" if lab.rootless else "(root)"))
    routers = daemons_cli.show_text(lab.record, Runner(ctx.reach(lab)))
    if routers:
        ctx.print("\n" + routers.rstrip("\n"))
    if missing:
        ctx.print(f"\nmissing namespaces: {', '.join(missing)}")
    return 0


def _joins(state: NamespaceState, name: str) -> str:
    link = state.link(name)
    if link.master:
        return f"port of {link.master}"
    if link.peer is not None and link.peer.name:
        return f"veth to {link.peer.namespace or '(root)'}/{link.peer.name}"
    return link.kind or ""


def _show_text(snap: Snapshot, root: str = "(root)") -> str:
    """The tables of ``show``; ``root`` names the namespace without a name."""
    rows = []
    routes = []
    for state in snap:
        where = state.name or root
        for link in state.links:
            if link.kind == "loopback":
                continue
            addrs = [
                a.address for a in state.addresses if a.interface == link.name and a.scope != "link"
            ]
            shaping = link.qdisc.label if link.qdisc is not None else ""
            for address in addrs or [""]:
                joins = _joins(state, link.name)
                rows.append((where, link.name, address, link.state, joins, shaping))
        for route in state.routes:
            if route.family == "inet6" and route.destination.startswith("fe80::"):
                continue
            routes.append((where, route.destination, route.via, route.dev, route.protocol))
    text = text_table(("NAMESPACE", "INTERFACE", "ADDRESS", "STATE", "JOINS", "SHAPING"), rows)
    text += "\n" + text_table(("NAMESPACE", "ROUTE", "VIA", "DEV", "PROTOCOL"), routes)
    return text.rstrip("\n")


def cmd_script(ctx: _Context) -> int:
    topo = topology.load(ctx.args.file)
    dry = ScriptExecutor()
    with tempfile.TemporaryDirectory(prefix="netns-kit-script-") as scratch:
        lab = Lab.from_topology(topo, executor=dry, state_dir=scratch)
        lab.open()
        teardown = lab.teardown_commands()
        lab.keep()
    if ctx.args.teardown:
        # Like a lab's own teardown, go on past a failure (something already gone).
        lines = "".join(command.shell() + "\n" for command in teardown)
        ctx.out.write("#!/usr/bin/env bash\nset -uo pipefail\n" + lines)
    else:
        ctx.out.write(dry.script())
    return 0


def cmd_graph(ctx: _Context) -> int:
    from netns_kit import render as pictures

    target = ctx.args.target
    if Path(target).suffix.lower() in (".toml", ".yaml", ".yml") or os.sep in target:
        topo = topology.load(target)
    else:
        lab = ctx.lab(target)
        topo = lab.topology(ctx.reach(lab))
    draw = pictures.to_dot if ctx.args.format == "dot" else pictures.to_mermaid
    ctx.out.write(draw(topo).rstrip("\n") + "\n")
    return 0


def cmd_cleanup(ctx: _Context) -> int:
    failed = 0
    cleaned = 0
    for lab in kept_labs(ctx.registry):
        record = lab.record
        status = lab.status(set())
        if status not in ("stale", "dying"):  # open, building, or kept up
            continue
        if status == "dying":
            ctx.print(
                f"lab {record.name!r}: process {record.pid} died; waiting for the programs "
                "it started to finish"
            )
        try:
            with ctx.reporting(f"cleaning up {record.name}"):
                removed = recover(record.name, executor=ctx.executor, state_dir=ctx.state_dir)
        except LabBusyError as error:
            if status == "dying":  # its orphans outlived the wait: say so
                print(f"{PROG}: cleaning up lab {record.name!r} failed: {error}", file=ctx.err)
                failed += 1
            continue  # a stale one came back to life meanwhile: not stale
        except NetnsKitError as error:
            print(f"{PROG}: cleaning up lab {record.name!r} failed: {error}", file=ctx.err)
            failed += 1
            continue
        cleaned += 1
        ctx.print(f"lab {record.name!r}: removed {_count(len(removed), 'resource')}")
        if ctx.args.verbose:
            for item in removed:
                ctx.print(f"  {item}")
    if not cleaned and not failed:
        ctx.print("no stale labs")
    return 1 if failed else 0


# -- the parser --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Build, inspect and tear down Linux network-namespace labs.",
        epilog="Exit codes: 0 success, 1 a command or the lab's state said no, "
        "2 bad usage or a bad topology file.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--sudo", action="store_true", help="run every command through `sudo -n`")
    parser.add_argument(
        "--rootless",
        action="store_true",
        help="build labs in a sandbox of their own, without root "
        "(the default when not root, unless --sudo)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print every command as it runs (stderr)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress line on stderr (it shows only when stderr is a terminal)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where lab records live (default: $NETNS_KIT_STATE_DIR, /run/netns-kit for "
        "root, $XDG_RUNTIME_DIR/netns-kit-UID for others)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, handler: Callable[[_Context], int], text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=text, description=text)
        command.set_defaults(handler=handler)
        return command

    up = add("up", cmd_up, "build the lab a topology file describes, and keep it")
    up.add_argument("file", metavar="FILE", help="a .toml, .yaml or .yml topology file")
    up.add_argument(
        "--name", help="the lab's name instead of the file's (namespaces keep their names)"
    )

    check_report.add_options(up, up=True)

    check = add(
        "check",
        cmd_check,
        "probe every address of every namespace from every other namespace; "
        "exit 0 when every pair answers (or exactly the --expect pairs fail), else 1",
    )
    check.add_argument("name", metavar="NAME")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument(
        "--full", action="store_true", help="the whole matrix, however many namespaces"
    )
    check_report.add_options(check, up=False)

    down = add("down", cmd_down, "tear a lab down from its record (also after a crash)")
    down.add_argument("name", metavar="NAME")

    ls = add(
        "ls",
        cmd_ls,
        "list labs and their state (up, open, building, checking, dying, stale, partial)",
    )
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    show = add("show", cmd_show, "a lab's interfaces, addresses and routes, read live")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="machine-readable output")

    capture_cli.register(add)  # exec, shell, capture

    script = add("script", cmd_script, "print the bash script `up` would run")
    script.add_argument("file", metavar="FILE")
    script.add_argument(
        "--teardown", action="store_true", help="print the script that tears it down instead"
    )

    graph = add("graph", cmd_graph, "draw a topology file or a running lab")
    graph.add_argument("target", metavar="FILE|NAME")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")

    add(
        "cleanup",
        cmd_cleanup,
        "remove every stale lab (one whose process died; waits for what it started)",
    )

    validate = add("validate", cmd_validate, "check a topology file, changing nothing")
    validate.add_argument("file", metavar="FILE")
    schema_cli.register(add)
    timeline_cli.register(add)
    return parser


def entry() -> None:
    """The ``netns-kit`` program: :func:`main`, then exit deaf to Ctrl-C.

    Once the work is done (a lab up, say), a Ctrl-C during interpreter shutdown would
    only print a traceback from deep inside, or kill the process with the work done
    and unreported; so the last thing :func:`main` does here is hold it.
    """
    raise SystemExit(main(exiting=True))


def main(
    argv: Sequence[str] | None = None,
    *,
    executor: Executor | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    exiting: bool = False,
) -> int:
    """Run the command line; returns the exit code (``executor`` is for tests).

    ``exiting``: the process ends right after, so Ctrl-C and SIGTERM are held from the
    moment the command is done (see :func:`entry`).
    """
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or bad usage (argparse says why)
        return exit_.code if isinstance(exit_.code, int) else 2
    ctx: _Context | None = None
    try:
        ctx = _Context(args, executor, out, err)
        code: int = args.handler(ctx)
        return code
    except (ValidationError, UsageError) as error:
        print(f"{PROG}: {error}", file=err)
        return 2
    except NetnsKitError as error:
        print(f"{PROG}: {error}", file=err)
        for note in getattr(error, "__notes__", []):
            print(f"  {note}", file=err)
        return 1
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        hint = ""
        if isinstance(error, PermissionError):
            hint = "\n  hint: run as root, or keep lab records elsewhere with --state-dir"
        print(f"{PROG}: {error.strerror or error}{where}{hint}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130
    finally:
        if exiting:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        if ctx is not None and executor is None:
            close = getattr(ctx.base, "close", None)
            if callable(close):
                close()
