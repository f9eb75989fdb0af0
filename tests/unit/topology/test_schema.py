"""The JSON Schema of topology files: made from the checker's table of keys, kept in
the repository as a copy, and in agreement with the checker on every file we have."""

from __future__ import annotations

import importlib.resources
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from netns_kit import cli, topology
from netns_kit.spec import keys
from netns_kit.topology import base
from netns_kit.topology.schema import schema_text, topology_schema

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the test extra")

ROOT = Path(__file__).resolve().parents[3]
LABS = ROOT / "scripts" / "labs"
CORPUS = Path(__file__).parent.parent / "topologies"
COPY = ROOT / "schemas" / "topology.schema.json"
REFRESH = "refresh it: netns-kit schema > schemas/topology.schema.json (and the package copy)"

#: Corpus files whose problem is the shape (an unknown or missing key, a wrong type):
#: the schema must refuse them.  Every other corpus file is wrong only in what the
#: schema leaves to the checker (names that must exist, subnets, ranges of text).
SHAPE_WRONG = {
    "bridge-name-too-long.toml",
    "hosts-renamed-in-0.3.toml",
    "machines-wrong.toml",
    "isolated-not-bool.toml",
    "links-as-table.toml",
    "missing-link-end.toml",
    "missing-name.toml",
    "mtu-out-of-range.toml",
    "namespace-bad-name.toml",
    "namespaces-not-array.toml",
    "nested-deep.yaml",
    "long-lab-name.toml",
    "sysctl-undefined-namespace.toml",
    "three-addresses.toml",
    "unknown-key-no-match.toml",
    "unknown-link-key.toml",
    "unknown-top-key.toml",
    "yaml-top-level-list.yaml",
    "yaml-typos.yml",
}


def _validator() -> Any:
    schema = topology_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _data(path: Path) -> object:
    if path.suffix == ".toml":
        return tomllib.loads(path.read_text())
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the 'yaml' extra)")
    return yaml.safe_load(path.read_text())


def test_command_prints_the_schema() -> None:
    out = io.StringIO()
    assert cli.main(["schema"], stdout=out) == 0
    assert out.getvalue() == schema_text()
    printed = json.loads(out.getvalue())
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed["required"] == ["name"]


def test_repository_copy_is_current() -> None:
    assert COPY.read_text() == schema_text(), REFRESH


def test_package_copy_is_current() -> None:
    packaged = importlib.resources.files("netns_kit.topology") / "topology.schema.json"
    assert packaged.read_text() == schema_text(), REFRESH


def test_checker_and_schema_read_one_table() -> None:
    """A key added to keys.py is known to both: the checker's lists are the table's."""
    schema = topology_schema()
    assert tuple(schema["properties"]) == base.TOP_KEYS
    for name, (allowed, required) in base.SECTIONS.items():
        table = keys.SECTIONS[name]
        assert schema["properties"][name]["items"] == {"$ref": f"#/$defs/{table.name}"}
        assert tuple(schema["$defs"][table.name]["properties"]) == allowed
        assert tuple(schema["$defs"][table.name].get("required", ())) == required


def test_every_key_has_a_description_and_a_valid_example() -> None:
    for table in (keys.TOP, *keys.TABLES.values()):
        for key in table.keys:
            assert key.description.strip(), f"{table.name}.{key.name}"
            sub = {**key.shape, "$defs": topology_schema()["$defs"]}
            jsonschema.validate(key.example, sub, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("path", sorted(LABS.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_lab_validates(path: Path) -> None:
    _validator().validate(_data(path))


@pytest.mark.parametrize("path", sorted(LABS.glob("*.toml")), ids=lambda p: p.name)
def test_example_labs_name_the_schema(path: Path) -> None:
    """The first line tells taplo where the schema is; the loader takes it as a comment."""
    assert path.read_text().splitlines()[0] == "#:schema ../../schemas/topology.schema.json"
    assert topology.load(path).name


def test_yaml_schema_line_is_a_comment(tmp_path: Path) -> None:
    pytest.importorskip("yaml", reason="PyYAML is not installed (the 'yaml' extra)")
    path = tmp_path / "lab.yaml"
    path.write_text(
        "# yaml-language-server: $schema=../schemas/topology.schema.json\n"
        "name: t\nnamespaces: [red, blue]\nlinks:\n  - {a: red, b: blue}\n"
    )
    assert topology.load(path).namespaces == ("red", "blue")


CORPUS_FILES = sorted(
    p for p in CORPUS.iterdir() if p.suffix in (".toml", ".yaml", ".yml") and "syntax" not in p.name
)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_file(path: Path) -> None:
    """The shape-wrong corpus files are refused; the rest are left to the checker."""
    try:
        data = _data(path)
    except (tomllib.TOMLDecodeError, RecursionError, ValueError):
        pytest.skip(f"{path.name} does not parse: the parser refuses it before any schema")
    errors = list(_validator().iter_errors(data))
    if path.name in SHAPE_WRONG:
        assert errors, f"the schema accepts {path.name}"
    else:
        assert not errors, [e.message for e in errors]


def test_shape_wrong_list_names_real_files() -> None:
    assert {p.name for p in CORPUS_FILES} >= SHAPE_WRONG


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"name": "t", "colour": 1}, "colour"),
        ({"name": "t", "links": [{"a": "x", "b": "y", "rat": "1mbit"}]}, "rat"),
        ({"name": "t", "links": [{"a": "x", "b": "y", "direction": "up"}]}, "up"),
        ({"name": "t", "port_forwards": [{"port": 1, "to": "a", "protocol": "icmp"}]}, "icmp"),
        ({"name": "t", "isolated": "yes"}, "yes"),
        ({"name": "t", "machines": {"a": {"ssh": "x", "sudoo": True}}}, "sudoo"),
        ({"name": "t", "namespaces": [{"name": "r", "hots": "a"}]}, "hots"),
    ],
)
def test_schema_refuses(data: dict[str, object], where: str) -> None:
    errors = list(_validator().iter_errors(data))
    assert errors
    assert any(where in str(e.message) or where in str(list(e.path)) for e in errors) or any(
        where in str(c.message) for e in errors for c in (e.context or [])
    )
