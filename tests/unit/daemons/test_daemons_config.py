"""Routing configuration: both suites' files for the docs' examples, compared with
files reviewed by hand (tests/unit/fixtures/routing), what converged means, and the
checks made before anything runs.  No root needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor, ValidationError
from netns_kit.daemons import bird, builders, examples, frr, wiring
from netns_kit.daemons.converge import NotConvergedError, present
from netns_kit.daemons.model import Ospf, area, asn

FIXTURES = Path(__file__).parent.parent / "fixtures" / "routing"
EXAMPLES: dict[str, Callable[..., object]] = {
    "triangle": examples.triangle,
    "two-as": examples.two_as,
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


def test_router_id_needs_an_ipv4_address() -> None:
    with pytest.raises(ValidationError, match="IPv4 address"):
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
