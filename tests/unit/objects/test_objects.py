"""Every object method, argv for argv, through the recording fake (no root needed)."""

from __future__ import annotations

import ipaddress

import pytest

from netns_kit import (
    Bridge,
    CommandError,
    Interface,
    Masquerade,
    Namespace,
    NotFoundError,
    PermissionDeniedError,
    PingResult,
    RecordingExecutor,
    Route,
    Sysctl,
    ValidationError,
    VethPair,
)

from ..conftest import BAD_RULE

PING_OK = (
    "PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n\n"
    "--- 10.0.0.2 ping statistics ---\n"
    "3 packets transmitted, 2 received, 33.3333% packet loss, time 401ms\n"
    "rtt min/avg/max/mdev = 0.041/0.052/0.063/0.011 ms\n"
)
PING_LOST = (
    "PING 10.0.0.9 (10.0.0.9) 56(84) bytes of data.\n\n"
    "--- 10.0.0.9 ping statistics ---\n"
    "1 packets transmitted, 0 received, 100% packet loss, time 0ms\n\n"
)


# -- Namespace --------------------------------------------------------------------------
def test_namespace_create_adds_it_and_brings_lo_up(ex: RecordingExecutor) -> None:
    ns = Namespace("red", executor=ex)
    assert ns.create() is ns
    assert ex.commands == [
        ("ip", "netns", "add", "red"),
        ("ip", "-n", "red", "link", "set", "dev", "lo", "up"),
    ]


def test_namespace_delete(ex: RecordingExecutor) -> None:
    Namespace("red", executor=ex).delete()
    assert ex.commands == [("ip", "netns", "delete", "red")]


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ("", False),  # a fresh machine: /run/netns does not exist, ip prints nothing
        ("[]", False),
        ('[{"name":"redder"},{"name":"blue","id":0}]', False),
        ('[{"name":"blue"},{"name":"red","id":1}]', True),
    ],
)
def test_namespace_exists_reads_ip_j_netns_list(
    ex: RecordingExecutor, stdout: str, expected: bool
) -> None:
    ex.answer(("ip", "-j", "netns", "list"), stdout=stdout)
    assert Namespace("red", executor=ex).exists() is expected
    assert ex.commands == [("ip", "-j", "netns", "list")]


def test_namespace_run_uses_netns_exec(ex: RecordingExecutor) -> None:
    ex.answer(("ip", "netns", "exec", "red", "hostname"), stdout="box\n")
    result = Namespace("red", executor=ex).run(["hostname"])
    assert result.stdout == "box\n"
    assert ex.commands == [("ip", "netns", "exec", "red", "hostname")]


def test_namespace_run_keeps_each_argument_whole(ex: RecordingExecutor) -> None:
    Namespace("red", executor=ex).run(("sh", "-c", "echo a; echo b"))
    assert ex.commands == [("ip", "netns", "exec", "red", "sh", "-c", "echo a; echo b")]


def test_namespace_run_check(ex: RecordingExecutor) -> None:
    ex.answer(("ip", "netns", "exec", "red", "false"), returncode=1)
    ns = Namespace("red", executor=ex)
    assert not ns.run(["false"], check=False)
    with pytest.raises(CommandError):
        ns.run(["false"])


def test_namespace_ping_argv_and_result(ex: RecordingExecutor) -> None:
    ex.answer(("ip", "netns", "exec", "red", "ping"), stdout=PING_OK)
    result = Namespace("red", executor=ex).ping("10.0.0.2", count=3, timeout=2.5)
    assert ex.commands == [
        ("ip", "netns", "exec", "red", "ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "2.5",
         "10.0.0.2"),
    ]  # fmt: skip
    assert result
    assert (result.address, result.sent, result.received) == ("10.0.0.2", 3, 2)
    assert result.loss == pytest.approx(33.3333)
    assert result.rtt_avg == pytest.approx(0.052)


def test_namespace_ping_defaults(ex: RecordingExecutor) -> None:
    Namespace("red", executor=ex).ping("fd00::2")
    assert ex.commands == [
        ("ip", "netns", "exec", "red", "ping", "-n", "-q", "-c", "1", "-i", "0.2", "-W", "1",
         "fd00::2"),
    ]  # fmt: skip


def test_namespace_ping_without_reply_is_falsy_not_an_error(ex: RecordingExecutor) -> None:
    ex.answer(("ip", "netns", "exec", "red", "ping"), stdout=PING_LOST, returncode=1)
    result = Namespace("red", executor=ex).ping("10.0.0.9")
    assert not result
    assert (result.sent, result.received, result.loss) == (1, 0, 100.0)


def test_namespace_ping_error_raises(ex: RecordingExecutor) -> None:
    ex.answer(
        ("ip", "netns", "exec", "red", "ping"),
        stderr="ping: connect: Network is unreachable",
        returncode=2,
    )
    with pytest.raises(CommandError, match="Network is unreachable"):
        Namespace("red", executor=ex).ping("10.0.0.9")


def test_ping_result_truthiness() -> None:
    assert not PingResult("10.0.0.1")
    assert PingResult("10.0.0.1", sent=5, received=1)
    assert not PingResult.parse("10.0.0.1", "")


# -- VethPair ---------------------------------------------------------------------------
def test_veth_create_in_the_root_namespace(ex: RecordingExecutor) -> None:
    pair = VethPair("v0", "v1", executor=ex)
    assert pair.create() is pair
    assert ex.commands == [
        ("ip", "link", "add", "name", "v0", "type", "veth", "peer", "name", "v1")
    ]


def test_veth_create_makes_both_ends_in_place_with_one_command(ex: RecordingExecutor) -> None:
    VethPair("v0", "v1", namespace="red", peer_namespace=Namespace("blue"), executor=ex).create()
    assert ex.commands == [
        ("ip", "link", "add", "name", "v0", "netns", "red",
         "type", "veth", "peer", "name", "v1", "netns", "blue"),
    ]  # fmt: skip


def test_veth_create_with_only_the_peer_elsewhere(ex: RecordingExecutor) -> None:
    VethPair("v0", "v1", peer_namespace="blue", executor=ex).create()
    assert ex.commands == [
        ("ip", "link", "add", "name", "v0", "type", "veth", "peer", "name", "v1", "netns", "blue"),
    ]


def test_veth_delete_deletes_one_end_in_its_namespace(ex: RecordingExecutor) -> None:
    VethPair("v0", "v1", namespace="red", peer_namespace="blue", executor=ex).delete()
    VethPair("v0", "v1", executor=ex).delete()
    assert ex.commands == [
        ("ip", "-n", "red", "link", "delete", "dev", "v0"),
        ("ip", "link", "delete", "dev", "v0"),
    ]


def test_veth_up_brings_both_ends_up_where_they_live(ex: RecordingExecutor) -> None:
    pair = VethPair("v0", "v1", namespace="red", peer_namespace="blue", executor=ex)
    assert pair.up() is pair
    assert ex.commands == [
        ("ip", "-n", "red", "link", "set", "dev", "v0", "up"),
        ("ip", "-n", "blue", "link", "set", "dev", "v1", "up"),
    ]


def test_veth_ends_are_interfaces(ex: RecordingExecutor) -> None:
    pair = VethPair("v0", "v1", namespace="red", peer_namespace="blue", executor=ex)
    assert pair.end == Interface("v0", "red")
    assert pair.peer_end == Interface("v1", "blue")
    pair.peer_end.add_address("10.0.0.2/24")
    assert ex.commands == [("ip", "-n", "blue", "addr", "add", "10.0.0.2/24", "dev", "v1")]


def test_veth_same_name_is_fine_in_different_namespaces(ex: RecordingExecutor) -> None:
    VethPair("eth0", "eth0", namespace="red", peer_namespace="blue", executor=ex).create()
    assert ex.commands[0][:6] == ("ip", "link", "add", "name", "eth0", "netns")


def test_veth_same_name_in_the_same_namespace_is_refused(ex: RecordingExecutor) -> None:
    with pytest.raises(ValidationError) as caught:
        VethPair("v0", "v0", namespace="red", peer_namespace="red", executor=ex)
    assert caught.value.field == "peer"
    assert ex.commands == []


# -- Bridge -----------------------------------------------------------------------------
def test_bridge_create_and_delete(ex: RecordingExecutor) -> None:
    bridge = Bridge("br0", executor=ex)
    assert bridge.create() is bridge
    bridge.delete()
    assert ex.commands == [
        ("ip", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0"),
        ("ip", "link", "delete", "dev", "br0"),
    ]


def test_bridge_in_a_namespace(ex: RecordingExecutor) -> None:
    bridge = Bridge("br0", namespace=Namespace("host"), executor=ex)
    bridge.create()
    bridge.attach("v1")
    bridge.attach(Interface("v2", "host"))
    bridge.detach("v1")
    bridge.add_address("192.168.15.5/24")
    bridge.up()
    bridge.delete()
    assert ex.commands == [
        ("ip", "-n", "host", "link", "add", "name", "br0", "type", "bridge", "mcast_snooping", "0"),
        ("ip", "-n", "host", "link", "set", "dev", "v1", "master", "br0"),
        ("ip", "-n", "host", "link", "set", "dev", "v2", "master", "br0"),
        ("ip", "-n", "host", "link", "set", "dev", "v1", "nomaster"),
        ("ip", "-n", "host", "addr", "add", "192.168.15.5/24", "dev", "br0"),
        ("ip", "-n", "host", "link", "set", "dev", "br0", "up"),
        ("ip", "-n", "host", "link", "delete", "dev", "br0"),
    ]


def test_bridge_attach_validates_the_port(ex: RecordingExecutor) -> None:
    with pytest.raises(ValidationError) as caught:
        Bridge("br0", executor=ex).attach("-v")
    assert caught.value.field == "interface"
    assert ex.commands == []


# -- Interface --------------------------------------------------------------------------
def test_interface_actions_in_the_root_namespace(ex: RecordingExecutor) -> None:
    eth = Interface("eth1", executor=ex)
    assert eth.up() is eth
    eth.down()
    eth.add_address("192.168.15.1/24")
    eth.del_address("192.168.15.1/24")
    eth.set_mtu(9000)
    eth.set_alias("netns-kit:lab one")
    eth.delete()
    assert ex.commands == [
        ("ip", "link", "set", "dev", "eth1", "up"),
        ("ip", "link", "set", "dev", "eth1", "down"),
        ("ip", "addr", "add", "192.168.15.1/24", "dev", "eth1"),
        ("ip", "addr", "del", "192.168.15.1/24", "dev", "eth1"),
        ("ip", "link", "set", "dev", "eth1", "mtu", "9000"),
        ("ip", "link", "set", "dev", "eth1", "alias", "netns-kit:lab one"),
        ("ip", "link", "delete", "dev", "eth1"),
    ]


def test_interface_actions_in_a_namespace(ex: RecordingExecutor) -> None:
    eth = Interface("v0", namespace=Namespace("red"), executor=ex)
    eth.up()
    eth.down()
    eth.add_address("fd00:1::1/64")
    eth.del_address(ipaddress.ip_interface("10.1.2.3/16"))  # type: ignore[arg-type]
    eth.set_mtu(68)
    eth.set_mtu(65535)
    eth.set_alias("tag")
    assert ex.commands == [
        ("ip", "-n", "red", "link", "set", "dev", "v0", "up"),
        ("ip", "-n", "red", "link", "set", "dev", "v0", "down"),
        ("ip", "-n", "red", "addr", "add", "fd00:1::1/64", "dev", "v0", "nodad"),
        ("ip", "-n", "red", "addr", "del", "10.1.2.3/16", "dev", "v0"),
        ("ip", "-n", "red", "link", "set", "dev", "v0", "mtu", "68"),
        ("ip", "-n", "red", "link", "set", "dev", "v0", "mtu", "65535"),
        ("ip", "-n", "red", "link", "set", "dev", "v0", "alias", "tag"),
    ]


def test_interface_address_is_normalised(ex: RecordingExecutor) -> None:
    Interface("v0", executor=ex).add_address("FD00:0:0:0::0001/64")
    Interface("v0", executor=ex).add_address("10.0.0.1/255.255.255.0")
    assert ex.commands == [
        ("ip", "addr", "add", "fd00::1/64", "dev", "v0", "nodad"),  # no DAD: usable at once
        ("ip", "addr", "add", "10.0.0.1/24", "dev", "v0"),
    ]


def test_interface_namespace_given_as_name_or_object_is_the_same() -> None:
    assert Interface("v0", "red") == Interface("v0", Namespace("red"))


# -- Route ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("route", "tail"),
    [
        (dict(destination="default", via="10.0.0.1"), ("default", "via", "10.0.0.1")),
        (
            dict(destination="10.1.0.0/24", via="10.0.0.1", dev="v0"),
            ("10.1.0.0/24", "via", "10.0.0.1", "dev", "v0"),
        ),
        (dict(destination="10.1.0.0/24", dev="v0"), ("10.1.0.0/24", "dev", "v0")),
        (dict(destination="10.9.9.9/32", via="10.0.0.1"), ("10.9.9.9/32", "via", "10.0.0.1")),
    ],
)
@pytest.mark.parametrize("verb", ["add", "delete", "replace"])
def test_ipv4_routes(
    ex: RecordingExecutor, route: dict[str, str], tail: tuple[str, ...], verb: str
) -> None:
    plain = Route(**route, executor=ex)
    inside = Route(**route, namespace="red", executor=ex)
    getattr(plain, verb)()
    getattr(inside, verb)()
    assert ex.commands == [
        ("ip", "route", verb, *tail),
        ("ip", "-n", "red", "route", verb, *tail),
    ]


@pytest.mark.parametrize(
    ("route", "tail"),
    [
        (dict(destination="default", via="fd00::1"), ("default", "via", "fd00::1")),
        (
            dict(destination="fd00:2::/64", via="fe80::1", dev="v0"),
            ("fd00:2::/64", "via", "fe80::1", "dev", "v0"),
        ),
        (dict(destination="fd00:2::/64", dev="v0"), ("fd00:2::/64", "dev", "v0")),
    ],
)
@pytest.mark.parametrize("verb", ["add", "delete", "replace"])
def test_ipv6_routes_use_ip_6(
    ex: RecordingExecutor, route: dict[str, str], tail: tuple[str, ...], verb: str
) -> None:
    getattr(Route(**route, executor=ex), verb)()
    getattr(Route(**route, namespace=Namespace("red"), executor=ex), verb)()
    assert ex.commands == [
        ("ip", "-6", "route", verb, *tail),
        ("ip", "-n", "red", "-6", "route", verb, *tail),
    ]


def test_route_actions_return_self(ex: RecordingExecutor) -> None:
    route = Route("default", via="10.0.0.1", executor=ex)
    assert route.add() is route
    assert route.replace() is route
    route.delete()
    assert [argv[2] for argv in ex.commands] == ["add", "replace", "delete"]


def test_route_normalises_networks(ex: RecordingExecutor) -> None:
    Route("FD00:2:0::/64", via="FD00::1", executor=ex).add()
    assert ex.commands == [("ip", "-6", "route", "add", "fd00:2::/64", "via", "fd00::1")]


# -- Sysctl -----------------------------------------------------------------------------
FWD = "net.ipv4.ip_forward"
READ_IN_H = ("ip", "netns", "exec", "h", "sysctl", "-n", FWD)


def test_sysctl_apply_remembers_and_restore_puts_back(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="0\n")
    setting = Sysctl(FWD, 1, namespace="h", executor=ex)
    assert setting.apply() is setting
    assert (setting.previous, setting.changed) == ("0", True)
    setting.restore()
    assert setting.changed is False
    assert ex.commands == [
        READ_IN_H,
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{FWD}=1"),
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{FWD}=0"),
    ]


def test_sysctl_no_write_when_the_value_already_holds(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="1\n")
    setting = Sysctl(FWD, "1", namespace=Namespace("h"), executor=ex).apply()
    setting.restore()
    assert setting.changed is False
    assert ex.commands == [READ_IN_H]


def test_sysctl_restore_twice_writes_once(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="0\n")
    setting = Sysctl(FWD, 1, namespace="h", executor=ex).apply()
    setting.restore()
    setting.restore()
    assert len(ex.commands) == 3


def test_sysctl_in_the_root_namespace(ex: RecordingExecutor) -> None:
    ex.answer(("sysctl", "-n", "net.ipv4.conf.all.rp_filter"), stdout="2\n")
    setting = Sysctl("net.ipv4.conf.all.rp_filter", 0, executor=ex)
    assert setting.read() == "2"
    setting.apply().restore()
    assert ex.commands == [
        ("sysctl", "-n", "net.ipv4.conf.all.rp_filter"),
        ("sysctl", "-n", "net.ipv4.conf.all.rp_filter"),
        ("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"),
        ("sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=2"),
    ]


def test_sysctl_restore_without_apply_does_nothing(ex: RecordingExecutor) -> None:
    Sysctl(FWD, 1, executor=ex).restore()
    assert ex.commands == []


# -- Masquerade -------------------------------------------------------------------------
IPT_H = ("ip", "netns", "exec", "h", "iptables", "-w", "-t", "nat")
RULE = ("POSTROUTING", "-s", "10.0.0.0/24", "!", "-d", "10.0.0.0/24", "-o", "out0",
        "-m", "comment", "--comment", "netns-kit", "-j", "MASQUERADE")  # fmt: skip


def masquerade(ex: RecordingExecutor) -> Masquerade:
    return Masquerade("10.0.0.0/24", out_interface="out0", namespace="h", executor=ex)


def test_masquerade_enable_turns_forwarding_on_and_appends_once(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="0\n")
    ex.answer((*IPT_H, "-C"), stderr=BAD_RULE, returncode=1)
    nat = masquerade(ex)
    assert nat.enable() is nat
    assert ex.commands == [
        READ_IN_H,
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{FWD}=1"),
        (*IPT_H, "-C", *RULE),
        (*IPT_H, "-A", *RULE),
    ]


def test_masquerade_enable_does_not_append_an_existing_rule(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="1\n")
    masquerade(ex).enable()  # -C answers 0: the rule is there
    assert ex.commands == [READ_IN_H, (*IPT_H, "-C", *RULE)]


def test_masquerade_disable_restores_forwarding_it_changed(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="0\n")
    ex.answer((*IPT_H, "-C"), stderr=BAD_RULE, returncode=1)
    nat = masquerade(ex).enable()
    del ex.commands[:]
    nat.disable()
    assert ex.commands == [
        (*IPT_H, "-D", *RULE),
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{FWD}=0"),
    ]


def test_masquerade_disable_leaves_forwarding_it_found_on(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="1\n")
    ex.answer((*IPT_H, "-C"), stderr=BAD_RULE, returncode=1)
    nat = masquerade(ex).enable()
    del ex.commands[:]
    nat.disable()
    assert ex.commands == [(*IPT_H, "-D", *RULE)]


def test_masquerade_enable_twice_still_restores_forwarding(ex: RecordingExecutor) -> None:
    ex.answer(READ_IN_H, stdout="0\n")
    ex.answer((*IPT_H, "-C"), stderr=BAD_RULE, returncode=1)
    nat = masquerade(ex).enable()
    ex.answer(READ_IN_H, stdout="1\n")  # what the kernel says after the first enable
    ex.answer((*IPT_H, "-C"), returncode=0)  # and the rule is there now
    nat.enable()
    del ex.commands[:]
    nat.disable()
    assert ex.commands == [
        (*IPT_H, "-D", *RULE),
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{FWD}=0"),
    ]


def test_masquerade_exists_uses_the_check(ex: RecordingExecutor) -> None:
    nat = masquerade(ex)
    assert nat.exists() is True
    ex.answer((*IPT_H, "-C"), stderr=BAD_RULE, returncode=1)
    assert nat.exists() is False
    assert ex.commands == [(*IPT_H, "-C", *RULE)] * 2


def test_masquerade_root_namespace_without_out_interface(ex: RecordingExecutor) -> None:
    ex.answer(("sysctl", "-n", FWD), stdout="1\n")
    ex.answer(("iptables", "-w", "-t", "nat", "-C"), stderr=BAD_RULE, returncode=1)
    Masquerade("172.16.0.0/12", comment="netns-kit:lab", executor=ex).enable()
    rule = ("POSTROUTING", "-s", "172.16.0.0/12", "!", "-d", "172.16.0.0/12",
            "-m", "comment", "--comment", "netns-kit:lab", "-j", "MASQUERADE")  # fmt: skip
    assert ex.commands == [
        ("sysctl", "-n", FWD),
        ("iptables", "-w", "-t", "nat", "-C", *rule),
        ("iptables", "-w", "-t", "nat", "-A", *rule),
    ]


def test_masquerade_ipv6_uses_ip6tables_and_ipv6_forwarding(ex: RecordingExecutor) -> None:
    key = "net.ipv6.conf.all.forwarding"
    ip6t = ("ip", "netns", "exec", "h", "ip6tables", "-w", "-t", "nat")
    ex.answer(("ip", "netns", "exec", "h", "sysctl", "-n", key), stdout="0\n")
    ex.answer((*ip6t, "-C"), stderr=BAD_RULE, returncode=1)
    Masquerade("fd00::/64", namespace="h", executor=ex).enable()
    rule = ("POSTROUTING", "-s", "fd00::/64", "!", "-d", "fd00::/64",
            "-m", "comment", "--comment", "netns-kit", "-j", "MASQUERADE")  # fmt: skip
    assert ex.commands == [
        ("ip", "netns", "exec", "h", "sysctl", "-n", key),
        ("ip", "netns", "exec", "h", "sysctl", "-q", "-w", f"{key}=1"),
        (*ip6t, "-C", *rule),
        (*ip6t, "-A", *rule),
    ]


# -- keyword-like names are just names --------------------------------------------------
def test_bridge_named_up(ex: RecordingExecutor) -> None:
    Bridge("up", executor=ex).create()
    assert ex.commands == [
        ("ip", "link", "add", "name", "up", "type", "bridge", "mcast_snooping", "0")
    ]


@pytest.mark.parametrize("word", ["up", "help", "dev", "type", "name", "peer", "netns", "a", "h"])
def test_keyword_like_names_build_explicit_argv(ex: RecordingExecutor, word: str) -> None:
    Namespace(word, executor=ex).create()
    Bridge(word, namespace=word, executor=ex).create()
    Interface(word, namespace=word, executor=ex).up()
    Bridge("br0", namespace=word, executor=ex).attach(word)
    VethPair(word, "x", namespace=word, peer_namespace=word, executor=ex).create()
    Route("default", via="10.0.0.1", dev=word, namespace=word, executor=ex).add()
    assert ex.commands == [
        ("ip", "netns", "add", word),
        ("ip", "-n", word, "link", "set", "dev", "lo", "up"),
        ("ip", "-n", word, "link", "add", "name", word, "type", "bridge", "mcast_snooping", "0"),
        ("ip", "-n", word, "link", "set", "dev", word, "up"),
        ("ip", "-n", word, "link", "set", "dev", word, "master", "br0"),
        ("ip", "link", "add", "name", word, "netns", word,
         "type", "veth", "peer", "name", "x", "netns", word),
        ("ip", "-n", word, "route", "add", "default", "via", "10.0.0.1", "dev", word),
    ]  # fmt: skip


def test_veth_of_keywords(ex: RecordingExecutor) -> None:
    VethPair("dev", "type", namespace="name", peer_namespace="up", executor=ex).create()
    assert ex.commands == [
        ("ip", "link", "add", "name", "dev", "netns", "name",
         "type", "veth", "peer", "name", "type", "netns", "up"),
    ]  # fmt: skip


# -- Masquerade undoes exactly what it did, also when something fails half-way ----------
NAT_CHECK = ("iptables", "-w", "-t", "nat", "-C")
FWD_BACK = ("sysctl", "-q", "-w", f"{FWD}=0")


def _rule(ex: RecordingExecutor) -> Masquerade:
    ex.answer(("sysctl", "-n", FWD), stdout="0\n")
    return Masquerade("10.0.0.0/24", executor=ex)


def test_a_rule_that_was_already_there_is_left_alone() -> None:
    ex = RecordingExecutor()
    nat = _rule(ex).enable()  # the check succeeds: the rule is there already
    assert not any(argv[4] == "-A" for argv in ex.commands if argv[0] == "iptables")
    del ex.commands[:]
    nat.disable()
    assert ex.commands == [FWD_BACK]  # forwarding back, the rule untouched


def test_a_rule_we_added_is_removed() -> None:
    ex = RecordingExecutor()
    ex.answer(NAT_CHECK, stderr=BAD_RULE, returncode=1)
    nat = _rule(ex).enable()
    del ex.commands[:]
    nat.disable()
    assert [argv[4] for argv in ex.commands if argv[0] == "iptables"] == ["-D"]
    assert ex.commands[-1] == FWD_BACK


def test_forwarding_is_put_back_when_adding_the_rule_fails() -> None:
    ex = RecordingExecutor()
    ex.answer(NAT_CHECK, stderr=BAD_RULE, returncode=1)
    ex.answer(
        ("iptables", "-w", "-t", "nat", "-A"),
        stderr="Permission denied (you must be root)",
        returncode=4,
    )
    with pytest.raises(PermissionDeniedError):
        _rule(ex).enable()
    assert ex.commands[-1] == FWD_BACK


def test_forwarding_is_put_back_even_when_the_rule_is_gone() -> None:
    ex = RecordingExecutor()
    ex.answer(NAT_CHECK, stderr=BAD_RULE, returncode=1)
    ex.answer(("iptables", "-w", "-t", "nat", "-D"), stderr=BAD_RULE, returncode=1)
    nat = _rule(ex).enable()
    with pytest.raises(NotFoundError):
        nat.disable()
    assert ex.commands[-1] == FWD_BACK
