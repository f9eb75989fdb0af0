"""Batches: many commands in one ``ip -batch`` (or ``tc -batch``) process, and back.

One ``ip`` process costs about 1.7 ms (5 ms through ``sh``), while a line of a batch
costs a fraction of a millisecond, so a lab of hundreds of steps should start a
handful of processes.  This module is the batch-text writer: the one place that
turns commands into batch lines.  Which commands go together is the planner's
business (:mod:`netns_kit.engine.plan`); how the lines come back is here too.

A batch line has no quoting: ``#`` starts a comment even inside quotes, and a space
splits arguments, so only plain words may go on one.  A batch stops at its first
failing line and says ``Command failed -:LINE`` (``-force`` goes on and reports each
failure); :func:`split` turns that back into one result per command, so an error
names the same argv and kernel message as the unbatched run would.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from netns_kit.command import Command
from netns_kit.result import Result

_PLAIN = re.compile(r'[^\s#"\'\\]+\Z')
_FAILED = re.compile(r"^Command failed (\S+):(\d+)$")


#: How many file descriptors one batch process may leak.  iproute2 6.1's ``ip -batch``
#: opens a namespace for each ``netns NAME`` of a line and never closes it: 2 for
#: each ``link add ... netns A ... peer ... netns B``, so a batch of veth lines died at
#: line 509 under ``ulimit -n 1024`` (at line 9,998 under 20,000), with ``Invalid
#: "netns" value`` and no ``Command failed`` line.  400 leaves room under the usual
#: soft limit of 1,024.
FD_BUDGET = 400
#: The most lines of any batch: a failure costs at most this many lines read back.
MAX_LINES = 5000


def leaks(command: Command) -> int:
    """File descriptors ``ip -batch`` leaks for ``command``'s line: one per ``netns``
    keyword naming a namespace (``netns add``/``delete``/``exec`` lines open none that
    stay open)."""
    line = command.line or ()
    if not line or line[0] == "netns":
        return 0
    return sum(1 for word in line if word == "netns")


def chunks(commands: Sequence[Command]) -> list[int]:
    """Sizes of consecutive chunks of ``commands`` (the lines of one batch), each
    within :data:`FD_BUDGET` and :data:`MAX_LINES`."""
    sizes: list[int] = []
    size = leaked = 0
    for command in commands:
        cost = leaks(command)
        if size and (leaked + cost > FD_BUDGET or size >= MAX_LINES):
            sizes.append(size)
            size = leaked = 0
        size += 1
        leaked += cost
    if size:
        sizes.append(size)
    return sizes


def fits(command: Command) -> bool:
    """Whether ``command`` can be a batch line: batchable, and only plain words."""
    return command.batchable and all(_PLAIN.match(word) for word in command.line or ())


@attrs.frozen
class Batch:
    """Commands of one batch program (``family``) that start as one process in
    ``namespace`` (on ``machine``); ``force`` goes on past failing lines."""

    family: str
    namespace: str | None
    commands: tuple[Command, ...]
    force: bool = False
    machine: str | None = None

    def lines(self) -> list[str]:
        return [" ".join(c.line or ()) for c in self.commands]

    @property
    def stdin(self) -> str:
        return "".join(line + "\n" for line in self.lines())

    def process(self) -> Command:
        """The process that runs this batch: ``ip [-n NS] [-force] -batch -``."""
        prefix = (self.family, "-n", self.namespace) if self.namespace else (self.family,)
        flags = ("-force", "-batch", "-") if self.force else ("-batch", "-")
        inside = (self.family, *flags) if self.namespace else None
        return Command(
            prefix + flags,
            stdin=self.stdin,
            namespace=self.namespace,
            inside=inside,
            machine=self.machine,
        )


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


def split(commands: Sequence[Command], batch: Result, *, force: bool) -> list[Result]:
    """Per-line results of a batch from the batch's own result.

    Without ``force`` the list ends at the failed line (later lines never ran).  A
    batch that failed without saying which line is blamed on its first line.
    """
    machine = batch.machine
    if batch:
        return [Result(c.argv, 0, machine=machine) for c in commands]
    failed = dict(failures(batch.stderr))
    if not failed:
        failed = {0: batch.stderr.strip()}
    results = []
    for index, command in enumerate(commands):
        if index in failed:
            results.append(
                Result(command.argv, batch.returncode or 1, "", failed[index], machine=machine)
            )
            if not force:
                break
        else:
            results.append(Result(command.argv, 0, machine=machine))
    return results
