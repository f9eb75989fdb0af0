"""Reading topology files: TOML or YAML into plain data, bounded whatever they hold."""

from __future__ import annotations

import importlib
import os
import re
import tomllib
from pathlib import Path

from netns_kit.spec import Topology
from netns_kit.topology.check import MAX_DEPTH
from netns_kit.topology.dicts import from_dict
from netns_kit.topology.problems import TopologyError

#: The most a topology file may weigh.  A lab of 5,000 namespaces, each with a link,
#: a route and a sysctl, is about 1 MiB of TOML; reading is refused beyond this.
MAX_FILE_BYTES = 4 * 1024 * 1024


def load(path: str | os.PathLike[str]) -> Topology:
    """Read and check a topology file (``.toml``, or ``.yaml``/``.yml``)."""
    source = os.fspath(path)
    return from_dict(read(path), source=source)


def read(path: str | os.PathLike[str]) -> object:
    """A topology file's raw data, unchecked; file and syntax errors raise TopologyError."""
    file = Path(path)
    source = os.fspath(path)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise TopologyError([f"unknown file type {suffix!r}: use .toml, .yaml or .yml"], source)
    try:
        with file.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise TopologyError(
                [
                    f"is larger than {MAX_FILE_BYTES // 2**20} MiB "
                    f"({MAX_FILE_BYTES:,} bytes), the most a topology file may be"
                ],
                source,
            )
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise TopologyError(["no such file"], source) from None
    except IsADirectoryError:
        raise TopologyError(["is a directory, not a topology file"], source) from None
    except OSError as error:
        raise TopologyError([f"cannot be read ({error.strerror})"], source) from None
    except UnicodeDecodeError as error:
        raise TopologyError([f"is not UTF-8 text (byte {error.start})"], source) from None
    if suffix == ".toml":
        return _parse_toml(text, source)
    return _parse_yaml(text, source)


_TOML_WHERE = re.compile(r"^(?P<what>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$")
_INT_DIGITS = re.compile(r"Exceeds the limit \((?P<digits>\d+) digits\)")
#: The longest parser message quoted (PyYAML quotes tags and anchors from the file).
_SAID_MAX = 200


def _parse_toml(text: str, source: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        said = str(error)
        where = _TOML_WHERE.match(said)
        if where:
            said = f"line {where['line']}, column {where['column']}: {where['what']}"
        elif said.endswith(" (at end of document)"):
            said = f"at the end of the file: {said.removesuffix(' (at end of document)')}"
        raise TopologyError([f"TOML syntax error: {_clip(said)}"], source) from None
    except (RecursionError, ValueError, MemoryError) as error:
        raise TopologyError([_unreadable("TOML", error)], source) from None


def _unreadable(language: str, error: BaseException) -> str:
    """Why a parser gave up other than on a syntax error: these come from a hostile
    file (nesting deeper than the parser's recursion, a number too long for ``int``),
    and must end as a TopologyError like any bad file, not as a traceback."""
    if isinstance(error, RecursionError):
        said = f"it is nested too deeply (a topology needs 4 levels, {MAX_DEPTH} are accepted)"
    elif isinstance(error, MemoryError):
        said = "it does not fit in memory"
    elif digits := _INT_DIGITS.search(str(error)):
        said = f"it holds a number of more than {int(digits['digits']):,} digits"
    else:
        said = _clip(str(error) or type(error).__name__)
    return f"{language} could not be read: {said}"


def _clip(text: str, limit: int = _SAID_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _parse_yaml(text: str, source: str) -> object:
    try:
        yaml = importlib.import_module("yaml")
    except ModuleNotFoundError:
        raise TopologyError(
            ["reading YAML needs PyYAML: install the 'yaml' extra (pip install 'netns-kit[yaml]')"],
            source,
        ) from None
    try:
        data: object = yaml.safe_load(text)
    except yaml.YAMLError as error:
        said = _clip(getattr(error, "problem", None) or str(error))
        mark = getattr(error, "problem_mark", None)
        if mark is not None:
            said = f"line {mark.line + 1}, column {mark.column + 1}: {said}"
        raise TopologyError([f"YAML syntax error: {said}"], source) from None
    except (RecursionError, ValueError, MemoryError) as error:
        raise TopologyError([_unreadable("YAML", error)], source) from None
    return data
