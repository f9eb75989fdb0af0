"""``--require-integration`` (tests/ci_require.py): CI cannot pass while the real-kernel
tests did not run.  Inner pytest runs (pytester) stand in for CI runs."""

from __future__ import annotations

import pytest
from ci_require import allowed_skip, feature_skip, preflight

pytest_plugins = ["pytester"]

CONFTEST = "from ci_require import pytest_addoption, pytest_configure\n"


def test_preflight_wants_root_and_ip() -> None:
    assert preflight({}, 0, True) == []
    [problem] = preflight({}, 65534, True)
    assert "uid 65534, not root" in problem
    [problem] = preflight({}, 0, False)
    assert "iproute2 is missing" in problem


def test_preflight_refuses_the_host_check_off_in_ci() -> None:
    off = {"NETNS_KIT_SKIP_HOST_CHECK": "1"}
    assert preflight(off, 0, True) == []  # a shared machine, not CI: allowed
    [problem] = preflight({**off, "CI": "true"}, 0, True)
    assert "NETNS_KIT_SKIP_HOST_CHECK=1" in problem and "CI refuses it" in problem
    assert preflight({"CI": "true", "NETNS_KIT_SKIP_HOST_CHECK": "0"}, 0, True) == []


def test_only_a_missing_kernel_feature_is_an_allowed_skip() -> None:
    assert allowed_skip(feature_skip("netem", "is missing (no sch_netem qdisc)"))
    assert allowed_skip("Skipped: kernel feature netem is missing")
    assert not allowed_skip("integration tests need root: they build namespaces")
    assert not allowed_skip("fping is not installed: apt-get install fping")


def _suite(pytester: pytest.Pytester, body: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.mkpydir("integration")
    pytester.path.joinpath("integration", "test_real.py").write_text(
        "import pytest\nfrom ci_require import feature_skip\n" + body
    )


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # importlib: the inner "integration" package must not meet the outer suite's
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:timeout", "--import-mode=importlib", *args
    )


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NETNS_KIT_SKIP_HOST_CHECK", raising=False)


ROOT_SKIP = """
def test_ran():
    assert True

def test_skips_for_root():
    pytest.skip("integration tests need root: they build namespaces")
"""


def test_a_skip_that_names_no_kernel_feature_fails_a_required_run(
    pytester: pytest.Pytester, as_root: None
) -> None:
    _suite(pytester, ROOT_SKIP)
    plain = _run(pytester)
    plain.assert_outcomes(passed=1, skipped=1)
    assert plain.ret == pytest.ExitCode.OK  # without the option: a skip, as on a laptop
    required = _run(pytester, "--require-integration")
    required.assert_outcomes(passed=1, failed=1)
    assert required.ret == pytest.ExitCode.TESTS_FAILED
    required.stdout.fnmatch_lines(["*--require-integration FAILED*", "skipped: *need root*"])


def test_a_missing_kernel_feature_may_skip(pytester: pytest.Pytester, as_root: None) -> None:
    _suite(
        pytester,
        "def test_ran():\n    assert True\n\n"
        "@pytest.mark.skipif(True, reason=feature_skip('netem', 'is missing'))\n"
        "def test_netem():\n    pass\n",
    )
    result = _run(pytester, "--require-integration")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_run_where_no_integration_test_passed_fails(
    pytester: pytest.Pytester, as_root: None
) -> None:
    _suite(
        pytester,
        "@pytest.mark.skipif(True, reason=feature_skip('netem', 'is missing'))\n"
        "def test_netem():\n    pass\n",
    )
    result = _run(pytester, "--require-integration")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no integration test passed*"])


def test_a_module_skipped_at_import_fails_a_required_run(
    pytester: pytest.Pytester, as_root: None
) -> None:
    _suite(pytester, "def test_ran():\n    assert True\n")
    pytester.path.joinpath("integration", "test_gone.py").write_text(
        "import pytest\npytest.importorskip('no_such_module_t19')\n"
    )
    result = _run(pytester, "--require-integration")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["skipped: *test_gone.py*no_such_module_t19*"])


def test_a_required_run_refuses_to_start_as_a_normal_user(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 65534)
    _suite(pytester, ROOT_SKIP)
    result = _run(pytester, "--require-integration")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--require-integration: it runs as uid 65534, not root*"])


def test_a_required_ci_run_refuses_the_host_check_off(
    pytester: pytest.Pytester, as_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("NETNS_KIT_SKIP_HOST_CHECK", "1")
    _suite(pytester, ROOT_SKIP)
    result = _run(pytester, "--require-integration")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*NETNS_KIT_SKIP_HOST_CHECK=1*CI refuses it*"])
