"""Daemons as lab resources: their directories, their start and their stop.

Every router gets ``/run/netns-kit-<lab>.daemons/<namespace>/``: its configuration,
pid files and control sockets.  The directories are steps like any other (written
ahead to the lab's record, removed at teardown and by ``recover()``).  Daemons start
only through the executor's ``start`` (in the foreground, so the PID is the
daemon's own), and each one's PID and start time (``/proc/PID/stat``, field 22) go
into the record as a ``daemon`` entry, so that recovery after a crash kills exactly
that process and no other that got its PID later.

Many daemons start at once through the executor's ``start_detached`` (one launcher
a machine, see :mod:`netns_kit.executors.detached`), which learns each one's PID and
start time as it starts it: their entries are written before anything else runs,
and one ``cat /proc/PID/stat ...`` a machine then tells that they still run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

import attrs

from netns_kit.command import Command, in_namespace, ip
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Entry, Step
from netns_kit.errors import NetnsKitError
from netns_kit.executors import Executor, Process

#: The users FRR's daemons drop to; the router's directory must be theirs.
FRR_OWNER = "frr:frr"


def directory_step(path: str) -> Step:
    """Make the lab's directory ``path`` (recorded; removed with everything in it, its
    routers' directories, at teardown and by recovery)."""
    remove = Command(("rm", "-rf", "--", path))
    return Step(
        Command(("mkdir", "-p", "--", path)),
        (remove,),
        Entry("directory", path, None, undo=remove.argv),
        lives_in=frozenset({None}),
    )


#: Makes directories (each with its owner, or "") and writes files, all in one
#: process: ``DIR OWNER ... -- PATH TEXT ...``.  The files' text travels as argv
#: elements, never as part of the script, and the script takes no user text: it
#: lists the directories as references to its arguments (``"${7}"``), so that one
#: ``mkdir`` and one ``chown`` make them all (a process each cost 3-6 ms: 0.3 s for
#: 50 routers on a loaded machine).  Every owned directory gets the same owner.
_WRITE = (
    "set -e; i=0; mk=; own=; who=; "
    r'for a; do i=$((i + 1)); if [ $((i % 2)) = 1 ]; then [ "$a" = -- ] && break; '
    r'mk="$mk \"\${$i}\""; elif [ -n "$a" ]; then own="$own \"\${$((i - 1))}\""; who=$i; fi; '
    r'done; [ -z "$mk" ] || eval "mkdir -p -- $mk"; '
    r'[ -z "$own" ] || eval "chown -- \"\${$who}\" $own"; shift "$i"; '
    'while [ $# -gt 0 ]; do printf %s "$2" > "$1"; shift 2; done'
)


def write_step(
    directories: Sequence[tuple[str, str | None]], files: Sequence[tuple[str, str]]
) -> Step:
    """Make the routers' directories (FRR's owned by its user) and write their files
    (readable by all, so that FRR's user can read them) in one process: one a
    machine, however many routers.  They go with the lab's directory."""
    if len({owner for _, owner in directories if owner}) > 1:
        raise ValueError("the routers' directories of one machine have one owner (FRR's)")
    argv: list[str] = ["sh", "-c", _WRITE, "sh"]
    for path, owner in directories:
        argv += [path, owner or ""]
    argv.append("--")
    for path, text in files:
        argv += [path, text]
    return Step(Command(tuple(argv)), lives_in=frozenset({None}))


def file_list(directory: str, files: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(str(PurePosixPath(directory) / name), text) for name, text in files.items()]


@attrs.define
class Daemon:
    """A daemon we started: its router, its program name, and the process."""

    router: str
    program: str
    process: Process
    started: str
    entry: Entry


def start_command(namespace: str, argv: Sequence[str], machine: str | None) -> Command:
    """The daemon's argv inside ``namespace`` through ``ip netns exec`` (a private
    mount namespace of its own: FRR binds its directory over /var/run/frr there)."""
    return attrs.evolve(in_namespace(argv, namespace), machine=machine)


def stat_command(pids: Sequence[int], machine: str | None) -> Command:
    return Command(("cat", *(f"/proc/{pid}/stat" for pid in pids)), read=True, machine=machine)


def start_times(text: str) -> dict[int, str]:
    """PID -> start time (clock ticks since boot) from ``/proc/PID/stat`` lines, for
    the processes that still run (a zombie has ended).

    The program name (field 2) may hold spaces and parentheses: fields are counted
    after its last ``)``."""
    found = {}
    for line in text.splitlines():
        if ")" not in line:
            continue
        head, _, rest = line.rpartition(")")
        fields = rest.split()
        pid = int(head.split("(", 1)[0])
        if len(fields) > 19 and fields[0] != "Z":
            found[pid] = fields[19]
    return found


def entry(router: str, program: str, process: Process, machine: str | None) -> Entry:
    """A started daemon's record entry: killed by its PID on its machine, and only
    while that PID has the start time the entry holds (``PID STARTTIME``, when the
    executor knows it already; else :func:`stamp` completes it)."""
    pid = process.machine_pid
    known = process.started_at
    value = None if known is None else f"{pid} {known}"
    undo = ("kill", "-KILL", str(pid))
    return Entry("daemon", f"{router}/{program}", router, undo=undo, value=value, machine=machine)


def stamp(
    ex: Executor,
    processes: Sequence[tuple[Process, Entry]],
    machine: str | None,
    logs: Mapping[int, str],
) -> list[Daemon]:
    """Check that each process still runs (one read of their ``/proc/PID/stat`` on
    ``machine``), and complete the entries whose start time was not known yet.  A
    daemon that has already ended (a configuration it refused), or never started,
    raises with what it said.  ``logs``: each process's log, by its machine PID."""
    if not processes:
        return []
    pids = [p.machine_pid for p, _ in processes if p.machine_pid > 0]
    said = Runner(ex).run(stat_command(pids, machine), check=False).stdout if pids else ""
    times = start_times(said)
    out = []
    for process, entry in processes:
        pid = process.machine_pid
        when = times.get(pid)
        if when is None or (process.started_at not in (None, when)):
            _ended(ex, process, entry, machine, logs.get(pid))
        assert when is not None
        router, program = entry.name.split("/", 1)
        if entry.value != f"{pid} {when}":  # else the very entry the record holds
            entry = attrs.evolve(entry, value=f"{pid} {when}")
        out.append(Daemon(router, program, process, when, entry))
    return out


def _ended(
    ex: Executor, process: Process, entry: Entry, machine: str | None, log: str | None
) -> None:
    """Raise for a daemon that is gone, or a zombie (it refused to run), or that
    never started (the launcher's words), with what its log says."""
    said = "" if process.machine_pid > 0 else process.said()[1].strip()
    if log is not None and not said:
        read = Command(("tail", "-c", "2000", "--", log), read=True, machine=machine)
        said = Runner(ex).run(read, check=False).stdout.strip()
    raise NetnsKitError(
        f"daemon {entry.name} ended at once: {said or 'no output'} (command: {process.command})"
    )


#: Waits on the machine until every path exists, for about ``$1`` ms, looking 10 ms
#: apart at first, then up to 50 ms apart (each pause is a ``sleep`` process, whose
#: CPU the starting daemons need); prints the paths still missing then:
#: ``MILLISECONDS PATH ...``.
_WAIT = (
    "left=$1; step=10; shift; while :; do all=1; "
    'for f; do [ -e "$f" ] || { all=; break; }; done; '
    '[ -n "$all" ] && exit 0; [ "$left" -le 0 ] && break; sleep "0.0$step"; '
    'left=$((left - step)); [ "$step" -lt 50 ] && step=$((step + 10)); done; '
    'for f; do [ -e "$f" ] || printf "%s\\n" "$f"; done'
)


def wait_command(paths: Sequence[str], machine: str | None, timeout: float) -> Command:
    """One process that waits on ``machine`` until every path exists (a socket a
    daemon makes when ready), about ``timeout`` seconds at most, and prints the
    paths still missing then: no round trip and no process of ours per look."""
    budget = max(1, int(timeout * 1000))
    return Command(("sh", "-c", _WAIT, "sh", str(budget), *paths), read=True, machine=machine)


def wait_for_files(
    runner: Runner, paths: Sequence[str], machine: str | None, timeout: float = 10.0
) -> list[str]:
    """Wait until every path exists; the ones still missing after about ``timeout``
    seconds (see :func:`wait_command`)."""
    if not paths:
        return []
    found = runner.run(wait_command(paths, machine, timeout), check=False, timeout=timeout * 3 + 10)
    missing = set(found.stdout.splitlines()) if found else set(paths)
    return [p for p in paths if p in missing]


def flush_nexthops(namespace: str, machine: str | None) -> Command:
    """zebra leaves nexthop objects behind; flushed once it has ended (flushing
    while it runs deletes its routes)."""
    return attrs.evolve(ip("nexthop", "flush", namespace=namespace), machine=machine)
