#!/usr/bin/env python3
"""Check the package's import graph: no circles, and no layer reaching up.

Every ``import``/``from ... import`` inside ``netns_kit/`` counts, wherever it stands:
at the top, inside a function (a lazy import) or under ``if TYPE_CHECKING:`` (a
type-only import).  ``from netns_kit.pkg import name`` counts as an edge to the module
``netns_kit.pkg.name`` when that module exists, else to ``netns_kit.pkg``; importing a
module also counts as importing the packages above it (their ``__init__`` runs first),
except the root and the importer's own.

Layers: nothing under ``objects/``, ``engine/``, ``readback/``, ``record/`` or
``executors/`` imports ``lab/``, ``check/``, ``topology/``, ``render/`` or ``testing/``,
and nothing under ``executors/`` imports ``engine/``, ``objects/`` or ``readback/``.

And only ``executors/`` starts processes: no other module imports ``subprocess``,
``sh``, ``pty`` or ``multiprocessing``, or calls ``os.system``/``popen``/``fork``/
``exec*``/``spawn*``/``posix_spawn*``.

Exit 1 with the circles, the reaching-up imports and the process starts named; 0 when
clean.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "netns_kit"
LOW = ("objects", "engine", "readback", "record", "executors")
HIGH = ("lab", "check", "topology", "render", "testing")
FORBIDDEN = {low: HIGH for low in LOW} | {"executors": (*HIGH, "engine", "objects", "readback")}


PROCESS_MODULES = {"subprocess", "sh", "pty", "multiprocessing"}
PROCESS_CALLS = ("system", "popen", "fork", "forkpty", "exec", "spawn", "posix_spawn")


def process_starts(root: Path = ROOT) -> list[str]:
    """Modules outside ``executors/`` that could start a process."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        if mod.startswith("netns_kit.executors"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module.split(".")[0]]
            for name in names:
                if name in PROCESS_MODULES:
                    bad.append(f"{mod}:{getattr(node, 'lineno', 0)} imports {name}")
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr.startswith(PROCESS_CALLS)
            ):
                bad.append(f"{mod}:{getattr(node, 'lineno', 0)} calls os.{node.attr}")
    return bad


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(p, root): p for p in root.rglob("*.py")}
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
                    edges[mod].update(_packages_run(mod, target, files))
    return edges


def _packages_run(mod: str, target: str, files: dict[str, Path]) -> set[str]:
    """The packages whose ``__init__`` importing ``target`` runs first (its ancestors
    below the root, other than ``mod``'s own, which already ran): a package that
    re-exports its modules can close a circle at run time."""
    parts = target.split(".")
    own = {".".join(mod.split(".")[:i]) for i in range(1, len(mod.split(".")) + 1)}
    found = set()
    for i in range(2, len(parts)):
        package = ".".join(parts[:i])
        if package in files and package not in own:
            found.add(package)
    return found


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

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)  # a caller's limit is its own (tests share one)
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


def main(argv: list[str] | None = None) -> int:
    """``check_imports.py [PACKAGE_DIR]`` (default: this checkout's netns_kit/)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve() if args else ROOT
    edges = graph(root)
    problems = [" <-> ".join(c) for c in circles(edges)]
    for line in problems:
        print(f"import circle: {line}")
    ups = reaching_up(edges)
    for line in ups:
        print(f"layer reached up: {line}")
    starts = process_starts(root)
    for line in starts:
        print(f"process started outside executors/: {line}")
    if problems or ups or starts:
        return 1
    count = sum(map(len, edges.values()))
    print(
        f"{len(edges)} modules, {count} imports: no circle, no layer reaching up, "
        "processes start only in executors/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
