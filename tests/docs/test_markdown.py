"""The example collector itself: which blocks it finds and what it runs."""

from __future__ import annotations

from pathlib import Path

from .markdown import examples


def test_blocks_languages_lines_and_opt_outs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "```python\nprint(1)\n```\n"
        "<!-- not-run: needs two machines -->\n"
        "```sh\nssh somewhere\n```\n"
        "```toml\nname = 'x'\n```\n"
        "```console\n$ echo hi\nhi\n$ ls \\\n> -d /\n/\n```\n"
        "- item:\n\n  ```bash\n  echo nested\n  ```\n"
    )
    found = examples(page)
    assert [(e.line, e.lang, e.runner, e.not_run) for e in found] == [
        (2, "python", "python", None),
        (6, "sh", "bash", "needs two machines"),
        (9, "toml", None, None),
        (12, "console", "console", None),
        (21, "bash", "bash", None),
    ]
    assert found[0].script() == "print(1)\n"
    assert found[3].script() == "echo hi\nls \\\n-d /\n"
    assert found[4].script() == "echo nested\n"


def test_a_comment_elsewhere_does_not_opt_out(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("<!-- not-run: far away -->\n\ntext\n```python\nx = 1\n```\n")
    (example,) = examples(page)
    assert example.not_run is None
