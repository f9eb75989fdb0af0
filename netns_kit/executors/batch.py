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
