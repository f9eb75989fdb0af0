"""``--require-integration``: a run that cannot pass while the real-kernel tests did not run.

CI runs as root, and the integration tests skip themselves, saying why, without root
or a tool.  That is right on a laptop and wrong in CI, where a run with every
integration test skipped used to pass.  With ``--require-integration`` (``.ci/run``
passes it):

- the run refuses to start unless it is root with iproute2, and, when ``CI=true``,
  unless the host-safety check is on (``NETNS_KIT_SKIP_HOST_CHECK=1`` is refused);
- an integration test that skips fails instead, unless its reason names a kernel
  feature this machine lacks (``kernel feature NAME ...``, see :data:`FEATURE_SKIP`);
- the run fails if no integration test passed at all.

``tests/conftest.py`` re-exports the hooks, so they apply to every run of the suite.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Mapping
from pathlib import Path

import pytest

OPTION = "--require-integration"
#: The only skips a required run lets through: a kernel feature this machine lacks.
FEATURE_SKIP = re.compile(r"(?:Skipped: )?kernel feature [\w.-]+ ")


def feature_skip(feature: str, why: str) -> str:
    """A skip reason a required run accepts: it names the missing kernel feature."""
    return f"kernel feature {feature} {why}"


def preflight(environ: Mapping[str, str], euid: int, has_ip: bool) -> list[str]:
    """Why a required run cannot start here (empty: it can)."""
    problems = []
    if euid != 0:
        problems.append(f"it runs as uid {euid}, not root: the integration tests would skip")
    if not has_ip:
        problems.append("iproute2 is missing (no `ip`): the integration tests would skip")
    if environ.get("CI") == "true" and environ.get("NETNS_KIT_SKIP_HOST_CHECK") == "1":
        problems.append(
            "NETNS_KIT_SKIP_HOST_CHECK=1 turns the host-safety check off; CI refuses it"
        )
    return problems


def allowed_skip(reason: str) -> bool:
    return FEATURE_SKIP.match(reason) is not None


def _is_integration(path: Path) -> bool:
    """Whether a test file is an integration test's (under a directory ``integration``)."""
    return "integration" in path.resolve().parts[:-1]


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2])
    return str(longrepr)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        OPTION,
        action="store_true",
        help="CI: fail unless root, unless every integration test runs (only skips naming "
        "a missing kernel feature remain) and, with CI=true, unless the host check is on",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption(OPTION):
        return
    problems = preflight(os.environ, os.geteuid(), shutil.which("ip") is not None)
    if problems:
        raise pytest.UsageError(f"{OPTION}: " + "; ".join(problems))
    config.pluginmanager.register(RequiredRun(), "netns-kit-required-run")


class RequiredRun:
    """The hooks of a required run, with what it saw of the integration tests."""

    def __init__(self) -> None:
        self.passed = 0
        self.refused: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if not _is_integration(item.path):
            return report
        if report.when == "call" and report.passed:
            self.passed += 1
        if report.skipped:
            reason = _reason(report)
            if hasattr(report, "wasxfail") or not allowed_skip(reason):
                self.refused.append(f"{item.nodeid}: {reason}")
                report.outcome = "failed"
                report.longrepr = f"{OPTION}: this integration test was skipped ({reason})"
        return report

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A whole module skipped at import (``importorskip``) is refused too."""
        if report.skipped and _is_integration(Path(report.fspath)):
            reason = _reason(report)
            if not allowed_skip(reason):
                self.refused.append(f"{report.nodeid}: {reason}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        problems = [f"skipped: {line}" for line in self.refused]
        if self.passed == 0:
            problems.append("no integration test passed: the real kernel was never tested")
        if not problems:
            return
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_sep("=", f"{OPTION} FAILED", red=True)
            for line in problems:
                reporter.write_line(line)
