"""The README's first command, ``scripts/demo.sh``, as root: it builds, pings, and leaves
nothing (no namespace of its lab, no record).  CI runs it through this test."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .conftest import Kernel

ROOT = Path(__file__).resolve().parents[2]


def _extras() -> str:
    """The extras this checkout's .venv was made with, so that the demo's bootstrap
    only checks and installs nothing."""
    stamp = ROOT / ".venv" / ".netns-kit-installed"
    parts = stamp.read_text().split() if stamp.exists() else []
    return parts[1] if len(parts) > 1 else "test"


def test_demo_sh_builds_pings_and_leaves_nothing(kernel: Kernel) -> None:
    env = {**os.environ, "NETNS_KIT_EXTRAS": _extras()}
    env.pop("NETNS_KIT_STATE_DIR", None)  # the README's command, as a user runs it
    done = subprocess.run(
        [str(ROOT / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = set(re.findall(r"\bdemo-[0-9a-f]{4}\b", done.stdout))
    assert len(names) == 1, names  # one lab, with the demo's own unique tag
    lab = names.pop()
    assert len(re.findall(r"^  ok ", done.stdout, re.M)) == 4, done.stdout
    assert "FAIL" not in done.stdout
    assert "Left behind: nothing" in done.stdout
    # read back independently: no namespace, no record of the demo's lab
    assert [n for n in kernel.namespaces() if n.startswith(lab)] == []
    assert not Path("/run/netns-kit", f"{lab}.json").exists()
    assert not Path("/run/netns-kit", f"{lab}.lock").exists()
