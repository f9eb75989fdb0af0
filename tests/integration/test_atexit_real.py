"""A lab left open when the interpreter exits is torn down (the ``atexit`` path).

A child process opens a lab (plain, and rootless), builds two namespaces joined by a
veth pair, says so, waits for a line on stdin (the test reads the kernel meanwhile),
and then returns from its script without closing the lab.  Afterwards the kernel
holds nothing of it, the state directory is empty, and a rootless lab's sandbox
holder is gone.  Names start with ``t19x``; whatever a failing test leaves is deleted.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit.record import owner

from .conftest import Kernel, sh

CHILD = """
import sys
from netns_kit import Lab

name, state, rootless = sys.argv[1], sys.argv[2], sys.argv[3] == "rootless"
lab = Lab(name, isolated=True, state_dir=state, rootless=rootless)
lab.open()
a, b = lab.namespace(f"{name}-a"), lab.namespace(f"{name}-b")
lab.link(a, b, addresses=("10.219.0.1/24", "10.219.0.2/24"), names=("eth0", "eth0"))
holder = lab.sandbox.pid if lab.sandbox is not None else 0
print("BUILT", holder, flush=True)
sys.stdin.readline()
# returns without lab.close(): the interpreter's exit must tear the lab down
"""


@pytest.fixture
def name(uid: str, kernel: Kernel) -> Iterator[str]:
    lab = f"t19x{uid}"
    yield lab
    for ns in kernel.namespaces():
        if ns.startswith(lab):
            sh("ip", "netns", "delete", ns, check=False)


@pytest.mark.parametrize("how", ["root", "rootless"])
def test_a_lab_left_open_at_exit_is_torn_down(
    how: str, name: str, tmp_path: Path, kernel: Kernel
) -> None:
    state = tmp_path / "state"
    script = tmp_path / "left_open.py"
    script.write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(script), name, str(state), how],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        said = child.stdout.readline().split()
        assert said[:1] == ["BUILT"], (said, child.stderr.read() if child.stderr else "")
        holder = int(said[1])
        ours = sorted(n for n in kernel.namespaces() if n.startswith(name))
        if how == "root":  # the lab is really there while the child runs
            assert ours == [f"{name}-a", f"{name}-b", f"{name}-host"]
            assert kernel.addresses(f"{name}-a")["eth0"] == ["10.219.0.1/24"]
        else:  # in its sandbox: none of it on the machine, its holder running
            assert ours == []
            assert holder > 0 and owner.alive(holder)
            started = owner.started(holder)
        assert (state / f"{name}.json").exists()
        child.stdin.write("go\n")
        child.stdin.close()
        assert child.wait(timeout=120) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert [n for n in kernel.namespaces() if n.startswith(name)] == []
    assert sorted(p.name for p in state.iterdir()) == []  # no record, no lock file
    if how == "rootless":
        assert not owner.alive(holder, started)  # the sandbox ended with the lab
