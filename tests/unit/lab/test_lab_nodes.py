"""Any namespace a switch, a router or a NAT gateway (issue 11): the exact argv of the
new builders, with a fake executor.  No root needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from narrow import veth

from netns_kit import Bridge, Lab, PortForward, RecordingExecutor, ValidationError, VethPair
from netns_kit.objects.hostsfiles import HostsFiles
from netns_kit.record.registry import Registry, undo_record
from netns_kit.spec import BridgeSpec, LinkSpec, MasqueradeSpec, PortForwardSpec

from ..conftest import TAG, fresh, lines, make_lab

SWITCH = (
    "sysctl -e -q -w net.bridge.bridge-nf-call-iptables=0 "
    "net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0"
)


# -- bridges in any namespace ---------------------------------------------------------------
def test_a_bridge_in_a_namespace_is_made_there_and_goes_with_it(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        router = lab.namespace("router")
        start = len(ex.commands)
        lan = lab.bridge("lan0", "192.168.1.1/24", namespace=router)
        assert (lan.name, lan.namespace, lan.stp) == ("lan0", "router", False)
        assert lines(ex.commands[start:]) == [
            f"ip netns exec router {SWITCH}",
            "ip -n router link add name lan0 type bridge mcast_snooping 0",
            f"ip -n router link set dev lan0 alias {TAG}",
            "ip -n router link set dev lan0 addrgenmode none",
            "ip -n router link set dev lan0 up",
            "ip -n router addr add 192.168.1.1/24 dev lan0",
        ]
        assert lab.topology().bridges == (BridgeSpec("lan0", "192.168.1.1/24", "router"),)
        # the bridge goes with its namespace: nothing else to undo
        assert lines([c.argv for c in lab.teardown_commands()]) == ["ip netns delete router"]


def test_a_bridge_with_stp_gets_the_shortest_timers(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("s1")
        lab.bridge("br0", namespace="s1", stp=True)
        assert "ip -n s1 link add name br0 type bridge forward_delay 200 hello_time 100 " + (
            "max_age 600 stp_state 1 mcast_snooping 0"
        ) in lines(ex.commands)
        with pytest.raises(ValidationError, match="stp"):
            lab.bridge("br1", namespace="s1", stp="yes")  # type: ignore[arg-type]


def test_a_bridge_refuses_a_namespace_the_lab_lacks_and_a_taken_name(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("s1")
        lab.namespace("s2")
        lab.bridge("br0", namespace="s1")
        count = len(ex.commands)
        with pytest.raises(ValidationError, match="not a namespace of lab"):
            lab.bridge("br0", namespace="elsewhere")
        with pytest.raises(ValidationError, match="already an interface in s1"):
            lab.bridge("br0", namespace="s1")
        assert len(ex.commands) == count
        lab.bridge("br0", namespace="s2")  # the same name in another namespace is fine
        lab.bridge("br0")  # and on the host side


# -- links between any two ends -------------------------------------------------------------
def test_switch_to_switch_across_namespaces(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        s1, s2 = lab.namespace("s1"), lab.namespace("s2")
        br1 = lab.bridge("br1", namespace=s1)
        br2 = lab.bridge("br2", namespace=s2)
        start = len(ex.commands)
        pair = lab.link(br1, br2)
        # readable default names: each end says which switch it faces
        assert pair == VethPair("s1-s2", "s2-s1", "s1", "s2", index=1_000_001)
        assert lines(ex.commands[start:]) == [
            "ip link add name s1-s2 netns s1 index 1000001 type veth peer name s2-s1 netns s2",
            "ip -n s1 link set dev s1-s2 master br1",
            f"ip -n s1 link set dev s1-s2 alias {TAG}",
            "ip -n s1 link set dev s1-s2 addrgenmode none",
            "ip -n s1 link set dev s1-s2 up",
            "ip -n s2 link set dev s2-s1 master br2",
            f"ip -n s2 link set dev s2-s1 alias {TAG}",
            "ip -n s2 link set dev s2-s1 addrgenmode none",
            "ip -n s2 link set dev s2-s1 up",
        ]
        # both ends are ports, attached before anything comes up: two waves, ports first
        assert [r.namespace for r in ex.runs[-3:]] == [None, "s1", "s2"]
        assert lab.topology().links[-1] == LinkSpec("br1", "br2", ("s1-s2", "s2-s1"))
        second = veth(lab.link("br1", "br2"))  # a second link between the same switches
        assert (second.name, second.peer, second.index) == ("s1-s2-2", "s2-s1-2", 1_000_002)


def test_two_switches_in_one_namespace_are_named_after_the_bridges(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("core")
        lab.bridge("left", namespace="core")
        lab.bridge("right", namespace="core")
        start = len(ex.commands)
        pair = lab.link("left", "right")
        # one namespace: no index needed, the kernel numbers the two ends apart
        assert pair == VethPair("left-right", "right-left", "core", "core")
        assert lines(ex.commands[start:])[:3] == [
            "ip link add name left-right netns core type veth peer name right-left netns core",
            "ip -n core link set dev left-right master left",
            "ip -n core link set dev right-left master right",
        ]


def test_a_host_bridge_to_a_switch_in_a_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("s1")
        lab.bridge("core")
        lab.bridge("br1", namespace="s1")
        start = len(ex.commands)
        pair = lab.link("core", "br1")
        # the index goes on the end in the lab's own namespace, never in the root
        assert pair == VethPair("core-s1", "s1-core", None, "s1", peer_index=1_000_001)
        assert lines(ex.commands[start:])[:3] == [
            "ip link add name core-s1 type veth peer name s1-core netns s1 index 1000001",
            "ip link set dev core-s1 master core",
            f"ip link set dev core-s1 alias {TAG}",
        ]
        # the root end is deleted explicitly; the rest goes with s1
        assert lines([c.argv for c in lab.teardown_commands()]) == [
            "ip link delete dev core-s1",
            "ip link delete dev core",
            "ip netns delete s1",
        ]


def test_a_namespace_to_a_switch_in_another_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        router, pc1 = lab.namespace("router"), lab.namespace("pc1")
        lan = lab.bridge("lan0", "192.168.1.1/24", namespace=router)
        start = len(ex.commands)
        for a, b in ((pc1, lan), (lan, "pc1")):  # either order: the namespace end first
            lab.link(a, b, addresses=("192.168.1.10/24", None)[:: 1 if a is pc1 else -1])
        assert lines(ex.commands[start : start + 10]) == [
            "ip link add name veth-pc1 netns pc1 index 1000001 type veth "
            "peer name veth-pc1-br netns router",
            "ip -n router link set dev veth-pc1-br master lan0",
            f"ip -n router link set dev veth-pc1-br alias {TAG}",
            "ip -n router link set dev veth-pc1-br addrgenmode none",
            "ip -n router link set dev veth-pc1-br up",
            f"ip -n pc1 link set dev veth-pc1 alias {TAG}",
            "ip -n pc1 addr add 192.168.1.10/24 dev veth-pc1",
            "ip -n pc1 link set dev veth-pc1 addrgenmode none",
            "ip -n pc1 link set dev veth-pc1 up",
            "ip link add name pc1-lan0 netns pc1 type veth "
            "peer name lan0-pc1 netns router index 1000002",
        ]
        links = lab.topology().links
        assert links[0] == LinkSpec(
            "pc1", "lan0", ("veth-pc1", "veth-pc1-br"), ("192.168.1.10/24", None)
        )
        assert links[1] == LinkSpec(
            "lan0", "pc1", ("lan0-pc1", "pc1-lan0"), (None, "192.168.1.10/24")
        )


def test_bridges_of_one_name_are_told_apart_by_object_or_by_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        s1, s2, h = lab.namespace("s1"), lab.namespace("s2"), lab.namespace("h")
        b1 = lab.bridge("br0", namespace=s1)
        b2 = lab.bridge("br0", namespace=s2)
        count = len(ex.commands)
        with pytest.raises(ValidationError, match="names bridges in 's1', 's2'"):
            lab.link(h, "br0")
        assert len(ex.commands) == count
        lab.link(h, b2)
        lab.link(b1, "s2/br0")
        topo = lab.topology()
        assert [(link.a, link.b) for link in topo.links] == [("h", "s2/br0"), ("s1/br0", "s2/br0")]
        assert topo.ends().end("s1/br0") is not None


def test_a_link_refuses_a_bridge_to_itself_and_a_namespace_to_its_own_bridge(
    state: Path,
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        router = lab.namespace("router")
        lan = lab.bridge("lan0", namespace=router)
        count = len(ex.commands)
        with pytest.raises(ValidationError, match="same bridge"):
            lab.link(lan, "lan0")
        with pytest.raises(ValidationError, match="a bridge inside it"):
            lab.link(router, lan)
        with pytest.raises(ValidationError, match="not a bridge of lab"):
            lab.link(Bridge("lan0", "elsewhere"), router)
        assert len(ex.commands) == count


# -- NAT and port forwards anywhere ---------------------------------------------------------
def _nat(tool: str, op: str, rest: str) -> str:
    return f"ip netns exec router {tool} -w -t nat {op} {rest}"


MASQ = (
    "POSTROUTING -s 192.168.1.0/24 '!' -d 192.168.1.0/24 -o wan0 "
    f"-m comment --comment {TAG} -j MASQUERADE"
)
DNAT = (
    f"PREROUTING -i wan0 -p tcp --dport 8080 -m comment --comment {TAG} "
    "-j DNAT --to-destination 192.168.1.10:80"
)


def test_a_namespace_is_a_nat_router_with_a_port_forward(state: Path) -> None:
    ex = fresh(namespace="router")
    with make_lab(ex, state) as lab:
        router = lab.namespace("router")
        start = len(ex.commands)
        masq = lab.masquerade("192.168.1.0/24", "wan0", namespace=router)
        forward = lab.port_forward(8080, "192.168.1.10:80", namespace="router", in_interface="wan0")
        assert isinstance(forward, PortForward) and masq.namespace == "router"
        assert lines(ex.commands[start:]) == [
            "ip netns exec router sysctl -q -w net.ipv4.ip_forward=1",
            _nat("iptables", "-C", MASQ),
            _nat("iptables", "-A", MASQ),
            # forwarding is on already: the port forward writes it no second time
            _nat("iptables", "-C", DNAT),
            _nat("iptables", "-A", DNAT),
        ]
        topo = lab.topology()
        assert topo.masquerades == (MasqueradeSpec("192.168.1.0/24", "wan0", "router"),)
        assert topo.port_forwards == (
            PortForwardSpec("8080", "192.168.1.10:80", "tcp", "wan0", "router"),
        )
        # both rules go with the namespace; the record can still find them
        assert lines([c.argv for c in lab.teardown_commands()]) == ["ip netns delete router"]
        entries = [e for e in lab.journal.record.resources if e.kind == "iptables"]  # type: ignore[union-attr]
        assert [(e.name, e.namespace) for e in entries] == [
            ("192.168.1.0/24", "router"),
            ("tcp 8080", "router"),
        ]
        assert lines([entries[1].check or ()]) == [_nat("iptables", "-C", DNAT)]
        assert lines([entries[1].undo or ()]) == [_nat("iptables", "-D", DNAT)]


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        (
            (53, "10.0.0.2"),
            "-p udp --dport 53 -m comment --comment {tag} -j DNAT --to-destination 10.0.0.2",
        ),
        (
            ("8000-8010", "10.0.0.2"),
            "-p udp --dport 8000:8010 -m comment --comment {tag} -j DNAT --to-destination 10.0.0.2",
        ),
        (  # the same range given again: the same rule, each port kept
            ("8000-8010", "10.0.0.2:8000-8010"),
            "-p udp --dport 8000:8010 -m comment --comment {tag} -j DNAT --to-destination 10.0.0.2",
        ),
    ],
)
def test_udp_and_ranges_keep_their_ports(args: tuple[object, str], rule: str, state: Path) -> None:
    ex = fresh(namespace="gw")
    with make_lab(ex, state) as lab:
        lab.namespace("gw")
        lab.port_forward(args[0], args[1], namespace="gw", protocol="udp")  # type: ignore[arg-type]
        assert lines(ex.commands)[-1] == (
            "ip netns exec gw iptables -w -t nat -A PREROUTING " + rule.format(tag=TAG)
        )


def test_an_ipv6_port_forward_uses_ip6tables_and_ipv6_forwarding(state: Path) -> None:
    ex = fresh(namespace="gw")
    with make_lab(ex, state) as lab:
        lab.namespace("gw")
        lab.port_forward(443, "[fd00::2]:8443", namespace="gw")
        assert lines(ex.commands)[-3:] == [
            "ip netns exec gw sysctl -q -w net.ipv6.conf.all.forwarding=1",
            f"ip netns exec gw ip6tables -w -t nat -C PREROUTING -p tcp --dport 443 "
            f"-m comment --comment {TAG} -j DNAT --to-destination '[fd00::2]:8443'",
            f"ip netns exec gw ip6tables -w -t nat -A PREROUTING -p tcp --dport 443 "
            f"-m comment --comment {TAG} -j DNAT --to-destination '[fd00::2]:8443'",
        ]


@pytest.mark.parametrize(
    ("kwargs", "field", "said"),
    [
        ({"port": 0, "to": "10.0.0.2"}, "port", "between 1 and 65535"),
        ({"port": 65536, "to": "10.0.0.2"}, "port", "between 1 and 65535"),
        ({"port": "80-70", "to": "10.0.0.2"}, "port", "ends before it starts"),
        ({"port": "http", "to": "10.0.0.2"}, "port", "not a port"),
        ({"port": True, "to": "10.0.0.2"}, "port", "not a port"),
        ({"port": 80, "to": "web"}, "to", "not an IPv4 or IPv6 address"),
        ({"port": 80, "to": "10.0.0.2:0"}, "to", "outside 1-65535"),
        ({"port": 80, "to": "10.0.0.0/24"}, "to", "not an IPv4 or IPv6 address"),
        ({"port": 80, "to": "127.0.0.1"}, "to", "not an address a forwarded port"),
        ({"port": 80, "to": "[10.0.0.2]:80"}, "to", "brackets"),
        ({"port": "8000-8010", "to": "10.0.0.2:80"}, "to", "a range keeps each port"),
        ({"port": 80, "to": "10.0.0.2", "protocol": "icmp"}, "protocol", "'tcp' or 'udp'"),
        ({"port": 80, "to": "10.0.0.2", "in_interface": "bad name"}, "in_interface", "holds"),
    ],
)
def test_a_port_forward_is_checked_before_anything_runs(
    kwargs: dict[str, object], field: str, said: str, state: Path
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("gw")
        count = len(ex.commands)
        with pytest.raises(ValidationError, match=said) as caught:
            lab.port_forward(namespace="gw", **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field
        assert len(ex.commands) == count


def test_overlapping_port_forwards_are_refused(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("gw")
        lab.port_forward("8000-8010", "10.0.0.2", namespace="gw")
        count = len(ex.commands)
        for port, on in ((8005, None), (8010, "wan0"), ("7990-8000", None)):
            with pytest.raises(ValidationError, match="already forwarded"):
                lab.port_forward(port, "10.0.0.3", namespace="gw", in_interface=on)
        assert len(ex.commands) == count
        lab.port_forward(8005, "10.0.0.3", namespace="gw", protocol="udp")  # udp is apart
        lab.port_forward(8011, "10.0.0.3", namespace="gw")


# -- names ----------------------------------------------------------------------------------
def _named_lab(ex: RecordingExecutor, state: Path) -> Lab:
    lab = make_lab(ex, state).open()
    red, blue = lab.namespace("red"), lab.namespace("blue")
    lab.link(red, blue, addresses=("10.0.0.1/24", "10.0.0.2/24"))
    green = lab.namespace("green")
    lab.link(green, red, addresses=("10.0.1.2/24", "10.0.1.1/24"), names=("eth0", "eth1"))
    return lab


HOSTS_TEXT = (
    "# Written by netns-kit for lab t; `ip netns exec` shows it as /etc/hosts.\n"
    "# It is removed when the lab closes.\n"
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "10.0.0.1\tred red-veth-red\n"
    "10.0.0.2\tblue blue-veth-blue\n"
    "10.0.1.2\tgreen green-eth0\n"
    "10.0.1.1\tred-eth1\n"
)


def test_hosts_files_are_written_through_commands_and_removed_at_teardown(
    state: Path,
) -> None:
    ex = fresh()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), returncode=2, stderr="No such file")
    lab = _named_lab(ex, state)
    start = len(ex.commands)
    files = lab.hosts()
    assert isinstance(files, HostsFiles) and files.text() == HOSTS_TEXT
    assert lines(ex.commands[start:]) == [
        "ls -1 -A /etc/netns",
        "mkdir -p /etc/netns",
        "mkdir -p /etc/netns/red /etc/netns/blue /etc/netns/green",
        "tee /etc/netns/red/hosts /etc/netns/blue/hosts /etc/netns/green/hosts",
    ]
    assert ex.calls[-1].stdin == HOSTS_TEXT
    record = Registry(state).read("t")
    assert record is not None
    assert [(e.kind, e.name) for e in record.resources if e.kind == "file"] == [
        ("file", "/etc/netns"),
        ("file", "/etc/netns/{red,blue,green}"),
        ("file", "/etc/netns/{red,blue,green}/hosts"),
    ]
    assert lab.topology().hosts is True
    count = len(ex.commands)
    lab.close()
    assert lines(ex.commands[count:]) == [
        "rm -f /etc/netns/red/hosts /etc/netns/blue/hosts /etc/netns/green/hosts",
        "rmdir /etc/netns/red /etc/netns/blue /etc/netns/green",
        "rmdir --ignore-fail-on-non-empty /etc/netns",
        "ip netns delete green",
        "ip netns delete blue",
        "ip netns delete red",
    ]


def test_hosts_leaves_an_existing_etc_netns_and_refuses_a_directory_not_its_own(
    state: Path,
) -> None:
    ex = fresh()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), stdout="other\nblue\n")
    lab = _named_lab(ex, state)
    count = len(ex.commands)
    with pytest.raises(ValidationError, match="already has /etc/netns/blue"):
        lab.hosts()
    assert lines(ex.commands[count:]) == ["ls -1 -A /etc/netns"]  # nothing written
    lab.close()


def test_the_last_lab_using_an_etc_netns_another_lab_made_removes_it(state: Path) -> None:
    """Lab "first" made /etc/netns and is still up; lab t writes its files beside. Each
    removes /etc/netns once empty, so whichever goes last leaves the machine as it
    was; before, the first to close failed to (the other's files) and the second did
    not try (not its own): an empty /etc/netns stayed behind."""
    before = fresh()
    before.answer(("ls", "-1", "-A", "/etc/netns"), returncode=2)  # no /etc/netns yet
    first = Lab("first", executor=before, state_dir=state)
    first.namespace("p")
    first.hosts()
    ex = fresh()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), stdout="p\n")
    lab = _named_lab(ex, state)
    count = len(ex.commands)
    lab.hosts()
    assert lines(ex.commands[count:])[1] == "mkdir -p /etc/netns"
    first.close()
    count = len(ex.commands)
    lab.close()
    assert "rmdir --ignore-fail-on-non-empty /etc/netns" in lines(ex.commands[count:])
    mine = Lab("mine", executor=(own := fresh()), state_dir=state)
    own.answer(("ls", "-1", "-A", "/etc/netns"), stdout="")  # the machine's own, empty
    mine.namespace("q")
    mine.hosts()
    mine.close()
    assert not any("rmdir --ignore-fail-on-non-empty" in line for line in lines(own.commands))


def test_hosts_again_adds_the_new_namespaces_and_rewrites_every_file(state: Path) -> None:
    ex = fresh()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), stdout="")
    lab = _named_lab(ex, state)
    lab.hosts()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), stdout="red\nblue\ngreen\n")
    yellow = lab.namespace("yellow")
    lab.link(yellow, "green", addresses=("10.0.2.1/24", "10.0.2.2/24"))
    start = len(ex.commands)
    lab.hosts()
    assert lines(ex.commands[start:]) == [
        "ls -1 -A /etc/netns",
        "mkdir -p /etc/netns/yellow",
        "tee /etc/netns/red/hosts /etc/netns/blue/hosts /etc/netns/green/hosts "
        "/etc/netns/yellow/hosts",
    ]
    assert "10.0.2.1\tyellow yellow-veth-yellow\n" in (ex.calls[-1].stdin or "")
    lab.close()


def test_recovery_removes_the_hosts_files_from_the_record(state: Path) -> None:
    ex = fresh()
    ex.answer(("ls", "-1", "-A", "/etc/netns"), returncode=2)
    lab = _named_lab(ex, state)
    lab.hosts()
    record = Registry(state).read("t")
    assert record is not None
    later = RecordingExecutor()  # the machine after a crash: every namespace is gone
    undo_record(record, later)
    assert lines(later.commands)[-3:] == [
        "rm -f /etc/netns/red/hosts /etc/netns/blue/hosts /etc/netns/green/hosts",
        "rmdir /etc/netns/red /etc/netns/blue /etc/netns/green",
        "rmdir --ignore-fail-on-non-empty /etc/netns",
    ]
    lab.close()


def test_an_isolated_lab_names_its_host_side_too(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        lab.namespace("red")
        lab.bridge("br0", "10.0.0.254/24")
        lab.link("red", "br0", addresses=("10.0.0.1/24", None))
        files = lab.hosts()
        assert files.namespaces == ("red", "t-host")
        assert "10.0.0.254\tt-host t-host-br0\n" in files.text()
