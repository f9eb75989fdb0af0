"""Commands are values.

A :class:`Command` is an immutable argv tuple plus what an executor needs to know
about it: text for its stdin, the namespace it acts in, whether it only reads, and an
optional guard.  Objects build commands in pure methods, so a unit test can pin the
exact argv and a dry run can print the exact script; only an executor runs them.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable

import attrs


def _argv(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Command:
    """One process to start: ``argv`` is exactly what is executed, no shell involved.

    ``namespace`` names the network namespace the command acts in (the argv already
    says so, e.g. ``ip -n red ...``); it is kept apart so that the batcher can group
    commands by where they run.  ``read`` marks a command that changes nothing: a dry
    run answers it as a fresh machine would.  ``unless`` is a check-then-act guard:
    the command runs only when the guard fails (``guard || command`` in a script).
    """

    argv: tuple[str, ...] = attrs.field(converter=_argv)
    stdin: str | None = None
    namespace: str | None = None
    read: bool = False
    unless: Command | None = None

    def __attrs_post_init__(self) -> None:
        if not self.argv:
            raise ValueError("a Command needs at least one argv element")

    def __str__(self) -> str:
        return shlex.join(self.argv)

    @property
    def tool(self) -> str:
        """The program this command starts (``ip``, ``iptables``...)."""
        return self.argv[0]


def ip(*args: str, namespace: str | None = None, read: bool = False) -> Command:
    """An ``ip`` command, run in ``namespace`` through ``ip -n`` (cheaper than exec)."""
    prefix: tuple[str, ...] = ("ip", "-n", namespace) if namespace else ("ip",)
    return Command(prefix + args, namespace=namespace, read=read)


def in_namespace(
    argv: Iterable[str],
    namespace: str | None,
    *,
    read: bool = False,
    unless: Command | None = None,
) -> Command:
    """Any other program, run in ``namespace`` through ``ip netns exec``."""
    args = tuple(argv)
    if namespace:
        args = ("ip", "netns", "exec", namespace, *args)
    return Command(args, namespace=namespace, read=read, unless=unless)
