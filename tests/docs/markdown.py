"""The runnable examples of Markdown pages: fenced ``python``, ``sh``, ``bash`` and
``console`` blocks, each with the line it starts on and, when the line right before
its fence is ``<!-- not-run: REASON -->``, why it does not run."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

#: Fence languages that run: Python in a subprocess, the rest with bash.
RUN = {"python": "python", "py": "python", "sh": "bash", "bash": "bash", "console": "console"}
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>.*?)\s*-->\s*$")


@attrs.frozen
class Example:
    """One fenced block: where it is, its language, its text, why it does not run."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    not_run: str | None = None

    @property
    def runner(self) -> str | None:
        return RUN.get(self.lang)

    def script(self) -> str:
        """What runs: a console block's commands (``$ `` lines, prompt taken off, with
        their ``> `` continuation lines); any other block as it stands."""
        if self.runner != "console":
            return self.code
        lines: list[str] = []
        for line in self.code.splitlines():
            if line.startswith("$ ") or (line.startswith("> ") and lines):
                lines.append(line[2:])
        return "\n".join(lines) + "\n"


def examples(path: Path) -> list[Example]:
    """Every fenced block of a page, in order (unclosed ones too: they run to the end)."""
    found: list[Example] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        before = _NOT_RUN.match(lines[i - 1]) if i else None
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][indent:] if lines[j][:indent].isspace() else lines[j])
            j += 1
        found.append(
            Example(
                path,
                i + 1,
                opening["lang"].lower(),
                "\n".join(body) + "\n",
                before["reason"] if before else None,
            )
        )
        i = j + 1
    return found
