"""The soak (scripts/soak.py --short) on the real kernel: it must find nothing.

It builds, kills, races, fuzzes and interrupts labs in parallel processes, all isolated
and named ``sk....``, and prints one line of figures; see its docstring.  Needs root:
tests/integration/conftest.py skips it, saying why, without.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"

#: What the summary line says when nothing failed: (part, pattern, its figures agree).
CLEAN = (
    ("rounds", r"(\d+)/(\d+) clean;", lambda a, b: a == b),
    ("kill -9", r"kill -9 (\d+)/(\d+) recovered", lambda a, b: a == b),
    ("races", r"races (\d+)/(\d+) one winner", lambda a, b: a == b),
    ("spurious busy", r"(\d+) spurious busy", lambda a: a == 0),
    ("stray locks", r"(\d+) stray locks", lambda a: a == 0),
    ("fuzz", r"fuzz \d+: (\d+) tracebacks;", lambda a: a == 0),
    ("ctrl-c", r"ctrl-c (\d+)/(\d+) clean", lambda a, b: a == b),
)


def failed_parts(summary: str) -> list[str]:
    """The parts of the soak's summary line that report a failure."""
    failed = []
    for part, pattern, agree in CLEAN:
        found = re.search(pattern, summary)
        if found is None or not agree(*map(int, found.groups())):
            failed.append(part)
    if not summary.endswith("nothing left"):
        failed.append("leftovers")
    return failed


def test_failed_parts_reads_the_summary_line() -> None:
    clean = (
        "4 workers x 3 rounds: 12/12 clean; kill -9 12/12 recovered; races 4/4 one winner, "
        "0 spurious busy in 200 reopens, 0 stray locks; fuzz 400: 0 tracebacks; "
        "ctrl-c 12/12 clean; nothing left"
    )
    assert failed_parts(clean) == []
    dirty = (
        "4 workers x 3 rounds: 12/12 clean; kill -9 10/12 recovered; races 4/4 one winner, "
        "1 spurious busy in 200 reopens, 11 stray locks; fuzz 400: 26 tracebacks, 1 hangs; "
        "ctrl-c 9/12 clean; left: namespace skab12k003-n9 (removed)"
    )
    assert failed_parts(dirty) == [
        "kill -9",
        "spurious busy",
        "stray locks",
        "fuzz",
        "ctrl-c",
        "leftovers",
    ]


@pytest.mark.timeout(900)  # its soak may take 600 s (the subprocess bound) on a busy machine
def test_a_short_soak_finds_nothing(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SOAK), "--short", "--tmp-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    summary = lines[-1] if lines else ""
    details = f"{summary}\n--- stderr (the failures) ---\n{done.stderr[-20000:]}"
    assert re.match(r"\d+ workers x \d+ rounds: ", summary), details
    assert failed_parts(summary) == [], details
    assert done.returncode == 0, details
