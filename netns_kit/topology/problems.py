"""The error a topology that cannot be built raises: every problem, with its path."""

from __future__ import annotations

from collections.abc import Sequence

from netns_kit.errors import ValidationError

#: The most problems an error message lists in full.  Fixing a file takes one round
#: when every problem is listed, but a file with a systematic mistake can have
#: thousands, and a message of thousands of lines helps nobody: the first ones
#: show the mistake, and ``TopologyError.problems`` keeps them all.
SHOWN_PROBLEMS = 50


class TopologyError(ValidationError):
    """A topology that cannot be built; ``problems`` lists every reason at once.

    Each problem starts with its path in the file (``links[2].addresses[0]: ...``);
    ``source`` is the file (or ``"<dict>"``).  As a :class:`ValidationError` it also
    has ``field`` (the source), ``value`` (the problems) and ``reason``.  The message
    lists the first :data:`SHOWN_PROBLEMS` problems and counts the rest.
    """

    def __init__(self, problems: Sequence[str], source: str = "<dict>") -> None:
        self.problems = list(problems)
        self.source = source
        self.field = source
        self.value = self.problems
        count = len(self.problems)
        if count == 1:
            self.reason = self.problems[0]
            message = f"{source}: {self.problems[0]}"
        else:
            self.reason = f"{count:,} problems"
            lines = [f"  {problem}" for problem in self.problems[:SHOWN_PROBLEMS]]
            rest = count - SHOWN_PROBLEMS
            if rest > 0:
                lines.append(f"  … and {rest:,} more problem{'' if rest == 1 else 's'}")
            message = f"{source}: {count:,} problems:\n" + "\n".join(lines)
        super(ValidationError, self).__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.problems, self.source))
