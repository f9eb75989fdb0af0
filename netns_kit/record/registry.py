"""Write-ahead lab records, lab locks and stale-lab cleanup.

A lab writes down what it is *about* to create before it creates it, as one JSON file
per lab in the state directory (``/run/netns-kit``, or ``NETNS_KIT_STATE_DIR``; a user
who is not root gets one of their own, see :func:`state_dir`).  If
the process dies (``kill -9``, a crash, a closed laptop), :func:`recover` reads the
record and removes what the lab made.  It removes only what carries the lab's tag:
a namespace whose ``lo`` has the alias ``netns-kit:<lab>``, an interface with that
alias, an iptables rule with that comment, so it never touches what it did not make.

A lab holds ``<name>.lock`` with ``fcntl.flock`` for its whole life.  flock, unlike
lockf, refuses a second lock from the same process too, and the kernel drops it when
the last holder is gone, so "lock is free" means "owner is gone".  Every short-lived
program the lab starts (an ``ip -batch``, say) inherits the locked descriptor: a
``kill -9`` of the owner leaves that program running with the whole batch on its
stdin, and as long as it runs nobody may recover the lab, or recovery would delete
what exists and then watch the orphan create the rest.  Recovery therefore waits, a
bounded time, for the programs of a dead owner to finish.

A rootless lab's record also names its sandbox's holder process (PID and start
time).  Its kernel state cannot leak, the kernel frees it with the holder; recovery
kills that holder, if it is still the same process, and removes the record.

Looking never changes anything: :meth:`Registry.is_live` opens the lock file without
creating it and takes a *shared* lock for an instant.  An opener that meets such an
observer retries for a moment instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from netns_kit import validate
from netns_kit.command import Command, in_namespace
from netns_kit.engine import progress
from netns_kit.engine.runner import Runner
from netns_kit.engine.step import Entry
from netns_kit.errors import LabBusyError, NetnsKitError
from netns_kit.executors import (
    Executor,
    default_executor,
    inherit_in_children,
    quiet_thread,
    stop_inheriting,
)
from netns_kit.executors.sandbox import HolderRef, stop_holder
from netns_kit.objects.namespace import Namespace
from netns_kit.readback import reader as state
from netns_kit.record import owner as owners

log = logging.getLogger("netns_kit")

DEFAULT_STATE_DIR = "/run/netns-kit"
#: How long an opener waits out someone who is only looking (``is_live``) at the lock.
OBSERVER_WAIT = 1.0
#: How long recovery waits for what a dead owner started (its last ``ip -batch``).
ORPHAN_WAIT = 30.0


def state_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Where lab records live: ``override``, ``$NETNS_KIT_STATE_DIR``, /run/netns-kit
    for root, and :func:`user_state_dir` for anyone else (/run is root's)."""
    chosen = override or os.environ.get("NETNS_KIT_STATE_DIR")
    if chosen:
        return Path(chosen)
    return Path(DEFAULT_STATE_DIR) if os.geteuid() == 0 else user_state_dir()


def user_state_dir() -> Path:
    """A user's own state directory: ``$XDG_RUNTIME_DIR/netns-kit-UID``, or the same
    name in the temporary directory (``/tmp``) where there is no runtime directory."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(runtime) / f"netns-kit-{os.geteuid()}"


def check_lease(lab: str) -> str:
    """The record a check of a kept lab keeps while it holds root settings raised
    (:mod:`netns_kit.check.neighbours`); ``:`` keeps it from ever naming a lab."""
    return f"{lab}:check"


def tag_for(lab: str) -> str:
    """The alias and iptables comment that mark what a lab made."""
    return f"netns-kit:{lab}"


@attrs.define
class Record:
    """What a lab made, or is about to make, in the order it made it."""

    name: str
    pid: int
    isolated: bool = False
    #: The lab's host-side namespace (``None``: the root namespace).
    host_side: str | None = None
    state: str = "building"
    resources: list[Entry] = attrs.field(factory=list)
    #: A rootless lab's sandbox: its holder process.
    sandbox: HolderRef | None = None
    #: A lab spread over machines: each machine by the lab's name for it, with how to
    #: reach it again (``executor``, see :func:`netns_kit.executors.dispatch.describe`) and its
    #: ``underlay`` address.  Empty for a lab on one machine.
    machines: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    #: The owner's start time (see :mod:`netns_kit.record.owner`), which tells the
    #: owner from a process that got its PID later; noted when the owner makes it.
    owner_started: int | None = attrs.field(
        default=attrs.Factory(
            lambda self: owners.started(self.pid) if self.pid == os.getpid() else None,
            takes_self=True,
        )
    )
    #: The owner's PID namespace (``pid:[INODE]``): its PID means nothing from
    #: another one (a container, a sandbox), where the owner would look dead.
    owner_pidns: str | None = attrs.field(
        default=attrs.Factory(
            lambda self: owners.pid_namespace() if self.pid == os.getpid() else None,
            takes_self=True,
        )
    )

    def namespaces(self) -> list[str]:
        """The namespaces the lab made, its host side first (the record's order)."""
        return [e.name for e in self.resources if e.kind == "namespace"]

    def to_json(self) -> str:
        # One resource a line: readable, and written often (before every change), so
        # neither attrs.asdict's deep copy nor a fully indented dump.
        head = {
            f.name: getattr(self, f.name)
            for f in attrs.fields(Record)
            if f.name not in ("resources", "sandbox", "machines")
        }
        if self.sandbox is not None:
            head["sandbox"] = self.sandbox.to_dict()
        if self.machines:
            head["machines"] = self.machines
        lines = ",\n".join(json.dumps(entry.to_dict()) for entry in self.resources)
        return json.dumps(head)[:-1] + f', "resources": [\n{lines}\n]}}\n'

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        for old, new in _RENAMED_0_3.items():  # a record written by netns_kit 0.2
            if old in data and new not in data:
                data[new] = data.pop(old)
        fields = {f.name: data[f.name] for f in attrs.fields(cls) if f.name in data}
        fields.setdefault("owner_started", None)  # an older record: the PID alone
        fields.setdefault("owner_pidns", None)
        fields["resources"] = [Entry.from_dict(e) for e in fields.get("resources", [])]
        if fields.get("sandbox") is not None:
            fields["sandbox"] = HolderRef.from_dict(fields["sandbox"])
        return cls(**fields)


#: Keys of a record that 0.3 renamed (old: new): a record written before is still read.
_RENAMED_0_3 = {"host": "host_side", "hosts": "machines"}


class Registry:
    """The state directory: records and locks of every lab on this machine."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = state_dir(directory)
        #: A user's own directory, in a place others may write to (``/tmp``): it must
        #: be theirs and closed to everyone else.
        self.private = self.directory == user_state_dir() and os.geteuid() != 0

    def record_path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def lock_path(self, name: str) -> Path:
        return self.directory / f"{name}.lock"

    def temp_path(self, name: str) -> Path:
        return self.directory / f".{name}.json.tmp"

    def make_directory(self) -> None:
        """Make the state directory; a user's own is 0700 and must be theirs."""
        if not self.private:
            self.directory.mkdir(parents=True, exist_ok=True)
            return
        with contextlib.suppress(FileExistsError):
            self.directory.mkdir(mode=0o700, parents=True)
        found = os.lstat(self.directory)
        mine = found.st_uid == os.geteuid() and stat.S_ISDIR(found.st_mode)
        if not mine or found.st_mode & 0o077:
            raise NetnsKitError(
                f"state directory {self.directory} is not a directory of yours closed to "
                "others (mode 0700): remove it, or choose one with NETNS_KIT_STATE_DIR"
            )

    def write(self, record: Record) -> None:
        """Atomically: a reader sees the old record or the new one, never half."""
        self.make_directory()
        # named before it exists, so that whatever interrupts us (Ctrl-C lands anywhere)
        # can remove it; only the holder of the lab's lock writes its record
        tmp = self.temp_path(record.name)
        try:
            with open(tmp, "w") as handle:
                handle.write(record.to_json())
            os.replace(tmp, self.record_path(record.name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def read(self, name: str) -> Record | None:
        try:
            return Record.from_json(self.record_path(name).read_text())
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as error:
            raise NetnsKitError(
                f"lab record {self.record_path(name)} is damaged: {error}"
            ) from None

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.record_path(name).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.lock_path(name).unlink()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path(name).unlink()

    def records(self) -> list[Record]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            record = self.read(path.stem)
            if record is not None:
                found.append(record)
        return found

    def acquire(self, name: str) -> int:
        """Take the lab's lock or raise LabBusyError; returns the fd to keep open.

        The fd is handed to every short-lived program an executor starts (see the
        module docstring), until :meth:`release`.  A lock held for an instant by an
        observer is waited out (``OBSERVER_WAIT``); one held by the programs of an
        owner that died is waited out longer (``ORPHAN_WAIT``): they are finishing
        the owner's last batch.  A live owner makes it fail at once.
        """
        self.make_directory()
        path = self.lock_path(name)
        start = time.monotonic()
        orphans_seen = False
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                record = self._owner(name)
                owner = None if record is None else record.pid
                waited = time.monotonic() - start
                if record is not None and owner != os.getpid() and not self.owner_alive(record):
                    if not orphans_seen:
                        log.info(
                            "lab %r: process %d is gone; waiting for the programs it "
                            "started to finish",
                            name,
                            owner,
                        )
                        orphans_seen = True
                    if waited < ORPHAN_WAIT:
                        time.sleep(0.02)
                        continue
                    raise LabBusyError(
                        f"lab {name!r}: its process {owner} is gone, but programs it "
                        f"started still hold the lab after {ORPHAN_WAIT:g} s; "
                        "wait for them to end, then try again"
                    ) from None
                if owner != os.getpid() and waited < OBSERVER_WAIT:
                    time.sleep(0.005)
                    continue
                who = f" by process {owner}" if owner is not None else ""
                raise LabBusyError(f"lab {name!r} is already open{who}") from None
            if _is_file_at(fd, path):
                inherit_in_children(fd)
                return fd
            os.close(fd)  # its owner removed it as we took it: lock the new one

    def _owner(self, name: str) -> Record | None:
        try:
            return self.read(name)
        except NetnsKitError:
            return None

    @staticmethod
    def owner_alive(record: Record) -> bool:
        """Whether the process that wrote ``record`` still runs (the same process).

        An owner in another PID namespace cannot be looked up from here: it counts as
        alive, so that a held lock keeps its lab live (never recovered under a
        running owner); a lab whose lock nobody holds is stale all the same."""
        if record.owner_pidns is not None and record.owner_pidns != owners.pid_namespace():
            return True
        return owners.alive(record.pid, record.owner_started)

    def condition(self, record: Record) -> str:
        """``live``, ``dying`` or ``stale``: how a lab stands, judged by its owner.

        live: its lock is held and its owner runs (or, for a kept lab, somebody is
        acting on it).  dying: its owner is dead, but programs it started still hold
        the lock, finishing its last batch; :func:`recover` waits for them.  stale:
        nobody holds it.  A dying lab is as good as stale: nobody will close it.
        """
        if not self.is_live(record.name):
            return "stale"
        if record.state == "kept" or self.owner_alive(record):
            return "live"
        return "dying"

    @staticmethod
    def release(fd: int) -> None:
        stop_inheriting(fd)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(fd)

    def is_live(self, name: str) -> bool:
        """Whether a live process (or a program it started) holds the lab's lock.

        It only looks: no lock file is created, and the shared lock it takes for an
        instant never makes an opener fail (:meth:`acquire` waits for it).
        """
        path = self.lock_path(name)
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return False
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                if _is_file_at(fd, path):
                    return False
            finally:
                os.close(fd)  # closing drops the shared lock
            # the file was replaced as we looked (a lab closed, another opened): again

    @contextlib.contextmanager
    def held(self, name: str) -> Iterator[None]:
        fd = self.acquire(name)
        try:
            yield
        finally:
            self.release(fd)

    def owner_note(self, entry: Entry, asking: str) -> str:
        """Whose ``entry``'s name is, and what to do about it, for an "exists" error."""
        name = entry.name
        lab = self.owner_of(entry.kind, name, entry.namespace)
        if lab is None or lab == asking:
            return f"{name!r} was not made by a netns_kit lab: pick another name"
        record = self.read(lab)
        if record is not None and self.condition(record) == "live":
            return f"{name!r} belongs to lab {lab!r}, open in a live process: close it there"
        how = (
            "kept up" if record is not None and record.state == "kept" else "left by a dead process"
        )
        return (
            f"{name!r} belongs to lab {lab!r} ({how}): remove it with "
            f"`netns-kit down {lab}` or netns_kit.recover({lab!r})"
        )

    def owner_of(self, kind: str, name: str, namespace: str | None = None) -> str | None:
        """The lab whose record names this resource, if any."""
        for record in self.records():
            for entry in record.resources:
                same = entry.kind == kind and entry.name == name
                if same and (kind == "namespace" or entry.namespace == namespace):
                    return record.name
        return None


def _is_file_at(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (a closing lab unlinks its lock)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def stale_labs(directory: str | os.PathLike[str] | None = None) -> list[Record]:
    """Records whose owner process is gone: what :func:`recover` would clean up.

    A lab is judged by its owner (:meth:`Registry.condition`): one whose owner died
    while programs it started still hold its lock is stale too ("dying"), and
    :func:`recover` waits for those programs before it removes anything.
    """
    registry = Registry(directory)
    return [r for r in registry.records() if registry.condition(r) != "live"]


@validate.renamed_keywords(hosts="machines")
def recover(
    name: str,
    *,
    executor: Executor | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    machines: Mapping[str, Executor] | None = None,
) -> list[str]:
    """Remove everything a dead lab left, from its record and the tags; returns what.

    Raises LabBusyError when the lab's process is still alive: close it there instead.
    Programs a dead owner started that still run are waited for (see the module
    docstring).

    A lab spread over machines is cleaned on every machine: through ``machines`` (the
    lab's names for its machines, to executors) where given, else through
    executors made again from what the record says of each (an ssh target and its
    options, or this machine); those are closed afterwards.
    """
    ex = executor or default_executor()
    registry = Registry(state_dir)
    with registry.held(name):
        record = registry.read(name)
        removed = [] if record is None else undo_record(record, ex, machines)
        registry.remove(name)
    lease = check_lease(name)
    leftover = registry.read(lease) if ":" not in name else None
    if leftover is not None and registry.condition(leftover) != "live":
        removed += recover(lease, executor=ex, state_dir=state_dir)  # a check that died
    return removed


def undo_record(
    record: Record, ex: Executor, machines: Mapping[str, Executor] | None = None
) -> list[str]:
    """Undo a record's resources in reverse, each only if it still carries our mark.

    A link must still carry the lab's alias, a sysctl must still hold the value the
    lab set, and an entry with a ``check`` argv (an iptables ``-C``) must still pass
    it.  What lives in a namespace that is being deleted goes with it.  A rootless
    lab's resources all go with its sandbox's holder, which is killed if it still runs.
    A lab spread over machines is undone on each, side by side (see :func:`recover`).
    """
    if record.sandbox is not None:
        holder = stop_holder(record.sandbox)
        gone = [f"namespace {n}" for n in reversed(record.namespaces())]
        return gone + ([f"sandbox holder {record.sandbox.pid}"] if holder else [])
    tag = tag_for(record.name)
    if not record.machines:
        return _undo_entries(record.resources, ex, tag)
    executors, made = _machines(record, machines)
    first = next(iter(record.machines))
    try:
        with ThreadPoolExecutor(len(executors), initializer=quiet_thread) as pool:
            futures = [
                pool.submit(
                    _undo_entries,
                    [e for e in record.resources if (e.machine or first) == machine],
                    executors[machine],
                    tag,
                )
                for machine in record.machines
            ]
            done = zip(record.machines, futures, strict=True)
            return [f"{what} on {machine}" for machine, future in done for what in future.result()]
    finally:
        for executor in made:
            getattr(executor, "close", lambda: None)()


def _machines(
    record: Record, machines: Mapping[str, Executor] | None
) -> tuple[dict[str, Executor], list[Executor]]:
    """An executor for each machine of the record: given, or made again (and then
    closed by the caller)."""
    from netns_kit.executors.dispatch import rebuild  # routing knows ssh; nothing below it needs to

    executors: dict[str, Executor] = {}
    made: list[Executor] = []
    for machine, known in record.machines.items():
        given = None if machines is None else machines.get(machine)
        if given is None:
            given = rebuild(known.get("executor", {}))
            if given is None:
                raise NetnsKitError(
                    f"lab {record.name!r} spans machines {', '.join(record.machines)}; its "
                    f"record cannot reach {machine!r} by itself: "
                    f"pass machines={{{machine!r}: executor, ...}}"
                )
            made.append(given)
        executors[machine] = given
    return executors, made


def _undo_entries(entries: Sequence[Entry], ex: Executor, tag: str) -> list[str]:
    """Undo the entries of one machine (see :func:`undo_record`)."""
    alive = set(state.namespace_names(ex))
    named = [e.name for e in entries if e.kind == "namespace"]
    reporter = progress.active()
    doomed = []
    for done, name in enumerate(named):
        if reporter is not None:
            reporter.waiting(progress.OWNERSHIP, done, len(named))
        if name in alive and _namespace_is_ours(ex, name, tag):
            doomed.append(name)
    if reporter is not None and named:
        reporter.waiting(progress.OWNERSHIP, len(named), len(named))
    removed: list[str] = []
    steps: list[Command] = []
    # Daemons first, whatever became of their namespace: a daemon keeps even a
    # deleted namespace alive, and its directory must outlive it.
    daemons = [e for e in reversed(entries) if e.kind == "daemon"]
    for entry in daemons:
        if entry.undo is not None and _still_ours(ex, entry, tag):
            steps.append(Command(entry.undo))
            removed.append(f"{entry.kind} {entry.name}")
    for entry in reversed(entries):
        where = entry.namespace
        if entry.kind in ("namespace", "daemon") or where in doomed:
            continue
        if where is not None and where not in alive:
            continue
        if entry.undo is None or not _still_ours(ex, entry, tag):
            continue
        steps.append(Command(entry.undo, namespace=where))
        removed.append(f"{entry.kind} {entry.name}")
    for name in reversed(doomed):
        steps += Namespace(name).delete_commands()
        removed.append(f"namespace {name}")
    Runner(ex).run_all(steps, keep_going=True)
    return removed


def _still_ours(ex: Executor, entry: Entry, tag: str) -> bool:
    runner = Runner(ex)
    if entry.kind == "link":
        found = state.link(ex, entry.name, entry.namespace)
        return found is not None and found.alias == tag
    if entry.kind == "sysctl":
        read = in_namespace(("sysctl", "-n", entry.name), entry.namespace, read=True)
        return runner.run(read, check=False).stdout.strip() == entry.value
    if entry.kind == "daemon":  # the same process: its PID and its start time
        return _same_process(runner, entry.value)
    if entry.check is not None:
        return bool(runner.run(Command(entry.check, read=True), check=False))
    return True


def _same_process(runner: Runner, value: str | None) -> bool:
    """Whether ``"PID STARTTIME"`` still names a running process (field 22 of
    ``/proc/PID/stat``, counted after the program name, which may hold spaces)."""
    if not value or len(value.split()) != 2:
        return False
    pid, started = value.split()
    found = runner.run(Command(("cat", f"/proc/{pid}/stat"), read=True), check=False)
    fields = found.stdout.rpartition(")")[2].split() if found else []
    return len(fields) > 19 and fields[19] == started


def _namespace_is_ours(ex: Executor, name: str, tag: str) -> bool:
    """Whether a namespace named in a record is really the lab's.

    Ours when its ``lo`` carries the lab's alias.  A lab tags ``lo`` (and brings it
    up) in the namespace's own settings batch, after its links are made, so a crash
    in between leaves a namespace whose ``lo`` is still down and untagged: that is
    ours too.  A namespace somebody else made and used has ``lo`` up, so it stays.
    """
    lo = state.loopback(ex, name)
    if lo is None:
        return False
    alias, up = lo
    return alias == tag or (not up and not alias)
