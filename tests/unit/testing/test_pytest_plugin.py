"""The pytest plugin's fixtures."""

from __future__ import annotations

import shutil

import pytest

from netns_kit import RootlessUnavailableError, Sandbox

pytest_plugins = ["pytester"]


def assert_skips(pytester: pytest.Pytester, fixture: str, reason: str) -> None:
    """A test that asks for ``fixture`` is skipped, and the skip gives ``reason``."""
    pytester.makepyfile(
        f"""
        def test_needs_it({fixture}):
            raise AssertionError("must not run")
        """
    )
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([reason])


# -- the pytest plugin ------------------------------------------------------------------
def test_plugin_gives_a_fresh_recording_executor(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from netns_kit import RecordingExecutor
        from netns_kit.command import Command

        def test_one(recording_executor):
            assert isinstance(recording_executor, RecordingExecutor)
            assert recording_executor.commands == []
            recording_executor.execute(Command(("true",)))
            assert recording_executor.commands == [("true",)]

        def test_two(recording_executor):
            assert recording_executor.commands == []
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


@pytest.mark.real_executor  # the default executor's own behaviour
def test_plugin_lab_is_rootless_without_root_and_skips_where_the_kernel_refuses(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    refusal = RootlessUnavailableError("user.max_user_namespaces", "0", "none", "15000")
    started: list[bool] = []

    def refuse(sandbox: Sandbox) -> None:
        started.append(True)
        raise refusal

    monkeypatch.setattr(Sandbox, "start", refuse)
    pytester.makepyfile(
        """
        def test_needs_a_lab(lab):
            raise AssertionError("must not run where the kernel refuses")
        """
    )
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    assert started == [True]  # it tried a rootless lab: no skip merely for not being root
    result.stdout.fnmatch_lines(["*cannot build a lab here*user.max_user_namespaces is 0*"])


def test_plugin_lab_skips_without_root_and_without_util_linux(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "nsenter" else real(name))
    assert_skips(pytester, "lab", "*needs root, or util-linux for a rootless lab*")


def test_plugin_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["recording_executor*", "*fresh fake executor*", "lab *", "*real isolated lab*"]
    )


def test_plugin_fake_machines_skip_with_a_reason_without_root(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert_skips(pytester, "fake_machines", "*fake machines need root*")


def test_plugin_fake_machines_skip_naming_the_missing_package(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(
        "shutil.which", lambda name, *a, **k: None if name.endswith("sshd") else real(name)
    )
    assert_skips(pytester, "fake_machines", "*apt-get install openssh-server*")


def test_plugin_lists_fake_machines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["fake_machines *", "*fake_machines(n*"])
