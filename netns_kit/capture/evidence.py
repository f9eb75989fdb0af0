"""Evidence for a failing test: pcaps of every namespace, the lab's state and picture.

:class:`Follow` captures every namespace of a lab (``tcpdump -i any`` in each, which
also sees the links made after it started) as the lab grows: it runs after every
build (``Lab.after_build``).  When a test fails, :func:`keep` copies the pcaps into
a directory named after the test, with the lab's snapshot as JSON and its picture
as SVG; when it passes the captures simply go with the lab (their files are the
lab's own).  The pytest plugin (:mod:`netns_kit.testing.pytest_plugin`) wires this up.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from netns_kit.capture.capture import Capture, start_taps
from netns_kit.capture.where import Tap


class Follow:
    """Captures each namespace of ``lab`` once it exists (see the module docstring)."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.captured: set[str] = set()
        self.captures: list[Capture] = []
        self.directory = Path(tempfile.mkdtemp(prefix=f"netns-kit-{lab.name}-evidence-"))

    def __call__(self) -> None:
        record = self.lab.journal.record  # written ahead: it has what a builder just made
        names = record.namespaces() if record is not None else []
        new = [n for n in names if n not in self.captured]
        if not new:
            return
        taps = [Tap(n, "any") for n in new]
        capture = start_taps(self.lab, taps, self.directory / "lab.pcap", None, labelled=True)
        self.captured.update(new)
        self.captures.append(capture)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def directory_for(root: Path, nodeid: str) -> Path:
    """A directory for one test's evidence, named after its node id."""
    return root / re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:200]


def keep(lab: Any, follow: Follow | None, directory: Path) -> list[str]:
    """Stop the captures and keep pcaps, ``snapshot.json`` and ``lab.svg`` in
    ``directory``; what could not be kept is said, not raised (the test already
    failed for a reason of its own)."""
    directory.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    if follow is not None:
        for capture in follow.captures:
            try:
                capture.stop()
            except Exception as error:  # keep what there is
                problems.append(f"stopping a capture: {error}")
            for path in capture.paths:
                if path.exists():
                    shutil.copy2(path, directory / path.name)
    try:
        (directory / "snapshot.json").write_text(lab.snapshot().to_json())
    except Exception as error:
        problems.append(f"snapshot: {error}")
    try:
        (directory / "lab.svg").write_text(lab.to_svg())
    except Exception as error:
        problems.append(f"picture: {error}")
    return problems
