"""The pytest plugin's evidence: kept when a captured test fails, gone when it passes.

The lab here runs on the recording executor (tcpdump "listens" at once and writes
nothing), so the test writes the bytes its pcap would hold itself."""

from __future__ import annotations

import pytest

from netns_kit.capture.evidence import directory_for

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from netns_kit import Lab, RecordingExecutor
from netns_kit.testing.pytest_plugin import captured

@pytest.fixture
def fake_lab(request, tmp_path):
    ex = RecordingExecutor()
    ex.answer(("ip", "netns", "exec"), stderr="tcpdump: listening on any\\n")
    lab = Lab("t", executor=ex, isolated=True, state_dir=tmp_path / "state")
    lab.open()
    try:
        with captured(request, lab):
            yield lab
    finally:
        lab.close()

def written(lab):
    follow = lab.after_build[0]
    for capture in follow.captures:
        for path in capture.paths:
            path.write_bytes(b"pcap of " + path.name.encode())
    return follow
"""

TESTS = """
import pytest
from conftest import written

def test_fails(fake_lab):
    fake_lab.namespace("red")
    written(fake_lab)
    assert False, "the network is broken"

def test_passes(fake_lab):
    fake_lab.namespace("red")
    follow = written(fake_lab)
    test_passes.directory = follow.directory

def test_gone_after_passing():
    assert not test_passes.directory.exists()
"""


def run(pytester: pytest.Pytester, *options: str) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it=TESTS)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *options)


def test_a_failing_captured_test_keeps_pcaps_snapshot_and_picture(
    pytester: pytest.Pytester,
) -> None:
    evidence = pytester.path / "ev"
    result = run(pytester, "--netns-kit-capture", "--netns-kit-evidence", str(evidence))
    result.assert_outcomes(passed=2, failed=1)
    kept = directory_for(evidence, "test_it.py::test_fails")
    assert kept.name == "test_it.py_test_fails"
    names = sorted(p.name for p in kept.iterdir())
    assert names == ["lab-red-any.pcap", "lab-t-host-any.pcap", "lab.svg", "snapshot.json"]
    assert (kept / "lab-red-any.pcap").read_bytes() == b"pcap of lab-red-any.pcap"
    assert (kept / "lab.svg").read_text().startswith("<svg")
    result.stdout.fnmatch_lines(["*netns-kit evidence*", f"*kept in {kept}*"])
    assert not directory_for(evidence, "test_it.py::test_passes").exists()
    assert sorted(p.name for p in evidence.iterdir()) == ["test_it.py_test_fails"]


def test_the_marker_turns_it_on_for_one_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_marked="""
        import pytest
        from conftest import written

        @pytest.mark.netns_kit_capture
        def test_marked(fake_lab):
            fake_lab.namespace("red")
            written(fake_lab)
            assert False

        def test_unmarked(fake_lab):
            fake_lab.namespace("red")
            assert fake_lab.after_build == []
            assert False
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    root = pytester.path / "netns-kit-evidence"
    assert sorted(p.name for p in root.iterdir()) == ["test_marked.py_test_marked"]


def test_without_the_option_nothing_is_captured(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_plain="""
        def test_plain(fake_lab):
            fake_lab.namespace("red")
            assert fake_lab.after_build == [] and fake_lab.captures == []
            assert fake_lab.ex.started == []
            assert False
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert False*"])
    assert "netns-kit evidence" not in result.stdout.str()
    assert not (pytester.path / "netns-kit-evidence").exists()
