"""Every Python and shell example of docs/*.md and README.md runs, as it stands.

Python blocks run in a subprocess of this venv's Python, shell blocks with bash
(``set -euo pipefail``), console blocks as their ``$ `` lines; all from the
repository's root, as root on the real kernel (skipped, saying so, otherwise).  A
block opts out with ``<!-- not-run: REASON -->`` on the line right before its
fence.  Pages show ``sudo`` where a command needs root; as root it is dropped (CI's
machine has no sudo).  An example must leave no namespace behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .markdown import Example, examples

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
#: The most one example may take (a bound, not a guess).
BOUND = 600
EXAMPLES = [
    e
    for page in PAGES
    if "notes" not in page.relative_to(ROOT).parts  # closing notes quote, not teach
    for e in examples(page)
    if e.runner is not None
]


def _namespaces() -> set[str]:
    done = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in done.stdout.splitlines() if line.strip()}


def _id(example: Example) -> str:
    return f"{example.path.relative_to(ROOT)}:{example.line}"


@pytest.mark.parametrize("example", EXAMPLES, ids=_id)
def test_example(example: Example) -> None:
    if example.not_run is not None:
        pytest.skip(f"not-run: {example.not_run}")
    if os.geteuid() != 0:
        pytest.skip("docs examples run as root on the real kernel")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    before = _namespaces()
    if example.runner == "python":
        argv = [sys.executable, "-c", example.script()]
    else:
        script = re.sub(r"^sudo (-n )?", "", example.script(), flags=re.MULTILINE)
        argv = ["bash", "-euo", "pipefail", "-c", script]
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=BOUND, check=False
    )
    assert done.returncode == 0, (
        f"{_id(example)} exited {done.returncode}\n--- stdout\n{done.stdout}"
        f"\n--- stderr\n{done.stderr}"
    )
    if os.environ.get("NETNS_KIT_SKIP_HOST_CHECK") != "1":
        left = _namespaces() - before
        assert not left, f"{_id(example)} left namespaces behind: {sorted(left)}"


def test_examples_were_found() -> None:
    assert len(EXAMPLES) >= 10
