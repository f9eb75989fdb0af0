"""The pytest plugin's captures on the real kernel: a failing test keeps pcaps that
hold its pings; a passing one leaves nothing, and no tcpdump outlives its test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from netns_kit.capture import pcap
from netns_kit.capture.capture import packets_of
from netns_kit.capture.evidence import directory_for

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")

CONFTEST = """
import secrets
import netns_kit.testing.pytest_plugin as plugin

plugin.unique_lab_name = lambda prefix="pt": f"cap-{secrets.token_hex(3)}"
"""

TESTS = """
def build(lab):
    red = lab.namespace(f"{lab.name}-red")
    blue = lab.namespace(f"{lab.name}-blue")
    lab.link(red, blue, addresses=("10.63.0.1/24", "10.63.0.2/24"), names=("vr", "vb"))
    assert red.ping("10.63.0.2", count=3, interval=0.05)
    return red

def test_fails(lab):
    build(lab)
    assert False, "on purpose"

def test_passes(lab):
    build(lab)
"""


def tcpdumps() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "tcpdump":
                    found.add(int(entry))
            except OSError:
                pass
    return found


def test_a_failing_test_keeps_pcaps_with_its_packets(pytester: pytest.Pytester) -> None:
    before = tcpdumps()
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=TESTS)
    evidence = pytester.path / "ev"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--netns-kit-capture", "--netns-kit-evidence", str(evidence)
    )
    result.assert_outcomes(passed=1, failed=1)
    kept = directory_for(evidence, "test_inner.py::test_fails")
    result.stdout.fnmatch_lines([f"*kept in {kept}*"])
    assert sorted(p.name for p in evidence.iterdir()) == [kept.name]
    reds = [p for p in kept.iterdir() if p.name.endswith("-red-any.pcap")]
    assert len(reds) == 1
    found = pcap.read(reds[0])
    assert found.complete and found.header.linktype == pcap.LINUX_SLL2
    echoes = [p for p in packets_of(reds[0]) if "echo request" in p.summary]
    assert len(echoes) == 3 and {(p.src, p.dst) for p in echoes} == {("10.63.0.1", "10.63.0.2")}
    assert (kept / "snapshot.json").read_text().lstrip().startswith("{")
    assert (kept / "lab.svg").read_text().startswith("<svg")
    assert not (tcpdumps() - before), "a tcpdump outlived its test"
