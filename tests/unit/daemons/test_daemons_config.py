"""Routing configuration: both suites' files for the docs' examples, compared with
files reviewed by hand (tests/unit/fixtures/routing), what converged means, and the
checks made before anything runs.  No root needed."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.daemons import bird, builders, cli, examples, frr, model, wiring
from netns_kit.daemons.converge import NotConvergedError, present
from netns_kit.daemons.model import Ospf, area, asn
from netns_kit.engine.runner import Runner

FIXTURES = Path(__file__).parent.parent / "fixtures" / "routing"
EXAMPLES: dict[str, Callable[..., object]] = {
    "triangle": examples.triangle,
    "two-as": examples.two_as,
    # IPv6: OSPFv3 beside OSPFv2, IPv6 BGP sessions beside IPv4 ones, IPv6 only
    "dual-stack-triangle": examples.dual_stack_triangle,
    "two-as-dual-stack": functools.partial(examples.two_as, ipv6=True),
    "ebgp6": examples.ebgp6,
}


def configured(example: str, suite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Lab:
    """A lab (fake executor) that holds ``example``'s topology and routing requests;
    its daemons never start."""
    monkeypatch.setattr(builders.RoutingBuilders, "_routing_built", lambda self: None)
    lab = Lab("t", executor=RecordingExecutor(), state_dir=tmp_path / "state")
    lab.open()
    EXAMPLES[example](lab, "", suite=suite)
    return lab


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_frr_files_match_the_reviewed_ones(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = configured(example, "frr", tmp_path, monkeypatch)
    try:
        configs = lab.routing_configs()
        seen = 0
        for router, config in configs.items():
            for name, text in frr.render(config).items():
                assert text == (FIXTURES / f"{example}.frr.{router}.{name}").read_text()
                seen += 1
        assert seen == len(list(FIXTURES.glob(f"{example}.frr.*")))
    finally:
        lab.close()


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_bird_files_match_the_reviewed_ones(
    example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = configured(example, "bird", tmp_path, monkeypatch)
    try:
        configs = lab.routing_configs()
        for router, config in configs.items():
            assert bird.render(config) == (FIXTURES / f"{example}.bird.{router}.conf").read_text()
        assert len(configs) == len(list(FIXTURES.glob(f"{example}.bird.*")))
    finally:
        lab.close()


def test_two_as_expectations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OSPF inside each AS; BGP carries each side's networks across, and a router's
    own loopback sent between loopbacks is never used (FRR: "inaccessible")."""
    lab = configured("two-as", "frr", tmp_path, monkeypatch)
    try:
        want = lab.expected_routes()
    finally:
        lab.close()
    assert want["a3"] == {
        "10.1.12.0/24",
        "10.12.0.0/30",
        "10.255.1.1/32",
        "10.255.1.2/32",
        "10.255.2.1/32",
        "192.168.2.0/24",
    }
    assert want["b2"] == {"10.12.0.0/30", "10.255.2.1/32", "10.255.1.1/32", "192.168.1.0/24"}
    assert "10.255.2.2/32" not in want["a1"]  # b2's loopback: only b2 announces it, over iBGP
    assert "h1" not in want


def test_two_ospf_calls_are_two_domains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = configured("two-as", "frr", tmp_path, monkeypatch)
    try:
        a1 = lab.routing_configs()["a1"]
    finally:
        lab.close()
    towards_b1 = [i for i in a1.interfaces if i.name == "a1-b1"]
    assert towards_b1 and not towards_b1[0].active  # passive: b1 is in another domain


def test_present_ignores_dead_nexthops() -> None:
    text = (
        '[{"dst":"10.255.0.2","gateway":"10.0.12.2","dev":"a","flags":["linkdown"]},'
        '{"dst":"10.255.0.3","gateway":"10.0.13.3","dev":"b","flags":[]},'
        '{"dst":"10.0.23.0/24","nexthops":[{"gateway":"10.0.12.2","flags":["linkdown"]},'
        '{"gateway":"10.0.13.3","flags":[]}]},'
        '{"dst":"default","gateway":"10.0.0.1","flags":[]}]'
    )
    assert present(text) == {"10.255.0.3/32", "10.0.23.0/24"}
    assert present("") == set()


def test_not_converged_names_routers_and_prefixes() -> None:
    error = NotConvergedError(5, {"r2": {"10.255.0.3/32"}, "r1": {"10.0.23.0/24", "10.255.0.2/32"}})
    said = str(error)
    assert "within 5 s" in said
    assert "r1 lacks 10.0.23.0/24, 10.255.0.2/32; r2 lacks 10.255.0.3/32" in said


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: area("0.0.0.300"), "area"),
        (lambda: asn(0), "asn"),
        (lambda: asn(True), "asn"),
        (lambda: Ospf(hello=3, dead=3), "dead"),
        (lambda: Ospf(hello=0), "hello"),
    ],
)
def test_bad_values_name_the_field(call: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        call()
    assert caught.value.field == field


def test_areas_as_numbers() -> None:
    assert area(0) == "0.0.0.0"
    assert area("1") == "0.0.0.1"
    assert area("0.0.0.2") == "0.0.0.2"


def test_hand_written_frr_config_daemons() -> None:
    text = (
        "router ospf\n ospf router-id 1.1.1.1\n!\nrouter bgp 65001\n!\ninterface x\n ip ospf bfd\n"
    )
    assert frr.daemons_in(text) == ["zebra", "bfdd", "ospfd", "bgpd"]
    assert frr.daemons_in("hostname a\n") == ["zebra"]


def test_router_id_needs_an_address() -> None:
    with pytest.raises(ValidationError, match="needs an address"):
        wiring.router_id("r9", None, [])
    port = wiring.Port("e", "10.0.0.9/24", (), False)
    assert (
        wiring.router_id("r9", None, [port, wiring.Port("f", "10.0.0.2/24", (), False)])
        == "10.0.0.2"
    )


def test_frr_argv_keeps_every_path_in_the_router_directory() -> None:
    argv = frr.daemon_argv("ospfd", "/run/d/r1/")
    assert argv[:6] == ("sh", "-c", frr._BIND, "sh", "/run/d/r1", "/run/d/r1/ospfd.log")
    assert argv[6:] == (
        "/usr/lib/frr/ospfd", "-P", "0", "-i", "/run/d/r1/ospfd.pid",
        "-z", "/run/d/r1/zserv.api", "--vty_socket", "/run/d/r1", "-f", "/run/d/r1/ospfd.conf",
    )  # fmt: skip
    d = "/run/d/r1"
    assert bird.daemon_argv(d)[5:] == (
        "bird", "-f", "-c", f"{d}/bird.conf", "-s", f"{d}/bird.ctl", "-P", f"{d}/bird.pid",
    )  # fmt: skip


def test_router_id_without_ipv4_comes_from_the_ipv6_loopback() -> None:
    six = wiring.Port("e", "fd00:12::9/64", (), False, True)
    assert wiring.router_id("r9", None, [six], "fd00:255::1:2/128") == "0.1.0.2"
    assert wiring.router_id("r9", None, [six]) == "0.0.0.9"  # the lowest IPv6 address
    four = wiring.Port("f", "10.0.0.2/24", (), False)
    assert wiring.router_id("r9", None, [six, four], "fd00::1/128") == "10.0.0.2"
    with pytest.raises(ValidationError, match="low 32 bits"):
        wiring.router_id("r9", None, [], "fd00:1::/128")


def test_two_routers_with_one_router_id_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builders.RoutingBuilders, "_routing_built", lambda self: None)
    with Lab("t", executor=RecordingExecutor(), state_dir=tmp_path) as lab:
        r1 = lab.router("r1", loopback="fd00:1::5/128")
        r2 = lab.router("r2", loopback="fd00:2::5/128")  # both 0.0.0.5
        lab.link(r1, r2, addresses=("fd00:12::1/64", "fd00:12::2/64"))
        lab.ospf()
        with pytest.raises(ValidationError) as caught:
            lab.routing_configs()
    assert caught.value.field == "loopback"
    assert "0.0.0.5" in str(caught.value) and "r1" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("10.255.0.1/32", "10.255.0.1/32"),
        ("fd00:255::1/128", "fd00:255::1/128"),
        (["fd00:255::1/128"], "fd00:255::1/128"),
        (["fd00:255::1/128", "10.255.0.1/32"], ("10.255.0.1/32", "fd00:255::1/128")),
        (("10.255.0.1/32", "FD00:255::1/128"), ("10.255.0.1/32", "fd00:255::1/128")),
        (None, None),
    ],
)
def test_loopbacks_one_or_one_of_each_family(given: object, kept: object) -> None:
    assert model.loopback(given) == kept


@pytest.mark.parametrize(
    "given",
    [
        ["10.255.0.1/32", "10.255.0.2/32"],  # two IPv4
        ["fd00::1/128", "fd00::2/128"],
        ["10.255.0.1/32", "fd00::1/128", "10.255.0.3/32"],
        [],
        "10.255.0.1",  # no prefix length
        ["10.255.0.1/32", 7],
        5,
    ],
)
def test_bad_loopbacks_are_refused_before_anything_runs(given: object) -> None:
    ex = RecordingExecutor()
    with Lab("t", executor=ex) as lab:
        with pytest.raises(ValidationError) as caught:
            lab.router("r1", loopback=given)  # type: ignore[arg-type]
        assert caught.value.field == "loopback"
        assert not [c for c in ex.commands if "r1" in c]


def test_present_reads_ipv6_tables() -> None:
    text = (
        '[{"dst":"fd00:255::2","gateway":"fe80::1","dev":"a","flags":[]},'
        '{"dst":"fd00:255::3","gateway":"fe80::2","dev":"b","flags":["linkdown"]},'
        '{"dst":"fd00:23::/64","nexthops":[{"gateway":"fe80::1","dev":"a","flags":[]}]},'
        '{"dst":"fe80::/64","dev":"a","flags":[]}]'
    )
    assert present(text) == {"fd00:255::2/128", "fd00:23::/64", "fe80::/64"}


def test_ipv6_expectations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OSPFv3 carries the IPv6 loopbacks and subnets as OSPFv2 the IPv4 ones; IPv6
    BGP carries the IPv6 networks over IPv6 sessions only."""
    lab = configured("two-as-dual-stack", "frr", tmp_path, monkeypatch)
    try:
        want = lab.expected_routes()
    finally:
        lab.close()
    assert {n for n in want["a3"] if ":" in n} == {
        "fd00:1:12::/64",  # OSPFv3 in AS 65001
        "fd00:12::/64",  # a1's passive link to b1
        "fd00:255:1::1/128",
        "fd00:255:1::2/128",
        "fd00:255:2::1/128",  # b1's loopback, by eBGP then iBGP
        "fd00:2::/64",  # h2's subnet, by BGP
    }
    assert "fd00:255:2::2/128" not in want["a1"]  # b2's own loopback, over iBGP only
    assert {n for n in want["b2"] if ":" not in n} == {
        "10.12.0.0/30",
        "10.255.2.1/32",
        "10.255.1.1/32",
        "192.168.1.0/24",
    }  # IPv4 as in the IPv4-only lab
    lab = configured("ebgp6", "bird", tmp_path / "b", monkeypatch)
    try:
        assert lab.expected_routes() == {
            "r1": {"fd00:255::2/128", "fd00:2::/64"},
            "r2": {"fd00:255::1/128", "fd00:1::/64"},
        }
        configs = lab.routing_configs()
    finally:
        lab.close()
    assert configs["r1"].router_id == "0.0.0.1"  # no IPv4: from the IPv6 loopback
    assert frr.daemons(configs["r1"]) == ["zebra", "bgpd"]


def test_frr_daemons_by_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = configured("dual-stack-triangle", "frr", tmp_path, monkeypatch)
    try:
        r1 = lab.routing_configs()["r1"]
    finally:
        lab.close()
    assert frr.daemons(r1) == ["zebra", "ospfd", "ospf6d"]
    v6only = attrs.evolve(r1, loopback=None, interfaces=tuple(i for i in r1.interfaces if i.ipv6))
    assert frr.daemons(v6only) == ["zebra", "ospf6d"]
    assert set(frr.render(v6only)) == {"zebra.conf", "ospf6d.conf"}


def test_link_local_links_carry_ospfv3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lab that gives every link a link-local address runs OSPFv3 on its IPv4
    links where the routers have IPv6 (loopbacks), and only there."""
    monkeypatch.setattr(builders.RoutingBuilders, "_routing_built", lambda self: None)
    lab = Lab("t", executor=RecordingExecutor(), state_dir=tmp_path, ipv6_link_local=True)
    with lab:
        r = [
            lab.router(f"r{i}", loopback=[f"10.255.0.{i}/32", f"fd00:255::{i}/128"]) for i in (1, 2)
        ]
        r3 = lab.router("r3", loopback="10.255.0.3/32")  # IPv4 only
        lab.link(r[0], r[1], names=("a", "b"), addresses=("10.0.12.1/24", "10.0.12.2/24"))
        lab.link(r[1], r3, names=("c", "d"), addresses=("10.0.23.2/24", "10.0.23.3/24"))
        lab.ospf()
        configs = lab.routing_configs()
        want = lab.expected_routes()
    text = frr.ospf6d(configs["r1"])
    assert "interface a\n ipv6 ospf6 area 0.0.0.0\n ipv6 ospf6 network point-to-point" in text
    assert "interface lo\n ipv6 ospf6 area 0.0.0.0\n ipv6 ospf6 passive" in text
    assert frr.daemons(configs["r3"]) == ["zebra", "ospfd"]  # no IPv6 of its own
    assert "fd00:255::2/128" in want["r1"] and "fd00:255::1/128" in want["r2"]
    assert not {n for n in want["r3"] if ":" in n}
    assert "protocol ospf v3 ospf6 {" in bird.render(configs["r2"])
    assert 'interface "c" { type ptp; hello 1; dead 3; };' in bird.render(configs["r2"])


def test_show_lists_ospfv3_neighbours_and_ipv6_bgp_peers() -> None:
    """``netns-kit show``'s rows for an FRR router with ospf6d and IPv6 sessions, from
    the daemons' JSON as FRR 8.4 answers it (fields seen on a real lab)."""
    ex = RecordingExecutor()
    ask = ("ip", "netns", "exec", "r1", "vtysh", "--vty_socket", "/d", "-c")
    ex.answer((*ask, "show ip ospf neighbor json"), stdout='{"neighbors": {}}')
    six = {"neighborId": "10.255.1.2", "state": "Full", "interfaceName": "r1-r2"}
    ex.answer((*ask, "show ipv6 ospf6 neighbor json"), stdout=json.dumps({"neighbors": [six]}))
    peers = {
        "ipv4Unicast": {"peers": {"10.12.0.2": {"desc": "b1", "state": "Established"}}},
        "ipv6Unicast": {"peers": {"fd00:12::2": {"desc": "b1", "state": "Connect"}}},
    }
    ex.answer((*ask, "show bgp summary json"), stdout=json.dumps(peers))
    router = cli.RouterDaemons("r1", "frr", "/d", ("zebra", "ospfd", "ospf6d", "bgpd"))
    assert cli.neighbours(Runner(ex), router) == [
        ("ospf6", "10.255.1.2 (r1-r2)", "Full"),
        ("bgp", "10.12.0.2 (b1)", "Established"),
        ("bgp", "fd00:12::2 (b1)", "Connect"),
    ]
