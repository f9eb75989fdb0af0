"""Lab builders with a fake executor: the exact argv of every builder, in the order
the planner runs them.  No root needed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from netns_kit import (
    Bridge,
    CommandError,
    Interface,
    Lab,
    Masquerade,
    Namespace,
    RecordingExecutor,
    Route,
    Sysctl,
    ValidationError,
    VethPair,
)
from netns_kit.topology import from_dict, to_dict

from ..conftest import TAG, fresh, lines, make_lab


# -- builders: exact argv -----------------------------------------------------------------
def test_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red = lab.namespace("red")
        assert isinstance(red, Namespace) and red.name == "red"
        assert lines(ex.commands) == [
            "ip netns add red",
            f"ip -n red link set dev lo up alias {TAG}",
        ]
        with pytest.raises(ValidationError, match="already a namespace"):
            lab.namespace("red")
        assert len(ex.commands) == 2
    assert lines(ex.commands[2:]) == ["ip netns delete red"]


@pytest.mark.parametrize(
    ("isolated", "prefix"), [(False, "ip"), (True, "ip -n t-host")], ids=["root", "isolated"]
)
def test_bridge_with_address(isolated: bool, prefix: str, state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=isolated) as lab:
        start, runs = len(ex.commands), len(ex.runs)
        bridge = lab.bridge("br0", address="10.0.0.254/24")
        assert isinstance(bridge, Bridge)
        assert (bridge.name, bridge.namespace) == ("br0", lab.host_side)
        switch = [  # a bridge in a lab's own namespace is a plain switch
            "ip netns exec t-host sysctl -e -q -w net.bridge.bridge-nf-call-iptables=0 "
            "net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0"
        ]
        assert lines(ex.commands[start:]) == [
            *(switch if isolated else []),
            f"{prefix} link add name br0 type bridge mcast_snooping 0",
            f"{prefix} link set dev br0 alias {TAG}",
            f"{prefix} link set dev br0 addrgenmode none",
            f"{prefix} link set dev br0 up",
            f"{prefix} addr add 10.0.0.254/24 dev br0",
        ]
        # the bridge is one ip -batch; the root's line for the host namespace another
        assert len(ex.runs) - runs == (2 if isolated else 1)
        assert lab.teardown_commands() == (
            [Namespace("t-host").delete_commands()[0]]
            if isolated
            else [Bridge("br0").delete_commands()[0]]
        )


def test_bridge_without_address(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.bridge("up")  # a keyword of ip is just a name
        assert lines(ex.commands) == [
            "ip link add name up type bridge mcast_snooping 0",
            f"ip link set dev up alias {TAG}",
            "ip link set dev up addrgenmode none",
            "ip link set dev up up",
        ]


def test_link_between_namespaces_with_default_names_addresses_and_mtu(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red, blue = lab.namespace("red"), lab.namespace("blue")
        start = len(ex.commands)
        pair = lab.link(red, blue, addresses=("10.1.0.1/24", "10.1.0.2/24"), mtu=9000)
        assert pair == VethPair("veth-red", "veth-blue", "red", "blue")
        assert lines(ex.commands[start:]) == [
            "ip link add name veth-red netns red type veth peer name veth-blue netns blue",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red link set dev veth-red mtu 9000",
            "ip -n red addr add 10.1.0.1/24 dev veth-red",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
            f"ip -n blue link set dev veth-blue alias {TAG}",
            "ip -n blue link set dev veth-blue mtu 9000",
            "ip -n blue addr add 10.1.0.2/24 dev veth-blue",
            "ip -n blue link set dev veth-blue addrgenmode none",
            "ip -n blue link set dev veth-blue up",
        ]
        assert len(ex.runs) == 4 + 3  # two namespaces, then the veth and a batch per end
        # both ends die with their namespaces: nothing to delete explicitly
        assert lines([c.argv for c in lab.teardown_commands()]) == [
            "ip netns delete blue",
            "ip netns delete red",
        ]


@pytest.mark.parametrize("bridge_first", [False, True])
def test_link_to_a_root_bridge(bridge_first: bool, state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red = lab.namespace("red")
        bridge = lab.bridge("br0")
        start = len(ex.commands)
        if bridge_first:  # the namespace end comes first anyway, as in the seed
            pair = lab.link(bridge, "red", addresses=(None, "10.0.0.1/24"))
        else:
            pair = lab.link(red, "br0", addresses=("10.0.0.1/24", None))
        # the namespace end gets an interface index of its own: see test_ready_indexes
        assert pair == VethPair("veth-red", "veth-red-br", "red", None, index=1_000_001)
        runs = len(ex.runs)
        assert lines(ex.commands[start:]) == [
            "ip link add name veth-red netns red index 1000001 type veth peer name veth-red-br",
            "ip link set dev veth-red-br master br0",  # the port first, then its far end
            f"ip link set dev veth-red-br alias {TAG}",
            "ip link set dev veth-red-br addrgenmode none",
            "ip link set dev veth-red-br up",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red addr add 10.0.0.1/24 dev veth-red",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
        ]
        assert [r.namespace for r in ex.runs[runs - 2 :]] == [None, "red"]
        # the root end is deleted explicitly: left to the kernel, its name would stay
        # taken for up to 130 ms after the namespace is gone
        assert lines([c.argv for c in lab.teardown_commands()]) == [
            "ip link delete dev veth-red-br",
            "ip link delete dev br0",
            "ip netns delete red",
        ]


def test_link_to_an_isolated_bridge(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        lab.namespace("red")
        lab.bridge("br0")
        start = len(ex.commands)
        lab.link("red", "br0")
        assert lines(ex.commands[start:]) == [
            "ip link add name veth-red netns red index 1000001 type veth "
            "peer name veth-red-br netns t-host",
            "ip -n t-host link set dev veth-red-br master br0",
            f"ip -n t-host link set dev veth-red-br alias {TAG}",
            "ip -n t-host link set dev veth-red-br addrgenmode none",
            "ip -n t-host link set dev veth-red-br up",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
        ]
        assert lines([c.argv for c in lab.teardown_commands()]) == [
            "ip netns delete red",
            "ip netns delete t-host",
        ]


def test_explicit_link_names(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.namespace("blue")
        pair = lab.link("red", "blue", names=("eth0", "eth0"))
        assert ex.commands[4] == (
            *("ip", "link", "add", "name", "eth0", "netns", "red"),
            *("type", "veth", "peer", "name", "eth0", "netns", "blue"),
        )
        assert (pair.name, pair.peer) == ("eth0", "eth0")
        with pytest.raises(ValidationError, match="already an interface in red"):
            lab.link("red", "blue", names=("eth0", "eth1"))


def test_a_second_link_from_a_namespace_is_named_after_the_pair(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        for name in ("red", "blue", "green"):
            lab.namespace(name)
        first = lab.link("red", "blue")
        second = lab.link("red", "green")
        assert (first.name, first.peer) == ("veth-red", "veth-blue")
        assert (second.name, second.peer) == ("red-green", "green-red")


def _cut(wanted: str) -> str:
    """The documented shortening: 10 bytes, a dash, 4 hex digits of blake2b."""
    digest = hashlib.blake2b(wanted.encode(), digest_size=2).hexdigest()
    return f"{wanted[:10]}-{digest}"


def test_long_namespace_names_give_short_unique_deterministic_link_names(state: Path) -> None:
    a, b = "namespace-alpha-1", "namespace-alpha-2"
    names = []
    for run in range(2):
        ex = fresh()
        with Lab(f"t{run}", executor=ex, state_dir=state) as lab:
            lab.namespace(a)
            lab.namespace(b)
            lab.bridge("br0")
            pair = lab.link(a, b)
            to_bridge = lab.link(b, "br0")
            names.append((pair.name, pair.peer, to_bridge.name, to_bridge.peer))
    assert names[0] == names[1]  # deterministic
    assert names[0] == (
        _cut(f"veth-{a}"),
        _cut(f"veth-{b}"),
        _cut(f"{b}-br0"),  # veth-<b> is taken in b by the first link
        _cut(f"br0-{b}"),
    )
    assert all(len(n.encode()) <= 15 for n in names[0])
    assert len(set(names[0][:2])) == 2  # the same 10-byte start, told apart by the digest


def test_link_refuses_what_the_lab_does_not_know(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.bridge("br0")
        lab.bridge("br1")
        count = len(ex.commands)
        for a, b, field in (
            ("red", "nowhere", "b"),
            ("eth0", "red", "a"),
            ("br0", "br0", "b"),
            ("br0", Bridge("br1", "elsewhere"), "b"),
            ("red", "red", "b"),
        ):
            with pytest.raises(ValidationError) as caught:
                lab.link(a, b)
            assert caught.value.field == field
        with pytest.raises(ValidationError, match="addresses"):
            lab.link("red", "br0", addresses=("10.0.0.1/24",))
        with pytest.raises(ValidationError, match="mtu"):
            lab.link("red", "br0", mtu=10)
        with pytest.raises(ValidationError, match=r"addresses\[1\]"):
            lab.link("red", "br0", addresses=(None, "10.0.0.300/24"))
        assert len(ex.commands) == count


def test_routes(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red = lab.namespace("red")
        start = len(ex.commands)
        in_red = lab.route("10.9.0.0/16", via="10.1.0.2", namespace=red)
        lab.route("fd00:9::/64", via="fd00::2", namespace="red")
        in_root = lab.route("10.8.0.0/16", dev="br9")
        assert isinstance(in_red, Route) and in_root.namespace is None
        assert lines(ex.commands[start:]) == [
            "ip -n red route add 10.9.0.0/16 via 10.1.0.2",
            "ip -n red -6 route add fd00:9::/64 via fd00::2",
            "ip route add 10.8.0.0/16 dev br9",
        ]
        with pytest.raises(ValidationError, match="not a namespace of lab"):
            lab.route("default", via="10.0.0.1", namespace="blue")
        # routes in the lab's namespaces go with them; the root's is deleted
        assert lines([c.argv for c in lab.teardown_commands()]) == [
            "ip route delete 10.8.0.0/16 dev br9",
            "ip netns delete red",
        ]


def test_an_isolated_labs_routes_default_to_its_host_side(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        lab.route("default", via="10.0.0.1")
        assert lines(ex.commands)[-1] == "ip -n t-host route add default via 10.0.0.1"
        assert lines([c.argv for c in lab.teardown_commands()]) == ["ip netns delete t-host"]


MASQ = (
    "-t nat {op} POSTROUTING -s 10.0.0.0/24 '!' -d 10.0.0.0/24 "
    "-m comment --comment netns-kit:t -j MASQUERADE"
)


def test_masquerade_in_the_root_saves_forwarding_and_checks_before_appending(
    state: Path,
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        rule = lab.masquerade("10.0.0.0/24")
        assert isinstance(rule, Masquerade) and lab.resources == [rule]
        assert lines(ex.commands) == [
            "sysctl -n net.ipv4.ip_forward",
            "sysctl -q -w net.ipv4.ip_forward=1",
            "iptables -w " + MASQ.format(op="-C"),
            "iptables -w " + MASQ.format(op="-A"),
        ]
        count = len(ex.commands)
    assert lines(ex.commands[count:]) == [
        "iptables -w " + MASQ.format(op="-D"),
        "sysctl -q -w net.ipv4.ip_forward=0",
    ]


def test_masquerade_appends_nothing_when_the_rule_is_there(state: Path) -> None:
    ex = fresh()
    ex.answer(("iptables", "-w", "-t", "nat", "-C"), returncode=0)
    with make_lab(ex, state) as lab:
        lab.masquerade("10.0.0.0/24")
        assert "iptables -w " + MASQ.format(op="-C") in lines(ex.commands)
        assert not any("-A" in argv for argv in ex.commands)


def test_the_same_masquerade_twice_is_refused_before_anything_runs(state: Path) -> None:
    """``-C`` would skip the second ``-A``, but two undos would delete one rule twice,
    and the second ``-D`` would fail the teardown."""
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.masquerade("10.0.0.0/24")
        count = len(ex.commands)
        with pytest.raises(ValidationError, match="already masqueraded"):
            lab.masquerade("10.0.0.0/24")
        assert len(ex.commands) == count
        lab.masquerade("10.0.0.0/24", out_interface="eth9")  # another rule
        count = len(ex.commands)
    assert [argv[4] for argv in ex.commands[count:-1]] == ["-D", "-D"]


def test_masquerade_in_an_isolated_lab_lives_in_its_host_namespace(state: Path) -> None:
    ex = fresh(namespace="t-host")
    with make_lab(ex, state, isolated=True) as lab:
        lab.masquerade("10.0.0.0/24", out_interface="eth9")
        rule = MASQ.format(op="{op}").replace("/24 -m", "/24 -o eth9 -m")
        assert lines(ex.commands[2:]) == [
            "ip netns exec t-host sysctl -q -w net.ipv4.ip_forward=1",
            "ip netns exec t-host iptables -w " + rule.format(op="-C"),
            "ip netns exec t-host iptables -w " + rule.format(op="-A"),
        ]
        assert lines([c.argv for c in lab.teardown_commands()]) == ["ip netns delete t-host"]


def test_ipv6_masquerade_uses_ip6tables_and_ipv6_forwarding(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.masquerade("fd00:1::/64")
    assert [argv[:2] for argv in ex.commands] == [
        ("sysctl", "-n"),
        ("sysctl", "-q"),
        ("ip6tables", "-w"),
        ("ip6tables", "-w"),
        ("ip6tables", "-w"),
        ("sysctl", "-q"),
    ]
    assert ex.commands[1][-1] == "net.ipv6.conf.all.forwarding=1"
    assert ex.commands[-1][-1] == "net.ipv6.conf.all.forwarding=0"
    assert ex.commands[4][4] == "-D"


@pytest.mark.parametrize("explicit_first", [True, False])
def test_forwarding_is_saved_once_and_restored_once_at_the_very_end(
    explicit_first: bool, state: Path
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        if explicit_first:
            setting = lab.sysctl("net.ipv4.ip_forward", 1)
        lab.masquerade("10.0.0.0/24")
        if not explicit_first:
            setting = lab.sysctl("net.ipv4.ip_forward", 1)
        lab.masquerade("10.1.0.0/24")
        assert isinstance(setting, Sysctl) and setting.previous in ("0", None)
        assert lines(ex.commands).count("sysctl -n net.ipv4.ip_forward") == 1
        count = len(ex.commands)
    teardown = lines(ex.commands[count:])
    assert teardown.count("sysctl -q -w net.ipv4.ip_forward=0") == 1
    # restored after every rule that needs it is gone, never before
    assert teardown[-1] == "sysctl -q -w net.ipv4.ip_forward=0"
    assert [line.split()[4] for line in teardown[:-1]] == ["-D", "-D"]


def test_sysctl_in_the_root_restores_the_first_value_once(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.sysctl("net.ipv4.conf.all.rp_filter", 2)
        lab.sysctl("net.ipv4.conf.all.rp_filter", 0)
        assert lines(ex.commands) == [
            "sysctl -n net.ipv4.conf.all.rp_filter",
            "sysctl -q -w net.ipv4.conf.all.rp_filter=2",
            "sysctl -q -w net.ipv4.conf.all.rp_filter=0",
        ]
    assert lines(ex.commands[3:]) == ["sysctl -q -w net.ipv4.conf.all.rp_filter=1"]


def test_a_failed_root_sysctl_is_saved_again_by_the_next_change(state: Path) -> None:
    """The first write failed and was not logged, so the next change must save the
    old value itself, or nothing would put it back."""
    ex = fresh()
    with make_lab(ex, state) as lab:
        ex.fail_at(1)
        with pytest.raises(CommandError):
            lab.sysctl("net.ipv4.ip_forward", 1)
        lab.masquerade("10.0.0.0/24")
        assert lines(ex.commands).count("sysctl -n net.ipv4.ip_forward") == 2
        count = len(ex.commands)
    assert lines(ex.commands[count:]) == [
        "iptables -w " + MASQ.format(op="-D"),
        "sysctl -q -w net.ipv4.ip_forward=0",
    ]


def test_sysctl_that_already_holds_writes_and_restores_nothing(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        setting = lab.sysctl("net.ipv4.conf.all.rp_filter", "1")
        assert lab.resources == [setting] and not setting.changed
    assert lines(ex.commands) == ["sysctl -n net.ipv4.conf.all.rp_filter"]


def test_sysctl_in_a_lab_namespace_is_not_read_nor_restored(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.sysctl("net.ipv4.ip_forward", 1, namespace="red")
        assert lines(ex.commands[2:]) == ["ip netns exec red sysctl -q -w net.ipv4.ip_forward=1"]
        assert lines([c.argv for c in lab.teardown_commands()]) == ["ip netns delete red"]


def test_resources_in_creation_order(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red = lab.namespace("red")
        bridge = lab.bridge("br0")
        pair = lab.link(red, bridge)
        route = lab.route("default", via="10.0.0.1", namespace=red)
        setting = lab.sysctl("net.ipv4.ip_forward", 1, namespace=red)
        rule = lab.masquerade("10.0.0.0/24")
        assert lab.resources == [red, bridge, pair, route, setting, rule]


# -- IPv6 link-local addresses -------------------------------------------------------------
def build(
    tmp_path: Path, addresses: tuple[str | None, str | None], ipv6_link_local: bool = False
) -> list[str]:
    ex = RecordingExecutor()
    with Lab("ll", executor=ex, state_dir=tmp_path, ipv6_link_local=ipv6_link_local) as lab:
        lab.link(lab.namespace("a"), lab.namespace("b"), addresses=addresses)
    return [
        " ".join(argv)
        for argv in ex.commands
        if (argv[-1] == "up" or argv[-1:-3:-1] == ("none", "addrgenmode")) and "lo" not in argv
    ]


def test_an_ipv4_link_comes_up_without_link_local_addresses(tmp_path: Path) -> None:
    # addrgenmode on a line of its own before up: on one line the kernel applies up first
    assert build(tmp_path, ("10.0.0.1/24", "10.0.0.2/24")) == [
        "ip -n a link set dev veth-a addrgenmode none",
        "ip -n a link set dev veth-a up",
        "ip -n b link set dev veth-b addrgenmode none",
        "ip -n b link set dev veth-b up",
    ]


@pytest.mark.parametrize(
    ("addresses", "options"),
    [
        (("2001:db8::1/64", "2001:db8::2/64"), {}),
        (("10.0.0.1/24", "fd00::2/64"), {}),
        (("10.0.0.1/24", "10.0.0.2/24"), {"ipv6_link_local": True}),
    ],
)
def test_ipv6_keeps_the_kernel_default(
    tmp_path: Path, addresses: tuple[str, str], options: dict[str, bool]
) -> None:
    assert build(tmp_path, addresses, **options) == [
        "ip -n a link set dev veth-a up",
        "ip -n b link set dev veth-b up",
    ]


def test_interface_up_can_skip_link_local() -> None:
    assert [c.argv for c in Interface("x", "n").up_commands(link_local=False)] == [
        ("ip", "-n", "n", "link", "set", "dev", "x", "addrgenmode", "none"),
        ("ip", "-n", "n", "link", "set", "dev", "x", "up"),
    ]


def test_the_topology_key_reaches_the_lab() -> None:
    topology = from_dict({"name": "t", "ipv6_link_local": True, "namespaces": ["a"]})
    assert topology.ipv6_link_local is True
    assert to_dict(topology)["ipv6_link_local"] is True
    assert Lab.from_topology(topology, executor=RecordingExecutor()).ipv6_link_local is True
    assert from_dict({"name": "t"}).ipv6_link_local is False
