"""What a finished command gave back."""

from __future__ import annotations

import attrs


@attrs.frozen
class Result:
    """Exit code and output of one finished command.  Falsy when it failed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    def __bool__(self) -> bool:
        return self.returncode == 0
