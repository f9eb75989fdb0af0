"""What a finished command gave back."""

from __future__ import annotations

import attrs


@attrs.frozen
class Result:
    """Exit code and output of one finished command.  Falsy when it failed.

    ``machine`` names the machine it ran on when that is not this one (an
    :class:`~netns_kit.SSHExecutor`'s), so that its error can say where it failed.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""
    machine: str | None = None

    def __bool__(self) -> bool:
        return self.returncode == 0
