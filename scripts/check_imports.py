#!/usr/bin/env python3
"""Check the package's import graph: no circles, and no layer reaching up.

Every ``import``/``from ... import`` inside ``netns_kit/`` counts, wherever it stands:
at the top, inside a function (a lazy import) or under ``if TYPE_CHECKING:`` (a
type-only import).  ``from netns_kit.pkg import name`` counts as an edge to the module
``netns_kit.pkg.name`` when that module exists, else to ``netns_kit.pkg``.

Layers: nothing under ``objects/``, ``engine/``, ``readback/``, ``record/`` or
``executors/`` imports ``lab/``, ``check/``, ``topology/``, ``render/`` or ``testing/``,
and nothing under ``executors/`` imports ``engine/``, ``objects/`` or ``readback/``.

Exit 1 with the circles and the reaching-up imports named; 0 when clean.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "netns_kit"
LOW = ("objects", "engine", "readback", "record", "executors")
HIGH = ("lab", "check", "topology", "render", "testing")
FORBIDDEN = {low: HIGH for low in LOW} | {"executors": (*HIGH, "engine", "objects", "readback")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                for alias in node.names:
                    child = f"{source}.{alias.name}"
                    targets.append(child if child in files else source)
            for target in targets:
                while target and target not in files and "." in target:
                    target = target.rpartition(".")[0]
                if target in files and target != mod:
                    edges[mod].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def reaching_up(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in sorted(edges.items()):
        parts = mod.split(".")
        if len(parts) < 3 or parts[1] not in FORBIDDEN:
            continue
        for target in sorted(targets):
            tparts = target.split(".")
            if len(tparts) > 1 and tparts[1] in FORBIDDEN[parts[1]]:
                bad.append(f"{mod} imports {target}")
    return bad


def main() -> int:
    edges = graph()
    problems = [" <-> ".join(c) for c in circles(edges)]
    for line in problems:
        print(f"import circle: {line}")
    ups = reaching_up(edges)
    for line in ups:
        print(f"layer reached up: {line}")
    if problems or ups:
        return 1
    count = sum(map(len, edges.values()))
    print(f"{len(edges)} modules, {count} imports: no circle, no layer reaching up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
