"""``kill -9`` in the middle of a big batch, then ``netns-kit cleanup`` at once (issue 19).

A child builds a 300-namespace lab in one ``with lab.batch()`` and is killed (SIGKILL,
by its PID) when a random number of its namespaces exist: its orphaned ``ip -batch``
still holds the lab's lock and keeps adding namespaces.  ``netns-kit ls`` must not call
that lab "building", and a ``netns-kit cleanup`` run at once must wait for the orphan and
then leave nothing: no namespace, no record, no lock file.  Every trial has its own lab
name (prefix ``t19``) and state directory; whatever a failing trial leaves is deleted.

On this machine the orphan often ends before a new interpreter has started, so most
trials put a shim in front of ``ip``: it runs the real namespace batch, then keeps the
inherited lock (parked) until the test lets it go.  That makes the window the issue
found certain instead of likely: ``ls`` must say ``dying``, and ``cleanup`` must say it
waits, still wait, and only then remove the lab.  Two trials run without the shim,
exactly as a user would meet it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import Kernel, sh

N = 300
#: How many namespaces the kernel may take at most to show the first one (a bound).
APPEAR_WAIT = 120.0

BUILD = """
import sys
from netns_kit import Lab

name, state, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with Lab(name, state_dir=state) as lab, lab.batch():
    switch = lab.bridge("br0", namespace=lab.namespace(f"{name}-sw"))
    for i in range(n):
        lab.link(lab.namespace(f"{name}-{i}"), switch, names=("eth0", f"p{i}"))
"""


SHIM = """#!/bin/sh
# Test shim for `ip`: the namespace batch runs for real; then this process (which holds
# the lab's lock, inherited) parks until the test creates {go} (at most 120 s).
case " $* " in
  *" -batch "*)
    tmp=$(mktemp)
    cat >"$tmp"
    "{real}" "$@" <"$tmp"
    rc=$?
    if grep -q "^netns add" "$tmp"; then
      echo $$ >"{parked}"
      i=0
      while [ ! -e "{go}" ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done
    fi
    rm -f "$tmp"
    exit $rc
    ;;
esac
exec "{real}" "$@"
"""


def _netns_dir() -> set[str]:
    """The namespaces the kernel has named, read straight from ``/run/netns`` (cheap
    enough to poll while a batch adds hundreds)."""
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _netns_kit(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netns_kit", "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _stop_parked(pid: int) -> None:
    """SIGKILL the parked shim if it is still there and still the shim (by its PID)."""
    for _ in range(100):  # it leaves within 0.05 s of the go file; bounded
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return
        if b"ip" not in cmdline:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def lab_name(uid: str, kernel: Kernel) -> Iterator[str]:
    """``t19c<uid>``; afterwards every namespace of it is deleted, also on failure."""
    name = f"t19c{uid}"
    yield name
    for ns in sorted(n for n in kernel.namespaces() if n.startswith(f"{name}-")):
        sh("ip", "netns", "delete", ns, check=False)


TRIALS = [("parked", t) for t in range(4)] + [("plain", t) for t in range(2)]


@pytest.mark.parametrize(("how", "trial"), TRIALS)
def test_cleanup_right_after_kill_9_in_the_namespace_batch(
    how: str, trial: int, lab_name: str, tmp_path: Path, kernel: Kernel
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    at = rng.randint(1, N - 50)  # kill once this many namespaces exist
    reap_first = trial % 2 == 0  # a shell reaps its child at once; a script may not
    why = f"({how}, seed {seed}, kill at {at} namespaces, reaped first: {reap_first})"
    state = tmp_path / "state"
    script = tmp_path / "build300.py"
    script.write_text(BUILD)
    env = dict(os.environ)
    go, parked = tmp_path / "go", tmp_path / "parked.pid"
    if how == "parked":
        real = shutil.which("ip")
        assert real is not None
        shim = tmp_path / "shim" / "ip"
        shim.parent.mkdir()
        shim.write_text(SHIM.format(real=real, parked=parked, go=go))
        shim.chmod(0o755)
        env["PATH"] = f"{shim.parent}:{env['PATH']}"
    child = subprocess.Popen(
        [sys.executable, str(script), lab_name, str(state), str(N)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    prefix = f"{lab_name}-"
    cleanup: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + APPEAR_WAIT
        while time.monotonic() < deadline and child.poll() is None:
            if sum(n.startswith(prefix) for n in _netns_dir()) >= at:
                break
        assert child.poll() is None, f"the build ended before the kill {why}: {child.stderr}"
        os.kill(child.pid, signal.SIGKILL)  # our own child, by its PID
        if reap_first:
            child.wait(timeout=30)

        listed = _netns_kit(state, "ls", "--json")
        assert listed.returncode == 0, listed.stderr
        states = [(lab["name"], lab["state"]) for lab in json.loads(listed.stdout)]
        assert len(states) == 1 and states[0][0] == lab_name, states
        # never "building": its owner is dead; with the orphan parked it is still dying
        expected = ("dying",) if how == "parked" else ("dying", "stale")
        assert states[0][1] in expected, f"{states} {why}"

        cleanup = subprocess.Popen(
            [sys.executable, "-m", "netns_kit", "--state-dir", str(state), "cleanup"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert cleanup.stdout is not None
        if how == "parked":
            first = cleanup.stdout.readline()  # it says it waits before it waits
            assert "waiting for the programs it started" in first, f"{first!r} {why}"
            assert cleanup.poll() is None  # still waiting for the parked orphan
            go.touch()
        out, err = cleanup.communicate(timeout=180)
        assert cleanup.returncode == 0, f"{err} {why}"
        assert f"lab {lab_name!r}: removed" in out, f"{out} {why}"
        left = sorted(n for n in kernel.namespaces() if n.startswith(prefix))
        assert left == [], f"{len(left)} namespaces left right after cleanup {why}"
        assert sorted(p.name for p in state.iterdir()) == [], why
        assert json.loads(_netns_kit(state, "ls", "--json").stdout) == []
    finally:
        go.touch()  # a parked shim goes on its own; stopped by PID if it did not
        if cleanup is not None and cleanup.poll() is None:
            cleanup.kill()
            cleanup.communicate()
        if parked.exists():
            _stop_parked(int(parked.read_text()))
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL, why
