"""The registry: atomic records, flock locks, stale labs and recover(), with a fake
executor answering ``ip -j`` as the kernel would.  No root needed."""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import attrs
import pytest

from netns_kit import (
    Command,
    Lab,
    LabBusyError,
    NetnsKitError,
    RecordingExecutor,
    ShellExecutor,
    recover,
    stale_labs,
)
from netns_kit.engine.step import Entry
from netns_kit.record.registry import Record, Registry, state_dir, tag_for

TAG = tag_for("old")


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "state")


def test_state_dir_comes_from_the_argument_then_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NETNS_KIT_STATE_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert state_dir() == Path("/run/netns-kit")
    monkeypatch.setenv("NETNS_KIT_STATE_DIR", str(tmp_path))
    assert state_dir() == tmp_path
    assert state_dir(tmp_path / "x") == tmp_path / "x"
    assert tag_for("demo") == "netns-kit:demo"


# -- records ----------------------------------------------------------------------------
def test_a_record_round_trips_through_json(registry: Registry) -> None:
    record = Record("lab", 42, True, "lab-host", "up", [Entry("namespace", "a")])
    registry.write(record)
    assert registry.read("lab") == record
    on_disk = json.loads(registry.record_path("lab").read_text())
    assert on_disk["pid"] == 42 and on_disk["resources"] == [{"kind": "namespace", "name": "a"}]
    assert registry.read("nothing") is None


def test_a_record_is_written_with_the_words_of_0_3(registry: Registry) -> None:
    machines = {"a": {"executor": {"local": True}, "underlay": "10.0.0.1"}}
    record = Record("lab", 42, True, "lab-host", "up", [Entry("namespace", "a", machine="a")])
    record.machines = machines
    registry.write(record)
    on_disk = json.loads(registry.record_path("lab").read_text())
    assert on_disk["host_side"] == "lab-host" and on_disk["machines"] == machines
    assert "host" not in on_disk and "hosts" not in on_disk
    assert on_disk["resources"] == [{"kind": "namespace", "name": "a", "machine": "a"}]
    assert registry.read("lab") == record


def test_a_record_written_by_0_2_is_still_read(registry: Registry) -> None:
    """0.2 wrote ``host`` (the host side), ``hosts`` (the machines) and a ``host`` on
    each resource line: a lab it left must still be recovered."""
    machines = {"a": {"executor": {"local": True}}, "b": {"executor": {"local": True}}}
    old = {
        "name": "lab",
        "pid": 42,
        "isolated": True,
        "host": "lab-host",
        "state": "up",
        "hosts": machines,
        "resources": [
            {"kind": "namespace", "name": "lab-host", "host": "a"},
            {"kind": "namespace", "name": "red", "host": "b"},
        ],
    }
    registry.write(Record("lab", 42))  # makes the state directory as 0.2 would have
    registry.record_path("lab").write_text(json.dumps(old))
    record = registry.read("lab")
    assert record is not None
    assert (record.host_side, record.machines) == ("lab-host", machines)
    assert [(e.name, e.machine) for e in record.resources] == [("lab-host", "a"), ("red", "b")]


def test_a_record_is_written_atomically(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.write(Record("lab", 1))
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        renames.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    registry.write(Record("lab", 2))
    assert registry.read("lab") == Record("lab", 2)
    [(src, dst)] = renames
    assert Path(src).parent == registry.directory  # same file system: rename is atomic
    assert dst == str(registry.record_path("lab"))

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # the process is interrupted just before the rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        registry.write(Record("lab", 3, resources=[Entry("namespace", "x")]))
    assert registry.read("lab") == Record("lab", 2)  # the old record, whole
    assert sorted(p.name for p in registry.directory.iterdir()) == ["lab.json"]  # no temp


def test_an_interrupt_just_after_the_temp_file_is_made_leaves_no_temp(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C is delivered when a system call returns: here, once the temp file exists
    but before the caller has its name.  The state directory must not keep it."""
    registry.write(Record("lab", 1))

    def interrupted_open(path: str, mode: str = "r") -> Any:
        builtins.open(path, mode).close()
        raise KeyboardInterrupt

    monkeypatch.setattr("netns_kit.record.registry.open", interrupted_open, raising=False)
    with pytest.raises(KeyboardInterrupt):
        registry.write(Record("lab", 2))
    assert sorted(p.name for p in registry.directory.iterdir()) == ["lab.json"]
    registry.temp_path("lab").write_text("{")  # left by a process that was killed
    registry.remove("lab")
    assert list(registry.directory.iterdir()) == []


def test_a_damaged_record_is_reported_with_its_path(registry: Registry) -> None:
    registry.directory.mkdir(parents=True)
    registry.record_path("lab").write_text('{"name": "lab", "pi')
    with pytest.raises(NetnsKitError, match=r"lab\.json is damaged"):
        registry.read("lab")


def test_remove_takes_the_record_and_the_lock(registry: Registry) -> None:
    registry.write(Record("lab", 1))
    registry.release(registry.acquire("lab"))
    registry.remove("lab")
    registry.remove("lab")  # twice is fine
    assert list(registry.directory.iterdir()) == []


def test_owner_of_finds_the_lab_that_recorded_a_resource(registry: Registry) -> None:
    registry.write(Record("a", 1, resources=[Entry("namespace", "red")]))
    link = Entry("link", "br0", None)
    registry.write(Record("b", 1, resources=[link]))
    assert registry.owner_of("namespace", "red") == "a"
    assert registry.owner_of("link", "br0") == "b"
    assert registry.owner_of("link", "br0", "elsewhere") is None
    assert registry.owner_of("namespace", "blue") is None


# -- locks ------------------------------------------------------------------------------
def test_a_lock_is_refused_to_the_same_process_too(registry: Registry) -> None:
    registry.write(Record("lab", os.getpid()))
    fd = registry.acquire("lab")
    with pytest.raises(LabBusyError, match=f"'lab' is already open by process {os.getpid()}"):
        registry.acquire("lab")
    assert registry.is_live("lab")
    registry.release(fd)
    assert not registry.is_live("lab")
    registry.release(registry.acquire("lab"))


def test_a_lock_file_removed_by_its_owner_meanwhile_is_not_trusted(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner closes its lab (removes the lock file, then unlocks) between our open
    and our flock: the lock we then get is on a file nobody else will ever open, so a
    third process could take the lab too.  acquire() must lock the file on disk."""
    registry.release(registry.acquire("lab"))
    real_flock = fcntl.flock
    removed: list[bool] = []

    def owner_closes_meanwhile(fd: int, operation: int) -> None:
        if not removed:
            removed.append(True)
            registry.lock_path("lab").unlink()
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", owner_closes_meanwhile)
    fd = registry.acquire("lab")
    monkeypatch.setattr(fcntl, "flock", real_flock)
    try:
        assert os.fstat(fd).st_ino == registry.lock_path("lab").stat().st_ino
        with pytest.raises(LabBusyError):  # a third party is refused
            registry.acquire("lab")
    finally:
        registry.release(fd)


def test_a_second_lab_of_the_same_name_is_busy_in_the_same_process(tmp_path: Path) -> None:
    first_ex, second_ex = RecordingExecutor(), RecordingExecutor()
    with Lab("same", executor=first_ex, state_dir=tmp_path) as first:
        first.namespace("red")
        second = Lab("same", executor=second_ex, state_dir=tmp_path)
        with pytest.raises(LabBusyError, match=f"already open by process {os.getpid()}"):
            second.open()
        assert second_ex.commands == []
        with pytest.raises(LabBusyError):
            second.namespace("blue")  # a builder opens it, and is refused the same way
        assert second_ex.commands == []
        with Lab("other", executor=second_ex, state_dir=tmp_path) as other:
            other.namespace("blue")
        first.namespace("green")  # undisturbed
    assert first_ex.commands[-2:] == [("ip", "netns", "delete", n) for n in ("green", "red")]
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    """The pid of a process that has certainly ended (ours, reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _hold_lock_in_child(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """A child that takes the lock at ``path``, says so, and keeps it ``seconds``."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "sys.stdout.write('locked\\n'); sys.stdout.flush()\n"
        f"time.sleep({seconds})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"locked\n"
    return child


def test_looking_at_a_lab_creates_no_lock_file(registry: Registry) -> None:
    """Defect 2 of issue 9: stale_labs() re-created <name>.lock of closed labs."""
    registry.write(Record("closed", _dead_pid()))
    assert not registry.is_live("closed")
    assert [r.name for r in stale_labs(registry.directory)] == ["closed"]
    assert sorted(p.name for p in registry.directory.iterdir()) == ["closed.json"]


def test_an_observer_never_makes_an_opener_fail(registry: Registry) -> None:
    """Defect 2 of issue 9: an opener that meets stale_labs()/is_live() looking at the
    lock waits the instant out instead of raising LabBusyError."""
    path = registry.lock_path("lab")
    registry.directory.mkdir(parents=True)
    path.touch()
    observer = os.open(path, os.O_RDONLY)
    fcntl.flock(observer, fcntl.LOCK_SH)  # what is_live() holds for an instant
    looked_away = threading.Event()

    def look_away() -> None:
        os.close(observer)  # drops the shared lock
        looked_away.set()

    timer = threading.Timer(0.2, look_away)
    timer.start()
    try:
        fd = registry.acquire("lab")
    finally:
        timer.join()
    try:
        # it waited: it could only take the lock once the observer had let go
        assert looked_away.is_set()
        # and the lock it returns is the lab's, held exclusively
        assert os.fstat(fd).st_ino == os.stat(path).st_ino
        other = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
            assert registry.is_live("lab")
        finally:
            os.close(other)
    finally:
        registry.release(fd)
    assert not registry.is_live("lab")  # released: free again


def test_many_observers_and_one_reopener_never_collide(registry: Registry) -> None:
    stop = threading.Event()
    looks = 0

    def look() -> None:
        nonlocal looks
        while not stop.is_set():
            registry.is_live("lab")
            stale_labs(registry.directory)
            looks += 1

    watchers = [threading.Thread(target=look) for _ in range(2)]
    for watcher in watchers:
        watcher.start()
    try:
        for _ in range(200):
            fd = registry.acquire("lab")
            registry.write(Record("lab", os.getpid()))
            registry.remove("lab")
            registry.release(fd)
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join()
    assert looks > 0
    assert list(registry.directory.iterdir()) == []


def test_the_programs_of_a_dead_owner_are_waited_for(registry: Registry) -> None:
    """Defect 1 of issue 9: after a kill -9, the owner's ``ip -batch`` still runs and
    holds the lab's lock (it inherited it); recovery waits for it instead of racing it."""
    registry.write(Record("lab", _dead_pid()))
    orphan = _hold_lock_in_child(registry.lock_path("lab"), 0.5)
    try:
        assert registry.is_live("lab")  # not stale while its programs still run
        fd = registry.acquire("lab")
        assert orphan.poll() is not None  # we got the lock only once it had ended
        registry.release(fd)
    finally:
        orphan.kill()
        orphan.wait()


def test_a_live_owner_is_busy_at_once(registry: Registry) -> None:
    registry.write(Record("lab", os.getpid()))
    holder = _hold_lock_in_child(registry.lock_path("lab"), 30)
    try:
        with pytest.raises(LabBusyError, match="already open by process"):
            registry.acquire("lab")
    finally:
        holder.kill()
        holder.wait()


def test_short_lived_programs_inherit_the_labs_lock(registry: Registry) -> None:
    """A program the lab starts keeps the lab locked while it runs, even after its
    parent is gone; background programs (start) do not get the lock."""
    fd = registry.acquire("lab")
    try:
        probe = f"test -e /proc/self/fd/{fd}"
        result = ShellExecutor().execute(Command(("sh", "-c", probe)))
        assert result.returncode == 0
    finally:
        registry.release(fd)
    result = ShellExecutor().execute(Command(("sh", "-c", probe)))
    assert result.returncode == 1


# -- stale labs -------------------------------------------------------------------------
def test_stale_labs_are_the_records_nobody_holds(registry: Registry) -> None:
    assert stale_labs(registry.directory) == []  # no directory yet
    registry.write(Record("dead", 999_999))
    registry.write(Record("alive", os.getpid()))
    fd = registry.acquire("alive")
    try:
        assert [r.name for r in stale_labs(registry.directory)] == ["dead"]
    finally:
        registry.release(fd)
    assert [r.name for r in stale_labs(registry.directory)] == ["alive", "dead"]


def test_a_kept_lab_is_stale_once_its_process_lets_go(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    lab = Lab("kept", executor=ex, state_dir=tmp_path)
    lab.namespace("red")
    lab.keep()
    assert lab.state == "kept"
    [record] = stale_labs(tmp_path)
    assert (record.name, record.state, record.pid) == ("kept", "kept", os.getpid())
    assert record.resources == [Entry("namespace", "red")]
    lab.close()  # does nothing to a kept lab
    lo_up = ("ip", "-n", "red", "link", "set", "dev", "lo", "up", "alias", tag_for("kept"))
    assert ex.commands[-1] == lo_up


# -- recover ----------------------------------------------------------------------------
def _links(*links: dict[str, Any]) -> str:
    return json.dumps(list(links))


def canned_kernel() -> RecordingExecutor:
    """What the kernel says after a lab called "old" died: some of its things are
    still tagged, some were re-tagged or changed by somebody else, some are gone."""
    ex = RecordingExecutor()
    names = ["old-a", "old-b", "old-d", "unrelated"]
    ex.answer(("ip", "-j", "netns", "list"), stdout=json.dumps([{"name": n} for n in names]))
    lo_tagged = {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "ifalias": TAG}
    lo_other = {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "ifalias": "netns-kit:other"}
    lo_pristine = {"ifname": "lo", "flags": ["LOOPBACK"]}
    ex.answer(
        ("ip", "-n", "old-a", "-j", "link", "show"), stdout=_links(lo_tagged, {"ifname": "x"})
    )
    ex.answer(("ip", "-n", "old-b", "-j", "link", "show"), stdout=_links(lo_other))
    ex.answer(("ip", "-n", "old-d", "-j", "link", "show"), stdout=_links(lo_pristine))
    for dev, alias in (("br-old", TAG), ("veth-x", "somebody else's")):
        answer = _links({"ifname": dev, "ifalias": alias})
        ex.answer(("ip", "-j", "link", "show", "dev", dev), stdout=answer)
    ex.answer(
        ("ip", "-n", "old-b", "-j", "link", "show", "dev", "in-b"),
        stdout=_links({"ifname": "in-b", "ifalias": TAG}),
    )
    ex.answer(
        ("ip", "-j", "link", "show", "dev", "gone"),
        returncode=1,
        stderr='Device "gone" does not exist.',
    )
    ex.answer(("sysctl", "-n", "net.ipv4.ip_forward"), stdout="1\n")  # as the lab set it
    ex.answer(("sysctl", "-n", "net.ipv4.conf.all.rp_filter"), stdout="0\n")  # changed since
    check = ("iptables", "-w", "-t", "nat", "-C", "POSTROUTING", "-s")
    ex.answer((*check, "10.0.0.0/24"), returncode=0)
    ex.answer((*check, "10.1.0.0/24"), returncode=1, stderr="iptables: Bad rule")
    return ex


def _rule(op: str, source: str) -> list[str]:
    return ["iptables", "-w", "-t", "nat", op, "POSTROUTING", "-s", source]


def _entry(kind: str, name: str, namespace: str | None, undo: list[str], **extra: Any) -> Entry:
    return Entry(kind, name, namespace, undo=undo, **extra)


def old_record() -> Record:
    sysctl = ["sysctl", "-q", "-w"]
    resources = [
        Entry("namespace", "old-a"),  # tagged: deleted
        Entry("namespace", "old-b"),  # somebody else's now: kept
        Entry("namespace", "old-c"),  # gone already
        Entry("namespace", "old-d"),  # made, never tagged (crash): deleted
        _entry("link", "br-old", None, ["ip", "link", "delete", "dev", "br-old"]),
        _entry("link", "in-a", "old-a", ["ip", "-n", "old-a", "link", "delete", "dev", "in-a"]),
        _entry("link", "veth-x", None, ["ip", "link", "delete", "dev", "veth-x"]),
        _entry("link", "gone", None, ["ip", "link", "delete", "dev", "gone"]),
        _entry("route", "10.8.0.0/16", None, ["ip", "route", "delete", "10.8.0.0/16", "dev", "x"]),
        _entry("route", "default", "old-c", ["ip", "-n", "old-c", "route", "delete", "default"]),
        _entry(
            "sysctl",
            "net.ipv4.ip_forward",
            None,
            [*sysctl, "net.ipv4.ip_forward=0"],
            value="1",
            previous="0",
        ),
        _entry(
            "sysctl",
            "net.ipv4.conf.all.rp_filter",
            None,
            [*sysctl, "net.ipv4.conf.all.rp_filter=1"],
            value="2",
            previous="1",
        ),
        _entry(
            "iptables",
            "10.0.0.0/24",
            None,
            _rule("-D", "10.0.0.0/24"),
            check=_rule("-C", "10.0.0.0/24"),
        ),
        _entry(
            "iptables",
            "10.1.0.0/24",
            None,
            _rule("-D", "10.1.0.0/24"),
            check=_rule("-C", "10.1.0.0/24"),
        ),
        _entry("link", "in-b", "old-b", ["ip", "-n", "old-b", "link", "delete", "dev", "in-b"]),
    ]
    return Record("old", 999_999, False, None, "up", resources)


def test_recover_removes_only_what_still_carries_the_labs_mark(registry: Registry) -> None:
    registry.write(old_record())
    ex = canned_kernel()
    removed = recover("old", executor=ex, state_dir=registry.directory)
    changes = [call.argv for call in ex.calls if not call.read]
    assert changes == [
        ("ip", "-n", "old-b", "link", "delete", "dev", "in-b"),
        tuple(_rule("-D", "10.0.0.0/24")),
        ("sysctl", "-q", "-w", "net.ipv4.ip_forward=0"),
        ("ip", "route", "delete", "10.8.0.0/16", "dev", "x"),
        ("ip", "link", "delete", "dev", "br-old"),
        ("ip", "netns", "delete", "old-d"),
        ("ip", "netns", "delete", "old-a"),
    ]
    assert removed == [
        "link in-b",
        "iptables 10.0.0.0/24",
        "sysctl net.ipv4.ip_forward",
        "route 10.8.0.0/16",
        "link br-old",
        "namespace old-d",
        "namespace old-a",
    ]
    assert not any("unrelated" in argv for argv in ex.commands)
    assert list(registry.directory.iterdir()) == []


def test_recover_refuses_a_lab_that_is_still_open(registry: Registry) -> None:
    registry.write(attrs.evolve(old_record(), pid=os.getpid()))
    ex = canned_kernel()
    fd = registry.acquire("old")
    try:
        with pytest.raises(LabBusyError):
            recover("old", executor=ex, state_dir=registry.directory)
    finally:
        registry.release(fd)
    assert ex.commands == []
    assert registry.read("old") == attrs.evolve(old_record(), pid=os.getpid())


def test_recover_of_an_unknown_lab_does_nothing(registry: Registry) -> None:
    ex = RecordingExecutor()
    assert recover("nobody", executor=ex, state_dir=registry.directory) == []
    assert ex.commands == []
    assert list(registry.directory.iterdir()) == []


def test_opening_a_lab_cleans_up_what_its_dead_namesake_left(registry: Registry) -> None:
    registry.write(Record("old", 999_999, resources=[Entry("namespace", "old-a")]))
    ex = canned_kernel()
    with Lab("old", executor=ex, state_dir=registry.directory) as lab:
        assert [c.argv for c in ex.calls if not c.read] == [("ip", "netns", "delete", "old-a")]
        record = registry.read("old")
        assert record is not None and record.pid == os.getpid() and record.resources == []
        lab.namespace("old-a")
    assert ex.commands[-1] == ("ip", "netns", "delete", "old-a")
