"""Topology files: loading, the broken-file corpus, and building through a fake lab."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest

from netns_kit import ValidationError, topology
from netns_kit.spec import BridgeSpec, LinkSpec, MasqueradeSpec, RouteSpec, SysctlSpec, Topology
from netns_kit.topology import TopologyError
from netns_kit.topology.suggest import Names

ROOT = Path(__file__).resolve().parents[3]
LABS = ROOT / "scripts" / "labs"
CORPUS = Path(__file__).parent.parent / "topologies"
HAVE_YAML = importlib.util.find_spec("yaml") is not None
needs_yaml = pytest.mark.skipif(not HAVE_YAML, reason="PyYAML is not installed (the 'yaml' extra)")


def problems_of(data: object) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        topology.from_dict(data)
    return caught.value.problems


# -- the example labs ------------------------------------------------------------------


def test_veth_pair_example() -> None:
    lab = topology.load(LABS / "veth-pair.toml")
    assert lab.name == "veth-pair"
    assert lab.isolated is True
    assert lab.namespaces == ("red", "blue")
    assert lab.links == (LinkSpec("red", "blue", addresses=("192.168.15.1/24", "192.168.15.2/24")),)
    assert lab.with_link_names().links[0].names == ("veth-red", "veth-blue")


def test_bridge_example() -> None:
    lab = topology.load(LABS / "bridge.toml")
    assert lab.isolated is True
    assert lab.bridges == (BridgeSpec("v-net-0", "192.168.15.5/24"),)
    named = lab.with_link_names().links
    assert [(link.a, link.b, link.names, link.addresses) for link in named] == [
        ("red", "v-net-0", ("veth-red", "veth-red-br"), ("192.168.15.1/24", None)),
        ("blue", "v-net-0", ("veth-blue", "veth-blue-br"), ("192.168.15.2/24", None)),
    ]


def test_router_nat_example() -> None:
    lab = topology.load(LABS / "router-nat.toml")
    assert lab.isolated is True
    assert set(lab.namespaces) == {"red", "blue", "outside"}
    assert [b.name for b in lab.bridges] == ["v-net-0", "wan0"]
    assert RouteSpec("default", via="192.168.15.5", namespace="red") in lab.routes
    assert lab.sysctls == (SysctlSpec("net.ipv4.ip_forward", "1"),)
    assert lab.masquerades == (MasqueradeSpec("192.168.15.0/24", "wan0"),)
    # Every address of the lab is private: nothing in it can reach a real network.
    for link in lab.links:
        for address in link.addresses:
            assert address is None or address.startswith(("192.168.", "10."))


@pytest.mark.parametrize("path", sorted(LABS.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_is_isolated_and_round_trips(path: Path) -> None:
    lab = topology.load(path)
    assert lab.isolated, "example labs must not touch the root namespace"
    assert topology.from_dict(topology.to_dict(lab)) == lab


# -- the broken-file corpus ------------------------------------------------------------

BROKEN = sorted(p for p in CORPUS.iterdir() if p.suffix != ".expected")


def test_corpus_is_big_enough() -> None:
    assert len(BROKEN) >= 20
    for path in BROKEN:
        assert path.with_name(path.name + ".expected").is_file(), path


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_file(path: Path) -> None:
    """Each ``X.expected`` holds one line per problem, in order: a fragment of it."""
    if path.suffix in (".yaml", ".yml") and not HAVE_YAML:
        pytest.skip("PyYAML is not installed (the 'yaml' extra)")
    expected = path.with_name(path.name + ".expected").read_text().splitlines()
    with pytest.raises(TopologyError) as caught:
        topology.load(path)
    problems = caught.value.problems
    assert len(problems) == len(expected), "\n".join(problems)
    for fragment, problem in zip(expected, problems, strict=True):
        assert fragment in problem
        assert fragment in str(caught.value)
    assert str(caught.value).startswith(str(path))


# -- several problems at once, did you mean -----------------------------------------


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(
        {
            "name": "lab",
            "isolated": "no",
            "namespaces": ["red", "blue", "red"],
            "bridges": [{"name": "br0", "address": "10.1.0.1/33"}],
            "links": [
                {"a": "red", "b": "blue", "addresses": ["10.0.0.1/24", "10.0.9.2/24"]},
                {"a": "red", "b": "gren"},
                {"a": "blue", "b": "br0", "mtu": 70000},
            ],
            "routes": [{"namespace": "red", "destination": "10.9.0.0/16", "via": "172.16.0.1"}],
            "sysctls": [{"key": "", "value": 1}],
            "masquerade": [{"source": "nonsense"}],
            "extra": 1,
        }
    )
    assert found == [
        "extra: unknown key (expected one of: name, isolated, ipv6_link_local, "
        "namespaces, bridges, links, routes, sysctls, masquerade, port_forwards, hosts, "
        "hosts_files, machines, events, watch, expect, ospf, bgp)",
        "isolated: must be true or false, not a string ('no')",
        "namespaces[2]: 'red' is listed twice (also at namespaces[0])",
        "bridges[0].address: '10.1.0.1/33' is not an IPv4 or IPv6 interface",
        "links[1].b: 'gren' is not a namespace or bridge of this lab (defined: red, blue)",
        "links[2].mtu: 70000 is not between 68 and 65535",
        "links[0].addresses[1]: '10.0.9.2/24' is not in the same subnet as the other end's "
        "'10.0.0.1/24' (10.0.0.0/24): a link's two ends share one",
        "routes[0].via: '172.16.0.1' is not in a subnet connected to namespace 'red' "
        "(connected: 10.0.0.0/24)",
        "sysctls[0].key: '' is not a sysctl key (like 'net.ipv4.ip_forward')",
        "masquerade[0].source: 'nonsense' is not an IPv4 or IPv6 network",
    ]


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(TopologyError) as caught:
        topology.from_dict({"name": "x", "namespaces": ["a", "a"], "bogus": 1}, source="lab.toml")
    error = caught.value
    assert str(error) == (
        "lab.toml: 2 problems:\n"
        "  bogus: unknown key (expected one of: name, isolated, ipv6_link_local, "
        "namespaces, bridges, links, routes, sysctls, masquerade, port_forwards, hosts, "
        "hosts_files, machines, events, watch, expect, ospf, bgp)\n"
        "  namespaces[1]: 'a' is listed twice (also at namespaces[0])"
    )
    assert isinstance(error, ValidationError)
    assert error.field == "lab.toml"
    copy = pickle.loads(pickle.dumps(error))
    assert copy.problems == error.problems
    assert str(copy) == str(error)


def test_single_problem_is_one_line() -> None:
    with pytest.raises(TopologyError, match=r"^<dict>: name: required key is missing$"):
        topology.from_dict({})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"name": "x", "isolate": True}, "isolate: unknown key (did you mean 'isolated'?)"),
        ({"name": "x", "bridge": []}, "bridge: unknown key (did you mean 'bridges'?)"),
        ({"name": "x", "masquerades": []}, "masquerades: unknown key (did you mean 'masquerade'?)"),
        (
            {"name": "x", "routes": [{"destination": "default", "dev": "lo", "namepsace": "r"}]},
            "routes[0].namepsace: unknown key (did you mean 'namespace'?)",
        ),
        (
            {"name": "x", "namespaces": ["red"], "sysctls": [{"key": "a.b", "valeu": 1}]},
            "sysctls[0].valeu: unknown key (did you mean 'value'?)",
        ),
        (
            {"name": "x", "namespaces": ["red", "blue"], "links": [{"a": "rde", "b": "blue"}]},
            "links[0].a: 'rde' is not a namespace or bridge of this lab (did you mean 'red'?)",
        ),
        (
            {
                "name": "x",
                "namespaces": ["red"],
                "bridges": [{"name": "v-net-0"}],
                "links": [{"a": "red", "b": "v-net0"}],
            },
            "links[0].b: 'v-net0' is not a namespace or bridge of this lab "
            "(did you mean 'v-net-0'?)",
        ),
    ],
)
def test_did_you_mean(data: dict[str, Any], expected: str) -> None:
    assert expected in problems_of(data)


# -- finer points of the checks -----------------------------------------------------


def test_an_invalid_name_is_not_reported_again_where_it_is_used() -> None:
    found = problems_of(
        {"name": "x", "namespaces": ["bad name"], "links": [{"a": "bad name", "b": "bad name"}]}
    )
    assert len(found) == 3
    assert found[0].startswith("namespaces[0]: 'bad name' holds ' '")
    assert all(
        p.startswith(("links[0].a: 'bad name' holds", "links[0].b: 'bad name' holds"))
        for p in found[1:]
    )
    assert not any("is not a namespace" in p for p in found)


def test_one_sided_and_ipv6_addresses() -> None:
    lab = topology.from_dict(
        {
            "name": "v6",
            "namespaces": ["red", "blue"],
            "links": [
                {"a": "red", "b": "blue", "addresses": ["", "fd00::2/64"]},
                {"a": "red", "b": "blue", "addresses": ["fd01::1/64", "fd01::2/64"]},
            ],
            "routes": [
                {"namespace": "red", "destination": "default", "via": "fd01::2"},
                {"namespace": "blue", "destination": "::/0", "via": "fe80::1", "dev": "veth-blue"},
            ],
        }
    )
    assert lab.links[0].addresses == (None, "fd00::2/64")
    assert lab.routes[1] == RouteSpec("::/0", via="fe80::1", dev="veth-blue", namespace="blue")


def test_default_routes_of_both_versions_may_coexist() -> None:
    lab = topology.from_dict(
        {
            "name": "dual",
            "namespaces": ["red", "blue"],
            "links": [
                {"a": "red", "b": "blue", "addresses": ["10.0.0.1/24", "10.0.0.2/24"]},
                {"a": "red", "b": "blue", "addresses": ["fd00::1/64", "fd00::2/64"]},
            ],
            "routes": [
                {"namespace": "red", "destination": "default", "via": "10.0.0.2"},
                {"namespace": "red", "destination": "default", "via": "fd00::2"},
            ],
        }
    )
    assert len(lab.routes) == 2
    # Without a gateway "default" is IPv4's, so a second one is the same route.
    found = problems_of(
        {
            **topology.to_dict(lab),
            "routes": [
                {"namespace": "red", "destination": "default", "via": "10.0.0.2"},
                {"namespace": "red", "destination": "default", "dev": "veth-red"},
            ],
        }
    )
    assert found == [
        "routes[1]: a route to default in namespace 'red' is already given by routes[0]"
    ]


def test_host_side_checks_only_in_isolated_labs() -> None:
    shared = {
        "name": "x",
        "namespaces": ["red"],
        "routes": [{"destination": "10.0.0.0/8", "dev": "eth0"}],
        "masquerade": [{"source": "192.168.15.0/24", "out_interface": "eth0"}],
    }
    # Not isolated: the host side is the root namespace, whose interfaces are unknown.
    assert topology.from_dict(shared).routes[0].dev == "eth0"
    found = problems_of({**shared, "isolated": True})
    assert found == [
        "routes[0].dev: 'eth0' is not an interface in the lab's host side (it has: none)",
        "masquerade[0].out_interface: 'eth0' is not an interface on the lab's host side "
        "(it has: none)",
    ]


def test_host_side_route_through_a_bridge() -> None:
    lab = topology.from_dict(
        {
            "name": "x",
            "isolated": True,
            "namespaces": ["gw"],
            "bridges": [{"name": "br0", "address": "10.0.0.1/24"}],
            "links": [{"a": "gw", "b": "br0", "addresses": ["10.0.0.2/24"]}],
            "routes": [{"destination": "172.16.0.0/12", "via": "10.0.0.2"}],
        }
    )
    assert lab.routes == (RouteSpec("172.16.0.0/12", via="10.0.0.2"),)


def test_a_bridge_link_address_needs_the_bridge_prefix() -> None:
    found = problems_of(
        {
            "name": "x",
            "namespaces": ["red"],
            "bridges": [{"name": "br0", "address": "10.0.0.1/24"}],
            "links": [{"a": "red", "b": "br0", "addresses": ["10.0.0.2/16"]}],
        }
    )
    assert found == [
        "links[0].addresses[0]: '10.0.0.2/16' is not in the subnet of bridge 'br0' "
        "(10.0.0.0/24, from bridges[0].address)"
    ]


def test_a_bridge_name_taken_by_a_default_end_name_moves_the_link_to_its_pair_names() -> None:
    lab = topology.from_dict(
        {
            "name": "x",
            "namespaces": ["red"],
            "bridges": [{"name": "veth-red-br"}, {"name": "br0"}],
            "links": [{"a": "red", "b": "br0"}],
        }
    )
    assert lab.with_link_names().links[0].names == ("red-br0", "br0-red")


def test_an_explicit_name_taken_by_a_bridge_is_refused() -> None:
    found = problems_of(
        {
            "name": "x",
            "namespaces": ["red"],
            "bridges": [{"name": "br1"}, {"name": "br0"}],
            "links": [{"a": "red", "b": "br0", "names": ["eth0", "br1"]}],
        }
    )
    assert found == [
        "links[0].names[1]: 'br1' is already used in the lab's host side by bridges[0].name"
    ]


def test_wrong_types() -> None:
    found = problems_of(
        {
            "name": 5,
            "namespaces": ["red"],
            "links": ["red-blue", {"a": "red", "b": "red2", "names": "veth0", "mtu": "1500"}],
            "routes": {"destination": "default"},
        }
    )
    assert found == [
        "name: 5 is not a name (expected a string)",
        "links[0]: must be a table, not a string ('red-blue')",
        "links[1].b: 'red2' is not a namespace or bridge of this lab (did you mean 'red'?)",
        "links[1].names: must be an array of two interface names, not a string ('veth0')",
        "links[1].mtu: '1500' is not a whole number",
        "routes: must be an array of tables ([[routes]] in TOML), not a table",
    ]


def test_top_level_must_be_a_table() -> None:
    assert problems_of(["name"]) == ["the top level must be a table of keys, not an array"]


def test_sysctl_values_become_strings() -> None:
    lab = topology.from_dict(
        {
            "name": "x",
            "namespaces": ["red"],
            "sysctls": [
                {"namespace": "red", "key": "net.ipv4.ip_forward", "value": 1},
                {"namespace": "red", "key": "net.ipv4.conf.all.rp_filter", "value": "2"},
            ],
        }
    )
    assert [s.value for s in lab.sysctls] == ["1", "2"]


def test_check_runs_a_python_topology_through_the_same_checks() -> None:
    made = Topology(
        name="py",
        namespaces=("red", "blue"),
        links=(LinkSpec("red", "blue", addresses=("10.0.0.1/24", "10.0.1.2/24")),),
    )
    with pytest.raises(TopologyError, match=r"^<topology>: links\[0\]\.addresses\[1\]"):
        topology.check(made)
    good = Topology(name="py", namespaces=("red", "blue"), links=(LinkSpec("red", "blue"),))
    assert topology.check(good) == good


# -- files -----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(TopologyError) as caught:
        topology.load(missing)
    assert str(caught.value) == f"{missing}: no such file"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "lab.toml"
    folder.mkdir()
    with pytest.raises(TopologyError, match="is a directory"):
        topology.load(folder)


def test_not_utf8(tmp_path: Path) -> None:
    bad = tmp_path / "lab.toml"
    bad.write_bytes(b'name = "\xff"\n')
    with pytest.raises(TopologyError, match="is not UTF-8 text"):
        topology.load(bad)


BRIDGE_YAML = """\
name: bridge
isolated: true
namespaces: [red, blue]
bridges:
  - name: v-net-0
    address: 192.168.15.5/24
links:
  - {a: red, b: v-net-0, addresses: [192.168.15.1/24]}
  - {a: blue, b: v-net-0, addresses: [192.168.15.2/24]}
"""


@needs_yaml
@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_loads_like_toml(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"bridge{suffix}"
    path.write_text(BRIDGE_YAML)
    assert topology.load(path) == topology.load(LABS / "bridge.toml")


def test_yaml_without_pyyaml_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # makes `import yaml` fail
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE_YAML)
    with pytest.raises(TopologyError) as caught:
        topology.load(path)
    assert "install the 'yaml' extra" in str(caught.value)
    assert "netns-kit[yaml]" in str(caught.value)


# -- hostile files: always a TopologyError, short, and nothing built ----------------------

#: Generous: 50 problems of a few hundred characters each, and the summary line.
MESSAGE_MAX = 50 * 400 + 200


def error_of(call: Any, *args: Any) -> TopologyError:
    with pytest.raises(TopologyError) as caught:
        call(*args)
    assert len(str(caught.value)) <= MESSAGE_MAX
    return caught.value


def nested_dict(depth: int) -> dict[str, object]:
    top: dict[str, object] = {}
    inner = top
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    return top


def test_a_huge_integer_in_a_dict_is_described_not_written() -> None:
    error = error_of(topology.from_dict, {"name": 10**5000})
    assert error.problems == ["name: an integer of 5,001 digits is not a name (expected a string)"]
    error = error_of(topology.from_dict, {"name": "x", "isolated": -(10**5000)})
    assert error.problems == ["isolated: must be true or false, not an integer of 5,001 digits"]


def test_a_huge_sysctl_value_is_refused() -> None:
    found = problems_of(
        {"name": "x", "sysctls": [{"key": "net.ipv4.ip_forward", "value": 10**5000}]}
    )
    assert found == [
        "sysctls[0].value: an integer of 5,001 digits does not fit in 64 bits, "
        "as a sysctl value must"
    ]


def test_a_long_string_is_cut_in_messages() -> None:
    found = problems_of({"name": "n" * 10**6, ("k" * 10**6): 1})
    assert len(found) == 2
    assert found[0].startswith("'" + "k" * 77 + "…': unknown key (expected one of: name, ")
    assert found[1] == "name: '" + "n" * 77 + "…' is longer than 64 bytes"


def test_a_deep_dict_is_refused_before_any_check() -> None:
    data = {"name": "x", "links": [{"a": nested_dict(1000), "b": "y"}]}
    error = error_of(topology.from_dict, data)
    path = "links[0].a" + ".a" * 29
    assert error.problems == [f"{path}: is nested more than 32 levels deep (a topology needs 4)"]


def test_a_self_containing_list_is_refused() -> None:
    loop: list[object] = []
    loop.append(loop)
    error = error_of(topology.from_dict, {"name": "x", "namespaces": loop})
    assert "is nested more than 32 levels deep" in error.problems[0]
    assert error.problems[0].startswith("namespaces[0][0][0]")


def test_the_deepest_accepted_nesting() -> None:
    """32 levels pass the walk (and fail the checks as usual); 33 do not."""

    def deep(levels: int) -> list[object]:
        value: list[object] = []
        for _ in range(levels - 2):  # the top table is one level, this list another
            value = [value]
        return value

    assert problems_of({"name": "x", "namespaces": deep(32)})[0].startswith(
        "namespaces[0]: [[[[…]]]] is not a name"
    )
    assert "nested more than 32" in problems_of({"name": "x", "namespaces": deep(33)})[0]


def test_lab_from_dict_refuses_hostile_data_and_runs_nothing() -> None:
    from netns_kit import Lab, RecordingExecutor

    for data in ({"name": 10**5000}, nested_dict(1000), {"name": "x", "links": [[[]] * 3] * 40}):
        ex = RecordingExecutor()
        with pytest.raises(TopologyError) as caught:
            Lab.from_dict(data, executor=ex)
        assert len(str(caught.value)) <= MESSAGE_MAX
        assert ex.commands == []


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".toml", "name = 1" + "9" * 5000 + "\n"),
        (".yaml", "name: 1" + "9" * 5000 + "\n"),
        (".toml", 'name = "x"\nnamespaces = [' + "9" * 5000 + "]\n"),
    ],
    ids=["toml", "yaml", "toml-in-array"],
)
def test_a_number_too_long_for_python_in_a_file(tmp_path: Path, suffix: str, text: str) -> None:
    if suffix == ".yaml" and not HAVE_YAML:
        pytest.skip("PyYAML is not installed (the 'yaml' extra)")
    path = tmp_path / f"lab{suffix}"
    path.write_text(text)
    error = error_of(topology.load, path)
    language = "TOML" if suffix == ".toml" else "YAML"
    limit = sys.get_int_max_str_digits()
    assert error.problems == [
        f"{language} could not be read: it holds a number of more than {limit:,} digits"
    ]


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
@pytest.mark.parametrize("depth", [40, 600, 100_000])
def test_arrays_nested_deep_in_a_file(tmp_path: Path, suffix: str, depth: int) -> None:
    """Shallow enough for the parser, the walk refuses it; deeper, the parser's
    RecursionError does.  Either way: one short problem."""
    if suffix == ".yaml" and not HAVE_YAML:
        pytest.skip("PyYAML is not installed (the 'yaml' extra)")
    path = tmp_path / f"lab{suffix}"
    sep = " = " if suffix == ".toml" else ": "
    path.write_text(f'name{sep}"x"\nnamespaces{sep}' + "[" * depth + "]" * depth + "\n")
    error = error_of(topology.load, path)
    assert len(error.problems) == 1
    assert "nested" in error.problems[0]
    assert "32" in error.problems[0]


def test_a_file_over_the_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_bytes(b'name = "x"\n' + b"#" * topology.MAX_FILE_BYTES + b"\n")
    error = error_of(topology.load, path)
    assert error.problems == [
        "is larger than 4 MiB (4,194,304 bytes), the most a topology file may be"
    ]


def test_a_file_just_under_the_size_cap_is_read(tmp_path: Path) -> None:
    head = b'name = "x"\n'
    path = tmp_path / "big.toml"
    path.write_bytes(head + b"#" * (topology.MAX_FILE_BYTES - len(head) - 1) + b"\n")
    assert topology.load(path).name == "x"


BILLION_LAUGHS = "name: x\nnamespaces: &l0 [a, b, c, d, e, f, g, h, i, j]\n" + "".join(
    f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n" for n in range(1, 10)
)


@needs_yaml
def test_yaml_aliases_that_fan_out_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(BILLION_LAUGHS)  # 10**10 uses of ten names
    error = error_of(topology.load, path)
    assert error.problems == [
        "holds more than 1,000,000 values (tables, arrays, keys and values; each use of a "
        "YAML alias counts): a topology is far smaller"
    ]


@needs_yaml
def test_a_yaml_list_that_holds_itself(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: x\nnamespaces: &a [*a]\n")
    error = error_of(topology.load, path)
    assert error.problems[0].startswith("namespaces[0][0][0]")
    assert "is nested more than 32 levels deep" in error.problems[0]


@needs_yaml
def test_yaml_keys_that_are_not_strings(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("name: x\n1: a\n~: b\n2020-01-01: c\n")
    error = error_of(topology.load, path)
    assert [p.split(": unknown key")[0] for p in error.problems] == [
        "1",
        "None",
        "datetime.date(2020, 1, 1)",
    ]


@needs_yaml
def test_a_long_yaml_tag_is_cut_in_the_message(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text("name: !" + "t" * 100_000 + " x\n")
    error = error_of(topology.load, path)
    assert error.problems[0].startswith("YAML syntax error: ")
    assert len(error.problems[0]) < 400
    assert error.problems[0].endswith("…")


# -- big files: bounded messages, and suggestions from an index -------------------------


def misspelt_lab(count: int) -> dict[str, object]:
    """``count`` namespaces on one bridge, each link naming its namespace ``rde{i}``."""
    return {
        "name": "big",
        "namespaces": [f"red{i}" for i in range(count)],
        "bridges": [{"name": "br0"}],
        "links": [{"a": f"rde{i}", "b": "br0"} for i in range(count)],
    }


def test_a_message_lists_fifty_problems_and_counts_the_rest() -> None:
    error = error_of(topology.from_dict, misspelt_lab(2000))
    assert len(error.problems) == 2000
    lines = str(error).splitlines()
    assert lines[0] == "<dict>: 2,000 problems:"
    assert len(lines) == 1 + topology.SHOWN_PROBLEMS + 1
    assert lines[1:51] == [f"  {problem}" for problem in error.problems[:50]]
    assert lines[-1] == "  … and 1,950 more problems"
    assert error.reason == "2,000 problems"
    assert pickle.loads(pickle.dumps(error)).problems == error.problems


def test_one_problem_past_the_fifty_is_counted_in_the_singular() -> None:
    error = error_of(topology.from_dict, misspelt_lab(51))
    assert str(error).splitlines()[-1] == "  … and 1 more problem"
    assert len(str(error).splitlines()) == 52
    assert len(str(error_of(topology.from_dict, misspelt_lab(50))).splitlines()) == 51


def test_every_misspelt_reference_in_a_big_lab_gets_its_suggestion() -> None:
    error = error_of(topology.from_dict, misspelt_lab(5000))
    assert len(error.problems) == 5000
    for i in (0, 7, 1234, 4999):
        assert error.problems[i] == (
            f"links[{i}].a: 'rde{i}' is not a namespace or bridge of this lab "
            f"(did you mean 'red{i}'?)"
        )


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("rde1234", "red1234"),  # two letters swapped
        ("rex1234", "red1234"),  # one wrong
        ("re1234", "red1234"),  # one missing
        ("redd1234", "red1234"),  # one extra
        ("blu-router", "blue-router"),
        ("bleu_routre", "blue-router"),  # three off: found through shared bigrams
        ("zzzzzzzzzz", None),
        ("q" * 200, None),  # far longer than any name: no ratio can reach the cutoff
    ],
)
def test_names_index_suggests_like_difflib(word: str, expected: str | None) -> None:
    import difflib

    names = [f"red{i}" for i in range(5000)] + ["blue-router", "green"]
    index = Names(names)
    found = index.close(word)
    assert found == expected
    if found is not None:  # always a name difflib itself accepts
        assert difflib.SequenceMatcher(None, word, found).ratio() >= 0.6


def test_names_index_of_a_few_names_is_plain_difflib() -> None:
    import difflib

    names = ["red", "blue", "green", "v-net-0", "outside"]
    index = Names(names)
    for word in ("rde", "blu", "gren", "v-net0", "outsid", "x", "reed"):
        plain = difflib.get_close_matches(word, names, n=1)
        assert index.close(word) == (plain[0] if plain else None)


def test_a_listing_of_many_names_is_cut() -> None:
    found = problems_of(
        {
            "name": "x",
            "namespaces": [f"n{i:03}" for i in range(100)],
            "links": [{"a": "zzzz", "b": "n000"}],
        }
    )
    assert found == [
        "links[0].a: 'zzzz' is not a namespace or bridge of this lab (defined: n000, n001, "
        "n002, n003, n004, n005, n006, n007, n008, n009, … and 90 more)"
    ]


def hub(count: int, **route: str) -> dict[str, object]:
    """A namespace ``hub`` with a /30 to each of ``count`` others, and one route in it."""
    return {
        "name": "hub",
        "namespaces": ["hub", *(f"s{i}" for i in range(count))],
        "links": [
            {
                "a": "hub",
                "b": f"s{i}",
                "names": [f"h{i}", "up"],
                "addresses": [f"10.{i // 64}.{i % 64 * 4}.1/30", f"10.{i // 64}.{i % 64 * 4}.2/30"],
            }
            for i in range(count)
        ],
        "routes": [{"namespace": "hub", "destination": "172.16.0.0/12", **route}],
    }


def test_a_route_in_a_namespace_of_many_interfaces() -> None:
    assert topology.from_dict(hub(300, via="10.4.168.2")).routes[0].via == "10.4.168.2"
    assert topology.from_dict(hub(300, via="10.4.168.2", dev="h298")).routes[0].dev == "h298"
    assert problems_of(hub(300, via="10.4.168.2", dev="h297")) == [
        "routes[0].via: '10.4.168.2' is not in a subnet connected to namespace 'hub' on 'h297' "
        "(connected: 10.4.164.0/30)"
    ]
    assert problems_of(hub(300, via="10.4.168.1")) == [
        "routes[0].via: '10.4.168.1' is an address of namespace 'hub' itself"
    ]
    assert problems_of(hub(300, via="10.9.0.2")) == [
        "routes[0].via: '10.9.0.2' is not in a subnet connected to namespace 'hub' (connected: "
        "10.0.0.0/30, 10.0.100.0/30, 10.0.104.0/30, 10.0.108.0/30, 10.0.112.0/30, "
        "10.0.116.0/30, 10.0.12.0/30, 10.0.120.0/30, 10.0.124.0/30, 10.0.128.0/30, "
        "… and 290 more)"
    ]
    assert problems_of(hub(300, dev="hx298")) == [
        "routes[0].dev: 'hx298' is not an interface in namespace 'hub' (it has: h0, h1, h2, "
        "h3, h4, h5, h6, h7, h8, h9, … and 290 more) (did you mean 'h298'?)"
    ]


def test_a_gateway_in_any_of_several_prefix_lengths() -> None:
    data = {
        "name": "mix",
        "namespaces": ["r", "a", "b", "c"],
        "links": [
            {"a": "r", "b": "a", "addresses": ["10.0.0.1/8", "10.0.0.2/8"]},
            {"a": "r", "b": "b", "addresses": ["192.168.1.1/24", "192.168.1.2/24"]},
            {"a": "r", "b": "c", "addresses": ["fd00:1::1/64", "fd00:1::2/64"]},
        ],
    }
    for via, ok in [
        ("10.200.3.4", True),
        ("192.168.1.77", True),
        ("192.168.2.1", False),
        ("fd00:1::9", True),
        ("fd00:2::9", False),
        ("11.0.0.1", False),
    ]:
        net = "10.99.0.0/16" if ":" not in via else "fd99::/64"
        routes = [{"namespace": "r", "destination": net, "via": via}]
        found = problems_of({**data, "routes": routes, "bogus": 1})
        assert (len(found) == 1) is ok, (via, found)


# -- the words of 0.3: machines -------------------------------------------------------
def test_machines_and_hosts_files_go_together_and_round_trip() -> None:
    data = {
        "name": "x",
        "hosts": True,
        "namespaces": [{"name": "red", "machine": "b"}, "blue"],
        "machines": {
            "a": {"ssh": "root@10.0.0.1"},
            "b": {"ssh": "lab-b", "underlay": "10.0.0.2", "port": 2222},
        },
        "bridges": [{"name": "sw", "machine": "b"}],
    }
    topo = topology.from_dict(data)
    assert topo.hosts is True
    assert [(m.name, m.address, m.user, m.port) for m in topo.machines] == [
        ("a", "10.0.0.1", "root", 22),
        ("b", "lab-b", None, 2222),
    ]
    assert topo.machine_of("red") == "b" and topo.bridges[0].machine == "b"
    written = topology.to_dict(topo)
    assert written["machines"] == {
        "a": {"ssh": "root@10.0.0.1"},
        "b": {"ssh": "lab-b", "underlay": "10.0.0.2", "port": 2222},
    }
    assert "hosts" not in written or written["hosts"] is True
    assert topology.from_dict(written) == topo
