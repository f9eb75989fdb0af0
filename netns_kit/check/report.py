"""``netns-kit check`` (and ``up --check``): its options and what it prints.

The command line's part of a reachability check, kept out of :mod:`netns_kit.cli`:
the options both commands take, and the report: the result's text (a matrix, or a
summary with many namespaces) or ``--json``, with ``--expect``'s verdict, and the
exit code, 0 when every pair answered (or exactly the expected pairs failed).
"""

from __future__ import annotations

import argparse
import json

from netns_kit.check.expect import Expectations
from netns_kit.check.result import Reachability


def add_options(command: argparse.ArgumentParser, *, up: bool) -> None:
    """``--expect``, ``--timeout`` and ``--count`` (and ``--check`` for ``up``)."""
    if up:
        command.add_argument(
            "--check", action="store_true", help="then check it, as `netns-kit check` does"
        )
    command.add_argument(
        "--expect",
        metavar="FILE",
        help="a TOML file of pairs expected to fail ([[fail]] from = ..., to = ...)",
    )
    command.add_argument(
        "--timeout", type=float, default=1.0, metavar="S", help="seconds to wait for replies"
    )
    command.add_argument("--count", type=int, default=1, metavar="N", help="echo requests per pair")


def expectations(args: argparse.Namespace) -> Expectations | None:
    """The ``--expect`` file, read (and checked) before anything is probed."""
    return Expectations.load(args.expect) if args.expect else None


def report(
    result: Reachability, expect: Expectations | None, *, as_json: bool, full: bool
) -> tuple[str, int]:
    """What to print, and the exit code: 0 when the check went as expected, else 1."""
    verdict = expect.verdict(result) if expect is not None else None
    ok = verdict.ok if verdict is not None else result.ok
    code = 0 if ok else 1
    if as_json:
        data = result.to_dict()
        if verdict is not None:
            data["expect"] = verdict.to_dict()
        data["as_expected"] = ok
        return json.dumps(data, indent=2), code
    text = result.to_text(compact=False if full else None).rstrip("\n")
    if verdict is not None:
        text += "\n" + "\n".join([*verdict.lines(), "as expected" if ok else "NOT as expected"])
    return text, code
