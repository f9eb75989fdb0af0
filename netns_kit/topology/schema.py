"""The JSON Schema (2020-12) of topology files, made from the table of keys.

Editors read it to flag unknown keys and wrong types as you type (taplo / Even
Better TOML with ``#:schema ./schemas/topology.schema.json`` at the top of a file,
the YAML language server with ``# yaml-language-server: $schema=...``), and
``check-jsonschema`` does the same on the command line.  It is generated, never
written by hand: :mod:`netns_kit.spec.keys` is the one list of keys, which the
whole-file check reads too, so the two cannot drift.  ``netns-kit schema`` prints
it; the repository's ``schemas/topology.schema.json`` is a copy that a test compares.

The schema checks shape only (keys, types, enums, bounds).  Whether a link names a
namespace that exists, or a gateway is in a connected subnet, is ``netns-kit
validate``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from netns_kit.spec.keys import TABLES, TOP, Table

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _table(table: Table) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for key in table.keys:
        properties[key.name] = {
            **key.shape,
            "description": key.description,
            "examples": [key.example],
        }
    out: dict[str, Any] = {
        "type": "object",
        "description": table.description,
        "properties": properties,
        "additionalProperties": table.open,
    }
    if table.required:
        out["required"] = list(table.required)
    return out


def topology_schema() -> dict[str, Any]:
    """The schema as a dict (what :func:`schema_text` writes out)."""
    top = _table(TOP)
    return {
        "$schema": DIALECT,
        "title": "netns_kit topology file",
        **top,
        "$defs": {name: _table(table) for name, table in sorted(TABLES.items())},
    }


def schema_text() -> str:
    """The schema as ``netns-kit schema`` prints it: stable, indented, one final newline,
    so that the repository's copy can be compared byte for byte."""
    return json.dumps(topology_schema(), indent=2, ensure_ascii=False) + "\n"


class _Out(Protocol):
    out: TextIO


def cmd_schema(ctx: _Out) -> int:
    """``netns-kit schema``: print the JSON Schema of topology files."""
    ctx.out.write(schema_text())
    return 0


def register(add: Callable[[str, Callable[[Any], int], str], object]) -> None:
    """Add ``schema`` to the command line (``add`` is ``build_parser``'s helper)."""
    add(
        "schema",
        cmd_schema,
        "print the JSON Schema (2020-12) of topology files, for editors and check-jsonschema",
    )
