"""Fuzzing the topology reader: whatever a file or dict holds, the answer is a Topology
or a NetnsKitError with a short message, and nothing is run (issue 9).

Every test here is derandomized and keeps no example database, so a run in CI is
the same run every time; together they try 1,700 documents:

- mutations of the example labs and the broken-file corpus, as TOML and as YAML;
- random nested dicts, lists and scalars, and topology-shaped dicts with random
  values, through ``topology.from_dict`` and ``Lab.from_dict``;
- deep, huge, self-containing and fanned-out values planted in a valid lab.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netns_kit import Lab, NetnsKitError, RecordingExecutor, topology
from netns_kit.spec import Topology
from netns_kit.topology import TopologyError

ROOT = Path(__file__).resolve().parents[3]
LABS = ROOT / "scripts" / "labs"
CORPUS = Path(__file__).parent.parent / "topologies"
HAVE_YAML = importlib.util.find_spec("yaml") is not None

#: A message may list 50 problems in full and one line for the rest; each problem is
#: a path, a bounded value and a reason with at most a few names listed.
PROBLEM_MAX = 1_000
MESSAGE_MAX = 51 * (PROBLEM_MAX + 3) + 300

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_refused_well(error: NetnsKitError) -> None:
    """The error is one a user can read: short, and every problem short."""
    message = str(error)
    assert len(message) <= MESSAGE_MAX, message[:500]
    if isinstance(error, TopologyError):
        assert error.problems
        assert all(len(problem) <= PROBLEM_MAX for problem in error.problems), max(
            error.problems, key=len
        )[:500]


def outcome(call: Callable[[], Topology]) -> Topology | None:
    """The topology, or None when it was refused properly; anything else fails."""
    try:
        return call()
    except NetnsKitError as error:
        assert_refused_well(error)
        return None


# -- seeds: the example labs and the broken-file corpus --------------------------------


def _seeds() -> tuple[list[str], list[str]]:
    tomls = [p.read_text() for p in sorted(LABS.glob("*.toml"))]
    tomls += [p.read_text() for p in sorted(CORPUS.glob("*.toml"))]
    yamls = [p.read_text() for p in sorted(CORPUS.glob("*.y*ml"))]
    if HAVE_YAML:
        import yaml

        for text in tomls[:3]:  # the example labs, as YAML
            yamls.append(yaml.safe_dump(tomllib.loads(text), sort_keys=False))
            yamls.append(yaml.safe_dump(tomllib.loads(text), default_flow_style=True))
    return tomls, yamls


TOML_SEEDS, YAML_SEEDS = _seeds()

#: Fragments that break parsers and checks in interesting ways, mixed into the seeds.
TOKENS = [
    "[",
    "]",
    "{",
    "}",
    "[" * 60,
    "[" * 700,
    "{a=" * 50,
    "- " * 400,
    '"',
    "'",
    "'''",
    '"""',
    "\n",
    " = ",
    ": ",
    ",",
    "#",
    "\\",
    "\\u0000",
    "\x00",
    "\t",
    "9" * 5000,
    "-" + "9" * 4400,
    "0x" + "f" * 4000,
    "1e999",
    "-1e999",
    "nan",
    "inf",
    "~",
    "null",
    "true",
    "yes",
    "1979-05-27T07:32:00Z",
    "2020-13-45",
    "2020-02-30T25:61:61",
    "12:34:56",
    "&a ",
    "*a",
    "&a [*a]",
    "!!python/object:os.system ",
    "!!binary ",
    "!" + "t" * 3000 + " ",
    "<<: *a\n",
    "? ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "[[links]]\n",
    "[[routes]]\n",
    "[bridges]\n",
    "namespaces",
    "name",
    "links",
    "a = ",
    "b = ",
    "rde",
    "v-net0",
    "x" * 70,
    "é",
    "\U0001f600",
    "192.168.15.0/24",
    "10.0.0.1",
    "fe80::1%eth0",
    "default",
    "lo",
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """A seed with a few insertions, deletions, duplications and replacements."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "token", "delete", "duplicate", "replace"]))
        if op == "insert":
            text = text[:where] + draw(st.text(max_size=12)) + text[where:]
        elif op == "token":
            text = text[:where] + draw(st.sampled_from(TOKENS)) + text[where:]
        elif op == "delete":
            text = text[:where] + text[where + draw(st.integers(1, 40)) :]
        elif op == "duplicate":
            chunk = text[where : where + draw(st.integers(1, 200))]
            text = text[:where] + chunk * draw(st.integers(2, 20)) + text[where:]
        else:
            end = where + draw(st.integers(1, 10))
            text = text[:where] + draw(st.sampled_from(TOKENS)) + text[end:]
    return text


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def load_text(scratch: Path, suffix: str, text: str) -> Topology | None:
    path = scratch / f"fuzz{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return outcome(lambda: topology.load(path))


@settings(FUZZ, max_examples=450)
@given(text=mutated(TOML_SEEDS))
def test_mutated_toml_files(scratch: Path, text: str) -> None:
    found = load_text(scratch, ".toml", text)
    if found is not None:
        assert topology.from_dict(topology.to_dict(found)) == found


@pytest.mark.skipif(not HAVE_YAML, reason="PyYAML is not installed (the 'yaml' extra)")
@settings(FUZZ, max_examples=300)
@given(text=mutated(YAML_SEEDS))
def test_mutated_yaml_files(scratch: Path, text: str) -> None:
    found = load_text(scratch, ".yaml", text)
    if found is not None:
        assert topology.from_dict(topology.to_dict(found)) == found


@settings(FUZZ, max_examples=100)
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".toml", ".yaml", ".yml"]))
def test_random_bytes(scratch: Path, data: bytes, suffix: str) -> None:
    path = scratch / f"bytes{suffix}"
    path.write_bytes(data)
    outcome(lambda: topology.load(path))


# -- dicts -------------------------------------------------------------------------------

NAMES = ["red", "blue", "rde", "br0", "v-net-0", "veth-red", "lo", "x", "", "a b", "-v", "all"]
ADDRESSES = ["10.0.0.1/24", "10.0.0.2/24", "10.0.0.0/24", "10.0.0.1", "fd00::1/64", "nonsense"]
KEYS = [
    *("name", "isolated", "ipv6_link_local", "namespaces", "bridges", "links", "routes"),
    *("sysctls", "masquerade", "a", "b", "addresses", "names", "mtu", "namespace"),
    *("destination", "via", "dev", "key", "value", "source", "out_interface", "address"),
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**64, -(2**63) - 1, 1500, 0, 68, 65536]),
    # Built lazily: Hypothesis itself reprs the arguments of a strategy.
    st.sampled_from([5000, -4400]).map(lambda digits: 10 ** abs(digits) * (digits // abs(digits))),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NAMES + ADDRESSES + ["default", "net.ipv4.ip_forward", "1"]),
    st.text(max_size=20),
    st.sampled_from(["n" * 100, "é" * 40, "\x00", "a\nb", "z" * 10_000]),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=10), st.integers(-3, 3), st.none())
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.tuples(inner, inner),
        st.dictionaries(keys, inner, max_size=5),
    ),
    max_leaves=25,
)


def topology_shaped() -> st.SearchStrategy[dict[Any, Any]]:
    """Dicts with the file's keys, whose values are mostly plausible, often not."""
    name = st.one_of(st.sampled_from(NAMES), scalars)
    address = st.one_of(st.sampled_from([*ADDRESSES, "", None]), scalars)

    def table(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.fixed_dictionaries({}, optional=fields),
            st.dictionaries(keys, structures, max_size=3),
            structures,
        )

    sections = {
        "name": st.one_of(st.sampled_from(["lab", "x" * 59]), scalars),
        "isolated": st.one_of(st.booleans(), scalars),
        "ipv6_link_local": st.one_of(st.booleans(), scalars),
        "namespaces": st.one_of(st.lists(name, max_size=6), structures),
        "bridges": st.lists(table({"name": name, "address": address}), max_size=3),
        "links": st.lists(
            table(
                {
                    "a": name,
                    "b": name,
                    "addresses": st.one_of(st.lists(address, max_size=3), structures),
                    "names": st.one_of(st.lists(name, max_size=3), structures),
                    "mtu": st.one_of(st.integers(0, 70_000), scalars),
                }
            ),
            max_size=4,
        ),
        "routes": st.lists(
            table(
                {
                    "namespace": name,
                    "destination": st.one_of(st.sampled_from(["default", "10.9.0.0/16"]), address),
                    "via": st.one_of(st.sampled_from(["10.0.0.2", "fd00::2", "fe80::1"]), address),
                    "dev": name,
                }
            ),
            max_size=3,
        ),
        "sysctls": st.lists(
            table(
                {
                    "namespace": name,
                    "key": st.sampled_from(["net.ipv4.ip_forward"]) | scalars,
                    "value": scalars,
                }
            ),
            max_size=2,
        ),
        "masquerade": st.lists(table({"source": address, "out_interface": name}), max_size=2),
    }
    return st.fixed_dictionaries({}, optional=sections)


def assert_from_dict_is_safe(data: Any, state: Path) -> None:
    found = outcome(lambda: topology.from_dict(data))
    if found is not None:
        assert topology.from_dict(topology.to_dict(found)) == found
    ex = RecordingExecutor()
    try:
        lab = Lab.from_dict(data, executor=ex, state_dir=state)
    except NetnsKitError as error:
        assert_refused_well(error)
        assert found is None or not isinstance(error, TopologyError)
    else:
        assert found is not None, "Lab.from_dict took what topology.from_dict refused"
        assert lab.name == found.name
    assert ex.commands == [], "nothing runs before the lab is opened"


@settings(FUZZ, max_examples=300)
@given(data=structures)
def test_random_structures(scratch: Path, data: Any) -> None:
    assert_from_dict_is_safe(data, scratch / "state")


@settings(FUZZ, max_examples=400)
@given(data=topology_shaped())
def test_topology_shaped_dicts(scratch: Path, data: dict[Any, Any]) -> None:
    assert_from_dict_is_safe(data, scratch / "state")


# -- deep, huge, self-containing and fanned-out values in a valid lab -------------------

VALID = topology.to_dict(topology.load(LABS / "router-nat.toml"))


def deep(kind: str, depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = {"a": value} if kind == "dict" else [value]
    return value


def fanned(levels: int) -> list[object]:
    """``levels`` lists of ten references to the one below: 10**levels leaves, shared."""
    value: list[object] = ["red"] * 10
    for _ in range(levels):
        value = [value] * 10
    return value


def looped() -> list[object]:
    loop: list[object] = []
    loop.append(loop)
    return loop


hostile = st.one_of(
    st.builds(deep, st.sampled_from(["dict", "list"]), st.integers(30, 3000)),
    st.builds(fanned, st.integers(1, 9)),
    st.builds(looped),
    st.integers(4000, 6000).map(lambda digits: 10**digits),
    st.integers(65, 2_000_000).map(lambda length: "r" * length),
)


@settings(FUZZ, max_examples=150)
@given(
    where=st.sampled_from(
        [
            ("name",),
            ("namespaces",),
            ("namespaces", 0),
            ("bridges",),
            ("bridges", 0, "name"),
            ("links", 0, "a"),
            ("links", 1, "addresses"),
            ("links", 2, "names"),
            ("routes", 0, "via"),
            ("sysctls", 0, "value"),
            ("masquerade", 0, "source"),
            ("extra",),
        ]
    ),
    value=hostile,
)
def test_hostile_values_in_a_valid_lab(
    scratch: Path, where: tuple[Any, ...], value: object
) -> None:
    data = copy_of(VALID)
    holder: Any = data
    for step in where[:-1]:
        holder = holder[step]
    holder[where[-1]] = value
    if isinstance(value, str) and where == ("sysctls", 0, "value"):
        assert outcome(lambda: topology.from_dict(data)) is not None  # a long text is a value
        return
    with pytest.raises(TopologyError) as caught:
        topology.from_dict(data)
    assert_refused_well(caught.value)
    ex = RecordingExecutor()
    with pytest.raises(TopologyError) as caught:
        Lab.from_dict(data, executor=ex, state_dir=scratch / "state")
    assert_refused_well(caught.value)
    assert ex.commands == []


def copy_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: copy_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_of(item) for item in value]
    return value
