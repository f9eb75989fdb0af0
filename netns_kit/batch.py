"""Grouping commands into ``ip -batch`` runs, and mapping a failed line back.

One ``ip`` process costs about 1.7 ms (5 ms through ``sh``), while a line of a batch
costs a fraction of a millisecond, so a lab of hundreds of steps should start a
handful of processes.  :func:`plan` merges *consecutive* ``ip`` commands that act in
the same namespace into one run, so the order of all commands is kept: a namespace
still exists before anything uses it, and ``sysctl``/``iptables`` stay where they were.

A batch stops at its first failing line and says ``Command failed -:LINE``;
:func:`failures` turns that back into the index of the logical command, so the error
names the same argv and kernel message as the unbatched run would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from .command import Command

# A batch line has no quoting: '#' starts a comment even inside quotes, and a space
# splits arguments.  Only plain words may go on a batch line.
_PLAIN = re.compile(r'[^\s#"\'\\]+\Z')
_FAILED = re.compile(r"^Command failed (\S+):(\d+)$")


@attrs.frozen
class Run:
    """Commands that start as one process: a single command, or a batch of ``ip`` lines."""

    commands: tuple[Command, ...]
    namespace: str | None = None

    @property
    def batched(self) -> bool:
        return len(self.commands) > 1

    def lines(self) -> list[str]:
        return [" ".join(batch_args(c)) for c in self.commands]

    def command(self, *, force: bool = False) -> Command:
        """The process that runs this batch: ``ip [-n NS] [-force] -batch -``."""
        if not self.batched:
            return self.commands[0]
        prefix = ("ip", "-n", self.namespace) if self.namespace else ("ip",)
        flags = ("-force", "-batch", "-") if force else ("-batch", "-")
        stdin = "".join(line + "\n" for line in self.lines())
        return Command(prefix + flags, stdin=stdin, namespace=self.namespace)


def batch_args(command: Command) -> tuple[str, ...]:
    """The part of an ``ip`` command that goes on a batch line (no ``ip [-n NS]``)."""
    argv = command.argv
    return argv[3:] if command.namespace and argv[1:3] == ("-n", command.namespace) else argv[1:]


def batchable(command: Command) -> bool:
    """Whether ``command`` can be a line of an ``ip -batch``.

    It must be a plain ``ip`` change (no reads: their output must stay apart), take no
    stdin and no guard, carry no global option (``-6``, ``-j``: batch lines take none)
    and hold only plain words.
    """
    if command.argv[0] != "ip" or command.read or command.stdin is not None:
        return False
    if command.unless is not None:
        return False
    args = batch_args(command)
    if not args or args[0].startswith("-") or (args[0] == "netns" and args[1:2] == ("exec",)):
        return False
    return all(_PLAIN.match(a) for a in args)


def plan(commands: Sequence[Command]) -> list[Run]:
    """Split commands, in order, into runs of consecutive same-namespace ``ip`` lines."""
    runs: list[Run] = []
    group: list[Command] = []
    where: str | None = None

    def flush() -> None:
        if group:
            runs.append(Run(tuple(group), where))
            group.clear()

    for command in commands:
        if not batchable(command):
            flush()
            runs.append(Run((command,), command.namespace))
            continue
        if group and command.namespace != where:
            flush()
        where = command.namespace
        group.append(command)
    flush()
    return runs


def failures(stderr: str) -> list[tuple[int, str]]:
    """``(0-based line index, kernel message)`` for each ``Command failed -:LINE``.

    The message is what the batch printed since the previous failure marker.  Line
    numbers are those of the outer batch read from stdin (``-``).
    """
    found: list[tuple[int, str]] = []
    said: list[str] = []
    for line in stderr.splitlines():
        match = _FAILED.match(line.strip())
        if match is None:
            said.append(line)
            continue
        if match.group(1) == "-":
            found.append((int(match.group(2)) - 1, "\n".join(said).strip()))
            said = []
    return found
