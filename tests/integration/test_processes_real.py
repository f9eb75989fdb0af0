"""Background processes and pings in a real, isolated lab.

The lab is the seed's bridge lab with unique names (``pr-<uid>``): red and blue, each
on bridge ``v-net-0`` in the lab's own host namespace.  An HTTP server runs in blue
and red fetches from it; every packet stays inside the lab.  The lab must stop its
processes when it closes, also when the ``with`` block raised: afterwards the PID is
gone (not running, not a zombie).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from netns_kit import Lab, Namespace
from netns_kit.errors import CommandTimeoutError
from netns_kit.executors import Process

from .conftest import Kernel

RED, BLUE, NOBODY = "192.168.15.1", "192.168.15.2", "192.168.15.99"
PORT = 8000
FETCH = (
    "import sys, urllib.request as r; "
    "opener = r.build_opener(r.ProxyHandler({})); "  # never a proxy from the environment
    "print(opener.open(sys.argv[1], timeout=2).read().decode(), end='')"
)


def build(lab: Lab) -> tuple[Namespace, Namespace]:
    """The seed's bridge lab inside ``lab``: red and blue on v-net-0."""
    red = lab.namespace(f"{lab.name}-red")
    blue = lab.namespace(f"{lab.name}-blue")
    bridge = lab.bridge("v-net-0", "192.168.15.5/24")
    lab.link(red, bridge, addresses=(f"{RED}/24", None), names=("veth-red", "veth-red-br"))
    lab.link(blue, bridge, addresses=(f"{BLUE}/24", None), names=("veth-blue", "veth-blue-br"))
    return red, blue


def serve(ns: Namespace, directory: Path) -> Process:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hello.txt").write_text(f"hello from {ns.name}\n")
    argv = ["python3", "-m", "http.server", str(PORT), "--bind", BLUE, "--directory"]
    return ns.popen([*argv, str(directory)])


def fetch(ns: Namespace, url: str, tries: int = 50) -> str:
    """GET ``url`` from inside ``ns``, retrying while the server starts (bounded)."""
    for _ in range(tries):
        result = ns.run(["python3", "-c", FETCH, url], check=False, timeout=10)
        if result:
            return result.stdout
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer from {ns.name}: {result.stderr}")


def alive(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is still our program: running, or a zombie nobody reaped.

    A PID taken over by some other program (``marker`` not on its command line)
    counts as gone.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state == "Z" or marker in cmdline


def test_server_fetched_across_namespaces_and_stopped_on_close(
    prefix: str, tmp_path: Path, kernel: Kernel
) -> None:
    site = tmp_path / prefix
    with Lab(prefix, isolated=True) as lab:
        red, blue = build(lab)
        server = serve(blue, site)
        assert lab.processes == [server]
        assert fetch(red, f"http://{BLUE}:{PORT}/hello.txt") == f"hello from {blue.name}\n"
        pid = server.pid
        assert alive(pid, str(site).encode()), "the PID we were given is not the server"
        assert server.running
    assert lab.processes == []
    assert not server.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not alive(pid, str(site).encode())
    log = server.wait()  # what the server printed is still there to read
    assert '"GET /hello.txt HTTP/1.1" 200' in log.stderr
    assert f"Serving HTTP on {BLUE} port {PORT}" in log.stdout
    assert not [ns for ns in kernel.namespaces() if ns.startswith(prefix)]


def test_server_stopped_when_the_with_block_raises(
    prefix: str, tmp_path: Path, kernel: Kernel
) -> None:
    site = tmp_path / prefix
    pid = 0
    with (
        pytest.raises(RuntimeError, match="experiment went wrong"),
        Lab(prefix, isolated=True) as lab,
    ):
        red, blue = build(lab)
        server = serve(blue, site)
        fetch(red, f"http://{BLUE}:{PORT}/hello.txt")
        pid = server.pid
        assert alive(pid, str(site).encode())
        raise RuntimeError("experiment went wrong")
    assert pid and not alive(pid, str(site).encode())
    assert not server.running
    assert not [ns for ns in kernel.namespaces() if ns.startswith(prefix)]


def test_process_output_wait_stop_and_running(prefix: str, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "open(sys.argv[1], 'w').close(); time.sleep(120)"
    )
    with Lab(prefix, isolated=True) as lab:
        red, _ = build(lab)

        done = red.popen(["sh", "-c", "echo out; echo err >&2; exit 3"])
        result = done.wait(timeout=30)
        assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert not done.running

        sleeper = red.popen(["sleep", "120"])
        assert sleeper.running
        with pytest.raises(CommandTimeoutError):
            sleeper.wait(timeout=0.2)
        stopped = sleeper.stop()
        assert stopped.returncode == -15  # SIGTERM
        assert not sleeper.running
        assert not alive(sleeper.pid, b"sleep")

        deaf = red.popen(["python3", "-c", stubborn, str(ready)])
        for _ in range(100):  # wait until it ignores SIGTERM (bounded)
            if ready.exists():
                break
            time.sleep(0.05)
        assert ready.exists(), "the SIGTERM-ignoring program never started"
        killed = deaf.stop(timeout=0.5)
        assert killed.returncode == -9  # SIGTERM ignored, so SIGKILL
        assert not alive(deaf.pid, b"SIG_IGN")

        late = red.popen(["sleep", "120"])  # left for the lab to stop
        assert len(lab.processes) == 4
    assert not late.running
    assert not alive(late.pid, b"sleep")


def test_ping_reports_replies_loss_and_round_trip_times(prefix: str) -> None:
    with Lab(prefix, isolated=True) as lab:
        red, blue = build(lab)
        good = red.ping(BLUE, count=3)
        assert good
        assert (good.address, good.sent, good.received, good.loss) == (BLUE, 3, 3, 0.0)
        assert good.rtt_min is not None and good.rtt_avg is not None and good.rtt_max is not None
        assert 0 <= good.rtt_min <= good.rtt_avg <= good.rtt_max
        assert blue.ping(RED)

        lost = red.ping(NOBODY, count=2, timeout=0.5)  # in the lab's subnet; nobody has it
        assert not lost
        assert (lost.sent, lost.received, lost.loss) == (2, 0, 100.0)
        assert (lost.rtt_min, lost.rtt_avg, lost.rtt_max) == (None, None, None)
