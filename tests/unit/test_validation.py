"""Hostile input: every bad name or address is refused before a single command runs."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest

from netns_kit import (
    Bridge,
    Interface,
    Masquerade,
    Namespace,
    RecordingExecutor,
    Route,
    Sysctl,
    ValidationError,
    VethPair,
    use_executor,
    validate,
)

Action = Callable[[RecordingExecutor, Any], object]


def iface_up(ex: RecordingExecutor, v: Any) -> object:
    return Interface(v, executor=ex).up()


def bridge_create(ex: RecordingExecutor, v: Any) -> object:
    return Bridge(v, namespace="host", executor=ex).create()


def veth_peer(ex: RecordingExecutor, v: Any) -> object:
    return VethPair("v0", v, executor=ex).create()


def veth_peer_ns(ex: RecordingExecutor, v: Any) -> object:
    return VethPair("v0", "v1", namespace="red", peer_namespace=v, executor=ex).create()


def ns_create(ex: RecordingExecutor, v: Any) -> object:
    return Namespace(v, executor=ex).create()


def iface_in_ns(ex: RecordingExecutor, v: Any) -> object:
    return Interface("v0", namespace=v, executor=ex).up()


def add_address(ex: RecordingExecutor, v: Any) -> object:
    return Interface("v0", "red", executor=ex).add_address(v)


def del_address(ex: RecordingExecutor, v: Any) -> object:
    return Interface("v0", "red", executor=ex).del_address(v)


def route_dest(ex: RecordingExecutor, v: Any) -> object:
    return Route(v, via="10.0.0.1", executor=ex).add()


def route_via(ex: RecordingExecutor, v: Any) -> object:
    return Route("10.1.0.0/24", via=v, executor=ex).add()


def route_dev(ex: RecordingExecutor, v: Any) -> object:
    return Route("10.1.0.0/24", dev=v, executor=ex).add()


def ping(ex: RecordingExecutor, v: Any) -> object:
    return Namespace("red", executor=ex).ping(v)


def masq_source(ex: RecordingExecutor, v: Any) -> object:
    return Masquerade(v, namespace="h", executor=ex).enable()


def masq_out(ex: RecordingExecutor, v: Any) -> object:
    return Masquerade("10.0.0.0/24", out_interface=v, executor=ex).enable()


def masq_comment(ex: RecordingExecutor, v: Any) -> object:
    return Masquerade("10.0.0.0/24", comment=v, executor=ex).enable()


def set_mtu(ex: RecordingExecutor, v: Any) -> object:
    return Interface("v0", executor=ex).set_mtu(v)


def set_alias(ex: RecordingExecutor, v: Any) -> object:
    return Interface("v0", executor=ex).set_alias(v)


def attach(ex: RecordingExecutor, v: Any) -> object:
    return Bridge("br0", executor=ex).attach(v)


def sysctl_key(ex: RecordingExecutor, v: Any) -> object:
    return Sysctl(v, 1, namespace="h", executor=ex).apply()


def sysctl_value(ex: RecordingExecutor, v: Any) -> object:
    return Sysctl("net.ipv4.ip_forward", v, executor=ex).apply()


def run_shell_string(ex: RecordingExecutor, v: Any) -> object:
    return Namespace("red", executor=ex).run(v)


def ping_count(ex: RecordingExecutor, v: Any) -> object:
    return Namespace("red", executor=ex).ping("10.0.0.1", count=v)


def ping_timeout(ex: RecordingExecutor, v: Any) -> object:
    return Namespace("red", executor=ex).ping("10.0.0.1", timeout=v)


# (action, field, bad value)
HOSTILE: list[tuple[Action, str, Any]] = [
    # interface names
    (iface_up, "name", "-v"),
    (iface_up, "name", "--help"),
    (iface_up, "name", "x" * 16),  # 16 bytes: one over the kernel's limit
    (iface_up, "name", "é" * 8),  # 8 characters but 16 bytes
    (iface_up, "name", "à"),  # the kernel reads its 0xA0 byte as a space
    (iface_up, "name", "é"),  # the kernel would take this one: refused anyway
    (iface_up, "name", "a/b"),
    (iface_up, "name", "a:b"),
    (iface_up, "name", ".."),
    (iface_up, "name", "."),
    (iface_up, "name", "all"),
    (iface_up, "name", "default"),
    (iface_up, "name", "x%d"),  # a template: the kernel would name it x0
    (iface_up, "name", "a#b"),  # a comment in an ip -batch line
    (iface_up, "name", "a'b"),
    (iface_up, "name", 'a"b'),
    (iface_up, "name", "a\\b"),
    (iface_up, "name", "a b"),
    (iface_up, "name", "a\tb"),
    (iface_up, "name", "a\nb"),
    (iface_up, "name", "a\x00b"),
    (iface_up, "name", "a\x7fb"),
    (iface_up, "name", ""),
    (iface_up, "name", None),
    (iface_up, "name", 0),
    (iface_up, "name", 42),
    (iface_up, "name", b"eth0"),
    (bridge_create, "name", "-n"),
    (bridge_create, "name", "br%d"),
    (veth_peer, "peer", "-x"),
    (veth_peer, "peer", "p" * 16),
    (attach, "interface", "-v"),
    (attach, "interface", "a b"),
    (route_dev, "dev", "-6"),
    (masq_out, "out_interface", "-o"),
    (masq_out, "out_interface", "eth 0"),
    # namespace names
    (ns_create, "namespace", "n" * 65),
    (ns_create, "namespace", "-n"),
    (ns_create, "namespace", "a/b"),
    (ns_create, "namespace", "../etc"),
    (ns_create, "namespace", ".."),
    (ns_create, "namespace", "all"),
    (ns_create, "namespace", "ns%d"),
    (ns_create, "namespace", "ns#1"),
    (ns_create, "namespace", "ns 1"),
    (ns_create, "namespace", "é"),
    (ns_create, "namespace", ""),
    (ns_create, "namespace", None),
    (iface_in_ns, "namespace", "-all"),
    (iface_in_ns, "namespace", 7),
    (veth_peer_ns, "peer_namespace", "a b"),
    # addresses with a prefix
    (add_address, "address", "192.168.15.300/24"),
    (add_address, "address", "10.0.0.1"),  # no prefix: iproute2 would make it a /32
    (add_address, "address", "fd00::1"),
    (add_address, "address", "fe80::zz/64"),
    (add_address, "address", "10.0.0.1/33"),
    (add_address, "address", "10.0.0.1/24 "),
    (add_address, "address", "-10.0.0.1/24"),
    (add_address, "address", "fe80::1%eth0/64"),  # a scope id: any text after '%'
    (add_address, "address", "fe80::1%x y#z/64"),
    (add_address, "address", ""),
    (add_address, "address", None),
    (add_address, "address", 167772161),
    (del_address, "address", "10.0.0.1/24\n10.0.0.2/24"),
    # routes
    (route_dest, "destination", "10.0.0.1/24"),  # host bits set
    (route_dest, "destination", "10.0.0.0/24\n"),
    (route_dest, "destination", "fd00::/64%x"),
    (route_dest, "destination", "defaults"),
    (route_dest, "destination", "192.168.15.300/24"),
    (route_dest, "destination", None),
    (route_via, "via", "10.0.0.1/24"),
    (route_via, "via", "fe80::1"),  # mixed families: IPv6 gateway for an IPv4 network
    (route_via, "via", "-1"),
    (route_via, "via", "fe80::1%eth0"),
    # ping targets
    (ping, "address", "10.0.0.300"),
    (ping, "address", "-c"),
    (ping, "address", "localhost"),
    (ping, "address", "10.0.0.1/24"),
    # NAT
    (masq_source, "source", "10.0.0.5/24"),
    (masq_source, "source", "10.0.0.0/24 -j ACCEPT"),
    (masq_comment, "comment", "a#b"),
    (masq_comment, "comment", "it's"),
    (masq_comment, "comment", "a\nb"),
    (masq_comment, "comment", ""),
    # numbers and other fields
    (set_mtu, "mtu", 0),
    (set_mtu, "mtu", 67),
    (set_mtu, "mtu", 65536),
    (set_mtu, "mtu", "1500"),
    (set_mtu, "mtu", True),
    (set_alias, "alias", "a\nb"),
    (set_alias, "alias", "a#b"),
    (sysctl_key, "key", "../../etc/passwd"),
    (sysctl_key, "key", "net.ipv4 ip_forward"),
    (sysctl_key, "key", "-w"),
    (sysctl_value, "value", "1\n0"),
    (sysctl_value, "value", ""),
    (sysctl_value, "value", None),
    (run_shell_string, "argv", "ping -c1 10.0.0.1"),
    (run_shell_string, "argv", []),
    (run_shell_string, "argv", ["ping", 1]),
    (ping_count, "count", 0),
    (ping_timeout, "timeout", 0),
    (ping_timeout, "timeout", "1"),
]


def _id(case: tuple[Action, str, Any]) -> str:
    action, _, value = case
    return f"{action.__name__}-{value!r}"


@pytest.mark.parametrize(("action", "field", "value"), HOSTILE, ids=[_id(c) for c in HOSTILE])
def test_hostile_input_is_refused_before_any_command(
    action: Action, field: str, value: Any
) -> None:
    ex = RecordingExecutor()
    fallback = RecordingExecutor()
    with use_executor(fallback), pytest.raises(ValidationError) as caught:
        action(ex, value)
    error = caught.value
    assert error.field == field
    assert error.value == value
    assert repr(value) in str(error)
    assert str(error).startswith(f"{field}: ")
    assert ex.commands == []
    assert fallback.commands == []


def test_the_hostile_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 30


def test_a_bare_address_suggests_a_prefix() -> None:
    with pytest.raises(ValidationError, match=r"did you mean '10\.0\.0\.1/24'\?"):
        Interface("v0").add_address("10.0.0.1")
    with pytest.raises(ValidationError, match=r"did you mean 'fd00::1/64'\?"):
        Interface("v0").add_address("fd00::1")


def test_host_bits_suggest_the_network() -> None:
    with pytest.raises(ValidationError, match=r"did you mean '10\.0\.0\.0/24'\?"):
        Route("10.0.0.1/24", via="10.0.0.254")


def test_route_needs_via_or_dev() -> None:
    with pytest.raises(ValidationError) as caught:
        Route("default")
    assert caught.value.field == "via"


def test_mixed_family_route_names_both() -> None:
    with pytest.raises(ValidationError, match=r"10\.1\.0\.0/24") as caught:
        Route("10.1.0.0/24", via="fd00::1")
    assert caught.value.field == "via"
    assert caught.value.value == "fd00::1"


# -- the opposite: what must be accepted ------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["up", "help", "dev", "type", "name", "peer", "netns", "master", "a", "d", "t", "h",
     "x" * 15, "eth0.100", "br-lab_1", "v@1", "ALL", "Default", "a-", "0"],
)  # fmt: skip
def test_good_interface_names(name: str) -> None:
    assert validate.interface_name(name) == name
    ex = RecordingExecutor()
    Interface(name, namespace=name, executor=ex).up()
    assert ex.commands == [("ip", "-n", name, "link", "set", "dev", name, "up")]


@pytest.mark.parametrize("name", ["n" * 64, "lab-01.red", "up", "help"])
def test_good_namespace_names(name: str) -> None:
    ex = RecordingExecutor()
    Namespace(name, executor=ex).create()
    assert ex.commands[0] == ("ip", "netns", "add", name)


@pytest.mark.parametrize(
    ("given", "argv_form"),
    [
        ("192.168.15.1/24", "192.168.15.1/24"),
        ("10.0.0.1/32", "10.0.0.1/32"),
        ("fd00::1/64", "fd00::1/64 nodad"),
        (ipaddress.ip_interface("10.0.0.1/8"), "10.0.0.1/8"),
    ],
)
def test_good_addresses(given: Any, argv_form: str) -> None:
    ex = RecordingExecutor()
    Interface("v0", executor=ex).add_address(given)
    address, *nodad = argv_form.split()
    assert ex.commands == [("ip", "addr", "add", address, "dev", "v0", *nodad)]


def test_ipaddress_objects_with_a_scope_are_refused_too() -> None:
    with pytest.raises(ValidationError):
        validate.address(ipaddress.ip_address("fe80::1%eth0"))
    with pytest.raises(ValidationError):
        validate.interface(ipaddress.ip_interface("fe80::1%eth0/64"))
    with pytest.raises(ValidationError):
        validate.network(ipaddress.ip_network("fe80::%eth0/64"))
