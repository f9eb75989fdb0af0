"""The package's shape (issue 18): no import circles, no layer reaching up, and
processes started only under ``executors/``, checked by ``scripts/check_imports.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_imports.py"


@pytest.fixture(scope="module")
def checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_imports"] = module
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_circle_no_upward_import_and_no_stray_process(
    checker: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert checker.main([]) == 0, capsys.readouterr().out


def _tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "netns_kit"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_a_type_only_circle_is_found(checker: ModuleType, tmp_path: Path) -> None:
    package = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from netns_kit import b\n",
            "b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n"
                "    from netns_kit.a import X\n"
            ),
        },
    )
    assert checker.circles(checker.graph(package)) == [["netns_kit.a", "netns_kit.b"]]
    assert checker.main([str(package)]) == 1


def test_a_lazy_upward_import_and_a_subprocess_are_found(
    checker: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "objects/__init__.py": "",
            "objects/thing.py": "def f():\n    from netns_kit.render import svg\n",
            "render/__init__.py": "",
            "render/svg.py": "import subprocess\n",
        },
    )
    assert checker.main([str(package)]) == 1
    out = capsys.readouterr().out
    assert "layer reached up: netns_kit.objects.thing imports netns_kit.render.svg" in out
    assert "process started outside executors/: netns_kit.render.svg:1 imports subprocess" in out
