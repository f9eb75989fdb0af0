"""Routing daemons without root: BIRD runs in a rootless lab's sandbox (as the
sandbox's root); FRR is refused with an error that names BIRD."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .nobody import Nobody, wait_gone

SCRIPT = Path(__file__).resolve().parent / "lab_scripts" / "routed_rootless.py"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody"),
    pytest.mark.skipif(shutil.which("bird") is None, reason="bird is not installed"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing"),
]


@pytest.fixture
def nobody() -> Iterator[Nobody]:
    made = Nobody.make([SCRIPT])
    try:
        yield made
    finally:
        made.remove()


def test_bird_runs_rootless_and_frr_is_refused(nobody: Nobody) -> None:
    name = f"rt{secrets.token_hex(3)}"
    child = nobody.start(str(nobody.lib / SCRIPT.name), name)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err[-2000:]
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    assert lines["PING"] == "True"
    assert lines["NEIGHBOURS"] == "2"
    assert "suite='bird'" in lines["FRR"] and "rootless" in lines["FRR"]
    assert "DONE" in out
    assert wait_gone(child.pid, 10) == []  # no bird, no sandbox left behind
