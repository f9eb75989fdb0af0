"""A lab is judged by its owner process, not by its lock alone (issue 19, section 1).

After a ``kill -9`` the owner's orphaned programs (an ``ip -batch``) keep the lab's lock
held for a while.  Such a lab is "dying": ``stale_labs()`` counts it, ``netns-kit ls``
says so instead of "building", and ``netns-kit cleanup`` recovers it, waiting for the
orphans first.  Child processes stand in for the orphans; a fake executor for the kernel.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import pytest

from netns_kit import RecordingExecutor, cli, stale_labs
from netns_kit.engine.step import Entry
from netns_kit.lab.kept import KeptLab
from netns_kit.record import owner
from netns_kit.record.registry import Record, Registry, tag_for


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "state")


def _dead_pid() -> int:
    """The PID of a process that has certainly ended (ours, reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class Orphan:
    """A child holding a lab's lock, as an orphaned ``ip -batch`` does, until told to go."""

    def __init__(self, path: Path) -> None:
        code = (
            "import fcntl, os, sys\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "sys.stdout.write('locked\\n'); sys.stdout.flush()\n"
            "sys.stdin.read()\n"  # until the test closes our stdin
        )
        self.child = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.child.stdout is not None
        assert self.child.stdout.readline() == b"locked\n"

    def finish(self) -> None:
        assert self.child.stdin is not None
        self.child.stdin.close()

    def stop(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()


MakeOrphan = Callable[[str], Orphan]


@pytest.fixture
def orphan(registry: Registry) -> Iterator[MakeOrphan]:
    """A factory of lock-holding children, each killed (by PID) at the end of the test."""
    made: list[Orphan] = []

    def make(name: str) -> Orphan:
        registry.make_directory()
        made.append(Orphan(registry.lock_path(name)))
        return made[-1]

    yield make
    for one in made:
        one.stop()


# -- the owner process ---------------------------------------------------------------
def test_a_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    me = owner.started(os.getpid())
    assert me is not None
    assert owner.alive(os.getpid())
    assert owner.alive(os.getpid(), me)
    dead = _dead_pid()
    assert not owner.alive(dead)
    assert owner.started(dead) is None


def test_a_reused_pid_is_not_the_owner() -> None:
    """Another process with the owner's PID has another start time: the owner is dead."""
    me = owner.started(os.getpid())
    assert me is not None
    assert not owner.alive(os.getpid(), me + 1)


def test_a_killed_owner_not_yet_reaped_is_dead() -> None:
    """A zombie still answers ``kill(pid, 0)``, but it runs nothing and holds nothing."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert owner.alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        # wait (bounded) until the kernel made it a zombie, without reaping it
        for _ in range(2000):
            if not owner.alive(child.pid):
                break
            threading.Event().wait(0.005)
        assert not owner.alive(child.pid)
        assert Path(f"/proc/{child.pid}").exists()  # a zombie: not reaped yet
    finally:
        child.kill()
        child.wait()


def test_no_such_pid_is_dead() -> None:
    assert not owner.alive(0)
    assert not owner.alive(-1)


# -- the record notes its owner's start time --------------------------------------------
def test_a_record_made_by_its_owner_notes_the_start_time(registry: Registry) -> None:
    mine = Record("lab", os.getpid())
    assert mine.owner_started == owner.started(os.getpid())
    registry.write(mine)
    assert registry.read("lab") == mine
    assert json.loads(registry.record_path("lab").read_text())["owner_started"] is not None
    assert Record("other", 999_999).owner_started is None  # not ours to look up


def test_an_older_record_without_a_start_time_goes_by_the_pid(registry: Registry) -> None:
    registry.make_directory()
    text = json.dumps({"name": "old", "pid": os.getpid(), "state": "up", "resources": []})
    registry.record_path("old").write_text(text)
    record = registry.read("old")
    assert record is not None and record.owner_started is None
    assert registry.owner_alive(record)


# -- live, dying, stale ------------------------------------------------------------------
def test_a_lab_nobody_holds_is_stale(registry: Registry) -> None:
    record = Record("lab", os.getpid())
    registry.write(record)
    assert registry.condition(record) == "stale"


def test_a_held_lab_with_a_live_owner_is_live(registry: Registry) -> None:
    record = Record("lab", os.getpid())
    registry.write(record)
    with registry.held("lab"):
        assert registry.condition(record) == "live"
        assert stale_labs(registry.directory) == []


def test_a_held_lab_whose_owner_died_is_dying_and_stale(
    registry: Registry, orphan: MakeOrphan
) -> None:
    record = Record("lab", _dead_pid(), resources=[Entry("namespace", "a")])
    registry.write(record)
    orphan("lab")
    assert registry.is_live("lab")  # the lock alone says live
    assert registry.condition(record) == "dying"
    assert [r.name for r in stale_labs(registry.directory)] == ["lab"]
    assert KeptLab(record, registry).status(set()) == "dying"


def test_a_held_lab_whose_pid_was_reused_is_dying(registry: Registry, orphan: MakeOrphan) -> None:
    """The record names our PID but another start time: a process that got the PID."""
    me = owner.started(os.getpid())
    assert me is not None
    record = Record("lab", os.getpid(), owner_started=me - 1)
    registry.write(record)
    orphan("lab")
    assert registry.condition(record) == "dying"


def test_a_held_lab_whose_owner_is_in_another_pid_namespace_is_live(
    registry: Registry, orphan: MakeOrphan
) -> None:
    """From a container or a sandbox, the owner's PID names another process (or none):
    the lab must not look dying, or cleanup would take it from under its owner."""
    mine = Record("mine", os.getpid())
    assert mine.owner_pidns == owner.pid_namespace() and mine.owner_pidns is not None
    record = Record("lab", _dead_pid(), owner_pidns="pid:[1]")
    registry.write(record)
    assert registry.read("lab") == record  # the namespace is kept in the record
    orphan("lab")
    assert registry.condition(record) == "live"
    assert stale_labs(registry.directory) == []
    same = attrs.evolve(record, owner_pidns=owner.pid_namespace())
    assert registry.condition(same) == "dying"  # same namespace: judged by the PID


def test_a_kept_lab_being_taken_down_is_not_dying(registry: Registry, orphan: MakeOrphan) -> None:
    """A kept lab's owner (``netns-kit up``) is gone by design; whoever holds its lock
    now (``netns-kit down``) is acting on it."""
    record = Record("lab", _dead_pid(), state="kept")
    registry.write(record)
    orphan("lab")
    assert registry.condition(record) == "live"
    assert stale_labs(registry.directory) == []


# -- the command line ----------------------------------------------------------------------
def _cli(state: Path, *argv: str, ex: RecordingExecutor) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--state-dir", str(state), *argv], executor=ex, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _kernel_with(lab: str, *namespaces: str) -> RecordingExecutor:
    """A fake kernel holding ``namespaces``, each tagged as ``lab``'s."""
    ex = RecordingExecutor()
    listed = json.dumps([{"name": n} for n in namespaces])
    ex.answer(["ip", "-j", "netns", "list"], stdout=listed)
    lo = json.dumps([{"ifindex": 1, "ifname": "lo", "ifalias": tag_for(lab)}])
    for name in namespaces:
        ex.answer(["ip", "-n", name, "-j", "link", "show"], stdout=lo)
    return ex


def test_ls_never_shows_a_dead_owner_as_building(registry: Registry, orphan: MakeOrphan) -> None:
    registry.write(Record("kc", _dead_pid(), state="building"))
    orphan("kc")
    code, out, _ = _cli(registry.directory, "ls", "--json", ex=RecordingExecutor())
    assert code == 0
    assert [(x["name"], x["state"]) for x in json.loads(out)] == [("kc", "dying")]


class ReleasingOut(io.StringIO):
    """cleanup's stdout: once cleanup says it waits, the orphan finishes its batch."""

    def __init__(self, held: Orphan) -> None:
        super().__init__()
        self.held = held
        self.alive_when_waiting: list[bool] = []

    def write(self, text: str) -> int:
        if "waiting for the programs" in text:
            self.alive_when_waiting.append(self.held.child.poll() is None)
            self.held.finish()
        return super().write(text)


def test_cleanup_recovers_a_dying_lab_after_its_orphans(
    registry: Registry, orphan: MakeOrphan
) -> None:
    """The issue's reproduction, on a fake kernel: cleanup right after the kill waits for
    the orphaned batch (it may still be adding namespaces) and then removes the lab."""
    dead = _dead_pid()
    names = [Entry("namespace", "kc-1"), Entry("namespace", "kc-2")]
    registry.write(Record("kc", dead, resources=names))
    held = orphan("kc")
    ex = _kernel_with("kc", "kc-1", "kc-2")
    out, err = ReleasingOut(held), io.StringIO()
    code = cli.main(
        ["--state-dir", str(registry.directory), "cleanup"], executor=ex, stdout=out, stderr=err
    )
    assert code == 0, err.getvalue()
    assert out.alive_when_waiting == [True]  # it still ran when the cleanup began
    assert held.child.poll() is not None  # and had ended before the cleanup returned
    assert out.getvalue().splitlines() == [
        f"lab 'kc': process {dead} died; waiting for the programs it started to finish",
        "lab 'kc': removed 2 resources",
    ]
    deletes = [" ".join(a) for a in ex.commands if "delete" in a]
    assert deletes == ["ip netns delete kc-2", "ip netns delete kc-1"]
    assert registry.read("kc") is None
    assert not registry.lock_path("kc").exists()


def test_cleanup_reports_orphans_that_outlive_the_wait(
    registry: Registry, orphan: MakeOrphan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dying lab whose programs never end is a failure of cleanup, not "no stale labs"."""
    monkeypatch.setattr("netns_kit.record.registry.ORPHAN_WAIT", 0.05)
    registry.write(Record("kc", _dead_pid(), resources=[Entry("namespace", "kc-1")]))
    orphan("kc")
    code, out, err = _cli(registry.directory, "cleanup", ex=_kernel_with("kc", "kc-1"))
    assert code == 1
    assert "cleaning up lab 'kc' failed" in err and "still hold the lab" in err
    assert "no stale labs" not in out
    assert registry.read("kc") is not None  # nothing was removed under the orphan
