"""Programs started detached (executors/detached.py) on the real kernel: inside a
namespace of ours, not our children, in a session of their own, their output in their
logs, known by PID and start time, stopped by PID.  Read back from /proc."""

from __future__ import annotations

import functools
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from netns_kit import FakeMachines, Namespace, ShellExecutor
from netns_kit.command import in_namespace
from netns_kit.executors import quiet_thread, start_detached
from netns_kit.record.journal import shielded

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"qa{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def stat_fields(pid: int) -> list[str]:
    """Fields 3 on of /proc/PID/stat (after the program name)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def blocked(pid: int) -> int:
    """The signals a process blocks (``SigBlk`` of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigBlk for {pid}")


def runs_sleep(pid: int) -> bool:
    return Path(f"/proc/{pid}/comm").read_text() == "sleep\n"


def gone(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_detached_programs_run_in_the_namespace_and_write_to_their_logs(
    namespace: str, tmp_path: Path
) -> None:
    ex = ShellExecutor()
    logs = [str(tmp_path / "a.log"), str(tmp_path / "b.log"), str(tmp_path / "none/c.log")]
    commands = [
        in_namespace(("sh", "-c", "echo out-a; echo err-a >&2; exec sleep 60"), namespace),
        in_namespace(("sleep", "61"), namespace),
        in_namespace(("sleep", "62"), namespace),  # its log's directory is missing
    ]
    with shielded():  # as the lab starts them: Ctrl-C and SIGTERM held meanwhile
        started = start_detached(ex, commands, logs)
    try:
        a, b, c = started
        assert c.pid == 0 and not c.running and "none/c.log" in c.said()[1]
        theirs = os.stat(f"/run/netns/{namespace}").st_ino
        for p in (a, b):  # the launcher's subshell, until it becomes the program
            assert until(functools.partial(runs_sleep, p.pid))
            assert p.running
            fields = stat_fields(p.pid)
            assert fields[19] == p.started_at  # the start time the launcher said
            assert int(fields[1]) != os.getpid()  # not our child
            assert os.getsid(p.pid) != os.getsid(0)  # a Ctrl-C here never reaches it
            assert os.stat(f"/proc/{p.pid}/ns/net").st_ino == theirs  # never the root's
            assert not blocked(p.pid) & (1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1))
        said = Path(logs[0]).read_text()
        assert "out-a" in said and "err-a" in said
        assert Path(f"/proc/{b.pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"61"]
    finally:
        for p in started:
            p.stop(5)
    for p in (a, b):
        assert not p.running
        assert until(functools.partial(gone, p.pid))


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="fake machines need sshd")
def test_over_ssh_the_machine_starts_them_and_they_are_stopped_there(
    fake_machines: Callable[..., FakeMachines],
) -> None:
    """A fake machine shares this machine's PIDs: what the launcher said is read back
    from /proc here; the program runs in the machine's namespace, its output in its
    log on the machine."""
    (machine,) = fake_machines(1, prefix="qa")
    assert machine.sshd is not None
    ex = machine.executor()
    name = f"qa{secrets.token_hex(3)}"
    ns = Namespace(name, executor=ex).create()
    log = f"/tmp/{name}.log"
    try:
        command = in_namespace(("sh", "-c", "echo said-it; exec sleep 30"), name)
        (process,) = start_detached(ex, [command], [log])
        try:
            assert until(functools.partial(runs_sleep, process.pid))
            assert process.running and process.machine_pid == process.pid
            assert stat_fields(process.pid)[19] == process.started_at
            on = ("nsenter", "--target", str(machine.sshd.pid), "--mount", "--net", "--")
            inode = subprocess.run(
                [*on, "stat", "-L", "-c", "%i", f"/run/netns/{name}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert os.stat(f"/proc/{process.pid}/ns/net").st_ino == int(inode)
            said = subprocess.run([*on, "cat", log], capture_output=True, text=True, check=True)
            assert "said-it" in said.stdout
        finally:
            process.stop(5)
        assert not process.running
        assert until(functools.partial(gone, process.pid))
    finally:
        ns.delete()
        mount = ("nsenter", "--target", str(machine.sshd.pid), "--mount", "--")
        subprocess.run([*mount, "rm", "-f", log], check=False)


def test_a_program_started_from_a_worker_thread_does_not_block_sigterm(namespace: str) -> None:
    """A worker holds Ctrl-C and SIGTERM (quiet_thread); a background program it starts
    must not: else SIGTERM does not stop it, and ``stop`` waits, then kills."""
    ex = ShellExecutor()
    with ThreadPoolExecutor(1, initializer=quiet_thread) as pool:
        process = pool.submit(ex.start, in_namespace(("sleep", "60"), namespace)).result()
    try:
        assert until(functools.partial(runs_sleep, process.pid))
        assert not blocked(process.pid) & (1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1))
        process.send_signal(signal.SIGTERM)
        assert until(lambda: not process.running)  # SIGTERM ended it
    finally:
        process.stop(5)
