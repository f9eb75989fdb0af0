"""The unit tests' guard against the real kernel (tests/unit/conftest.py, ``no_kernel``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from netns_kit import Lab, Namespace
from netns_kit.executors import ShellExecutor, default_executor
from netns_kit.executors import default as executor_module

from .conftest import RefusedCommandError, RefusingExecutor


def _guard() -> RefusingExecutor:
    found = default_executor()
    assert isinstance(found, RefusingExecutor)
    return found


def test_an_object_without_an_executor_refuses_to_run() -> None:
    guard = _guard()
    with pytest.raises(RefusedCommandError, match=r"netns add t19-guard.*executor="):
        Namespace("t19-guard").create()
    assert len(guard.refused) == 1 and "netns add t19-guard" in guard.refused[0]
    guard.refused.clear()  # seen; the fixture would fail the test otherwise


def test_a_lab_without_an_executor_refuses_to_build(tmp_path: Path) -> None:
    guard = _guard()
    with pytest.raises(RefusedCommandError), Lab("t19-guard", state_dir=str(tmp_path)) as lab:
        lab.namespace("t19-guard-a")
    assert guard.refused
    guard.refused.clear()


def test_the_guard_holds_in_other_threads_too() -> None:
    """Pool threads do not inherit context variables; the guard is module state."""
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(default_executor()))
    thread.start()
    thread.join()
    assert found == [_guard()]


@pytest.mark.real_executor
def test_the_opt_out_gives_the_shell_back() -> None:
    assert isinstance(default_executor(), ShellExecutor)
    assert not isinstance(executor_module._fallback[0], RefusingExecutor)
