"""The executor objects use when they are given none."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from netns_kit.executors.base import Executor
from netns_kit.executors.shell import ShellExecutor

_current: ContextVar[Executor | None] = ContextVar("netns_kit_executor", default=None)
_fallback: list[Executor] = []


def default_executor() -> Executor:
    """The executor objects use when given none: ``use_executor``'s, or a shell."""
    current = _current.get()
    if current is not None:
        return current
    if not _fallback:
        _fallback.append(ShellExecutor())
    return _fallback[0]


@contextlib.contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Swap the default executor for a block, e.g. to dry-run a notebook cell."""
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)
