"""Lab with a fake executor: exact argv of every builder, teardown, batch planning,
fault injection at every command, and the pytest plugin.  No root needed.

The fake answers as a fresh machine would: forwarding is off, and ``iptables -C``
says the rule is missing ("Bad rule"), so a masquerade appends its rule.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shlex
import signal
import traceback
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from netns_kit import (
    AlreadyExistsError,
    Bridge,
    CommandError,
    Lab,
    Masquerade,
    Namespace,
    NotFoundError,
    RecordingExecutor,
    Result,
    Route,
    Sysctl,
    TeardownError,
    ValidationError,
    VethPair,
)
from netns_kit.command import Command
from netns_kit.executor import BaseExecutor
from netns_kit.lab import _shielded

pytest_plugins = ["pytester"]

Argv = tuple[str, ...]
TAG = "netns-kit:t"
BAD_RULE = "iptables: Bad rule (does a matching rule exist in that chain?)."
#: What the fake says ``sysctl -n KEY`` holds in the root namespace before the lab.
ROOT_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv4.conf.all.rp_filter": "1",
}


def fresh(host: str | None = None) -> RecordingExecutor:
    """A fake executor that answers like a fresh machine (see the module docstring)."""
    ex = RecordingExecutor()
    for key, value in ROOT_SYSCTLS.items():
        ex.answer(("sysctl", "-n", key), stdout=value + "\n")
    prefixes: list[Argv] = [()]
    if host is not None:
        prefixes.append(("ip", "netns", "exec", host))
    for prefix in prefixes:
        for tool in ("iptables", "ip6tables"):
            ex.answer((*prefix, tool, "-w", "-t", "nat", "-C"), returncode=1, stderr=BAD_RULE)
    return ex


def lines(commands: list[Argv]) -> list[str]:
    return [shlex.join(argv) for argv in commands]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def make_lab(ex: RecordingExecutor, state: Path, *, isolated: bool = False) -> Lab:
    return Lab("t", executor=ex, isolated=isolated, state_dir=state)


# -- life cycle -------------------------------------------------------------------------
def test_a_lab_opens_lazily_and_a_plain_one_runs_nothing_to_open(state: Path) -> None:
    ex = fresh()
    lab = make_lab(ex, state)
    assert lab.state == "new" and lab.host is None
    with lab:
        assert lab.state == "open"
        assert ex.commands == []
        assert (state / "t.json").exists() and (state / "t.lock").exists()
    assert lab.state == "closed"
    assert ex.commands == []
    assert list(state.iterdir()) == []


def test_an_isolated_lab_makes_and_deletes_its_host_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        assert lab.host == "t-host"
        assert lines(ex.commands) == [
            "ip netns add t-host",
            f"ip -n t-host link set dev lo up alias {TAG}",
        ]
    assert lines(ex.commands[2:]) == ["ip netns delete t-host"]
    assert list(state.iterdir()) == []


def test_close_twice_is_harmless_and_a_closed_lab_refuses_builders(state: Path) -> None:
    ex = fresh()
    lab = make_lab(ex, state)
    lab.namespace("red")
    lab.close()
    count = len(ex.commands)
    lab.close()
    assert len(ex.commands) == count
    with pytest.raises(Exception, match="closed"):
        lab.namespace("blue")
    assert len(ex.commands) == count


@pytest.mark.parametrize("name", ["x" * 59, "", "a b", "-x", "a/b", "all"])
def test_bad_lab_names_are_refused_before_anything_runs(name: str, state: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        Lab(name, executor=fresh(), state_dir=state)
    assert caught.value.field == "name"
    assert not state.exists()


def test_a_58_byte_lab_name_is_fine(state: Path) -> None:
    ex = fresh()
    with Lab("x" * 58, executor=ex, isolated=True, state_dir=state) as lab:
        assert lab.host == "x" * 58 + "-host"
    assert ex.commands[0] == ("ip", "netns", "add", "x" * 58 + "-host")


def test_sigterm_handler_is_installed_while_open_and_restored(state: Path) -> None:
    def before(signum: int, frame: object) -> None:
        raise AssertionError("not this one")

    old = signal.signal(signal.SIGTERM, before)
    try:
        with make_lab(fresh(), state):
            assert signal.getsignal(signal.SIGTERM) is not before
        assert signal.getsignal(signal.SIGTERM) is before
    finally:
        signal.signal(signal.SIGTERM, old)


def test_sigterm_while_open_unwinds_and_tears_down(state: Path) -> None:
    ex = fresh()
    with pytest.raises(SystemExit) as caught, make_lab(ex, state) as lab:
        lab.namespace("red")
        signal.raise_signal(signal.SIGTERM)
    assert caught.value.code == 128 + signal.SIGTERM
    assert lines(ex.commands)[-1] == "ip netns delete red"
    assert list(state.iterdir()) == []


def test_keyboard_interrupt_in_the_block_tears_down(state: Path) -> None:
    ex = fresh()
    with pytest.raises(KeyboardInterrupt), make_lab(ex, state) as lab:
        lab.namespace("red")
        raise KeyboardInterrupt
    assert lines(ex.commands)[-1] == "ip netns delete red"


# -- signals held while a step runs --------------------------------------------------------
def test_ctrl_c_during_a_step_lands_after_it_and_the_step_is_undone(state: Path) -> None:
    class InterruptedExecutor(RecordingExecutor):
        """Ctrl-C arrives while the veth is being made."""

        def _record(self, command: Command) -> Result:
            if command.argv[1:3] == ("link", "add"):
                os.kill(os.getpid(), signal.SIGINT)
            return super()._record(command)

    ex = InterruptedExecutor()
    with pytest.raises(KeyboardInterrupt) as caught, make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.namespace("blue")
        lab.link("red", "blue", addresses=("10.1.0.1/24", "10.1.0.2/24"))
        raise AssertionError("not reached: the interrupt ends the block")
    # the whole builder ran (one batch), then the interrupt, then the teardown
    assert lines(ex.commands)[-3:] == [
        "ip -n blue link set dev veth-blue addrgenmode none up",
        "ip netns delete blue",
        "ip netns delete red",
    ]
    # raised in the shield's own frame, not wherever Python happened to be
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "_deliver" in frames
    assert list(state.iterdir()) == []


def test_a_held_signal_is_delivered_once_at_the_end_of_the_outer_shield() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with _shielded():
            with _shielded():
                os.kill(os.getpid(), signal.SIGINT)
                reached.append("inner")
            reached.append("outer")  # the inner shield does not deliver it
        reached.append("after")
    assert reached == ["inner", "outer"]
    assert not signal.sigpending() & {signal.SIGINT, signal.SIGTERM}


def test_a_held_signal_that_is_ignored_stays_ignored() -> None:
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with _shielded():
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, old)
    assert not signal.sigpending() & {signal.SIGINT}


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
        start = len(ex.commands)
        bridge = lab.bridge("br0", address="10.0.0.254/24")
        assert isinstance(bridge, Bridge)
        assert (bridge.name, bridge.namespace) == ("br0", lab.host)
        assert lines(ex.commands[start:]) == [
            f"{prefix} link add name br0 type bridge",
            f"{prefix} link set dev br0 alias {TAG}",
            f"{prefix} link set dev br0 up",
            f"{prefix} addr add 10.0.0.254/24 dev br0",
        ]
        assert len(ex.runs) == (3 if isolated else 1)  # the bridge is one ip -batch
        assert lab.teardown_commands() == (
            [Command(("ip", "netns", "delete", "t-host"))]
            if isolated
            else [Command(("ip", "link", "delete", "dev", "br0"))]
        )


def test_bridge_without_address(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.bridge("up")  # a keyword of ip is just a name
        assert lines(ex.commands) == [
            "ip link add name up type bridge",
            f"ip link set dev up alias {TAG}",
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
            f"ip -n blue link set dev veth-blue alias {TAG}",
            "ip -n red link set dev veth-red mtu 9000",
            "ip -n blue link set dev veth-blue mtu 9000",
            "ip -n red addr add 10.1.0.1/24 dev veth-red",
            "ip -n blue addr add 10.1.0.2/24 dev veth-blue",
            "ip -n red link set dev veth-red addrgenmode none up",
            "ip -n blue link set dev veth-blue addrgenmode none up",
        ]
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
        assert pair == VethPair("veth-red", "veth-red-br", "red", None)
        assert lines(ex.commands[start:]) == [
            "ip link add name veth-red netns red type veth peer name veth-red-br",
            f"ip -n red link set dev veth-red alias {TAG}",
            f"ip link set dev veth-red-br alias {TAG}",
            "ip -n red addr add 10.0.0.1/24 dev veth-red",
            "ip link set dev veth-red-br master br0",
            "ip -n red link set dev veth-red addrgenmode none up",
            "ip link set dev veth-red-br addrgenmode none up",
        ]
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
            "ip link add name veth-red netns red type veth peer name veth-red-br netns t-host",
            f"ip -n red link set dev veth-red alias {TAG}",
            f"ip -n t-host link set dev veth-red-br alias {TAG}",
            "ip -n t-host link set dev veth-red-br master br0",
            "ip -n red link set dev veth-red addrgenmode none up",
            "ip -n t-host link set dev veth-red-br addrgenmode none up",
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
            ("br0", "br1", "b"),
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
    ex = fresh(host="t-host")
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


# -- teardown -------------------------------------------------------------------------
def test_teardown_of_a_root_lab_deletes_root_ends_and_skips_what_goes_with_namespaces(
    state: Path,
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red, blue = lab.namespace("red"), lab.namespace("blue")
        bridge = lab.bridge("br0", "10.0.0.254/24")
        lab.link(red, blue, addresses=("10.1.0.1/24", "10.1.0.2/24"))
        lab.link(red, bridge)
        lab.link(blue, bridge)
        lab.route("default", via="10.0.0.254", namespace=red)
        lab.route("10.7.0.0/16", via="10.0.0.1")
        count = len(ex.commands)
        runs = len(ex.runs)
    assert lines(ex.commands[count:]) == [
        "ip route delete 10.7.0.0/16 via 10.0.0.1",
        "ip link delete dev br0-blue",  # veth-blue is taken in blue by the first link
        "ip link delete dev br0-red",
        "ip link delete dev br0",
        "ip netns delete blue",
        "ip netns delete red",
    ]
    assert [r.argv for r in ex.runs[runs:]] == [("ip", "-force", "-batch", "-")]


def test_teardown_of_an_isolated_lab_deletes_only_namespaces(state: Path) -> None:
    ex = fresh(host="t-host")
    with make_lab(ex, state, isolated=True) as lab:
        bridge = lab.bridge("br0", "10.0.0.254/24")
        for name in ("red", "green", "blue"):
            ns = lab.namespace(name)
            lab.link(ns, bridge, addresses=("10.0.0.1/24", None))
            lab.route("default", via="10.0.0.254", namespace=ns)
        lab.masquerade("10.0.0.0/24")
        lab.sysctl("net.ipv4.conf.all.rp_filter", 2)
        count = len(ex.commands)
        runs = len(ex.runs)
    assert lines(ex.commands[count:]) == [
        "ip netns delete blue",
        "ip netns delete green",
        "ip netns delete red",
        "ip netns delete t-host",
    ]
    assert len(ex.runs) - runs == 1


def test_undo_failures_are_collected_and_reported_together(state: Path) -> None:
    ex = fresh()
    lab = make_lab(ex, state)
    lab.namespace("red")
    lab.namespace("blue")
    lab.bridge("br0")
    count = len(ex.commands)
    ex.fail_at(count, stderr="Cannot find device br0")
    ex.fail_at(count + 1, stderr="boom")
    with pytest.raises(TeardownError) as caught:
        lab.close()
    assert [type(e) for e in caught.value.errors] == [NotFoundError, CommandError]
    assert [e.argv for e in caught.value.errors] == [  # type: ignore[attr-defined]
        ("ip", "link", "delete", "dev", "br0"),
        ("ip", "netns", "delete", "blue"),
    ]
    assert lines(ex.commands[count:])[-1] == "ip netns delete red"  # went on
    assert lab.state == "closed"
    assert (state / "t.json").exists()  # kept for recover(), since something is left


def test_undo_failures_never_hide_the_error_that_ended_the_block(state: Path) -> None:
    ex = fresh()
    with pytest.raises(RuntimeError, match="the user's") as caught, make_lab(ex, state) as lab:
        lab.namespace("red")
        ex.fail_at(len(ex.commands), stderr="boom")
        raise RuntimeError("the user's")
    notes = getattr(caught.value, "__notes__", [])
    assert len(notes) == 1 and "ip netns delete red" in notes[0] and "boom" in notes[0]


def test_a_builder_that_fails_halfway_is_rolled_back_and_the_lab_stays_usable(
    state: Path,
) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        red, blue = lab.namespace("red"), lab.namespace("blue")
        bridge = lab.bridge("br0")
        lab.link(red, blue)
        before = lab.teardown_commands()
        start = len(ex.commands)
        ex.fail_at(start + 3)  # the address of the namespace end
        with pytest.raises(CommandError) as caught:
            lab.link(red, bridge, addresses=("10.0.0.1/24", None))
        assert lines([caught.value.argv]) == ["ip -n red addr add 10.0.0.1/24 dev red-br0"]
        # exactly this builder's veth is undone, at once; what came before stays
        assert lines(ex.commands[start + 4 :]) == ["ip link delete dev br0-red"]
        assert lab.teardown_commands() == before
        assert len(lab.resources) == 4
        again = lab.link(red, bridge, addresses=("10.0.0.1/24", None))
        assert again.name == "red-br0"
        count = len(ex.commands)
    assert lines(ex.commands[count:]) == [
        "ip link delete dev br0-red",
        "ip link delete dev br0",
        "ip netns delete blue",
        "ip netns delete red",
    ]


def test_a_failed_namespace_builder_deletes_the_namespace(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        lab.namespace("red")
        ex.fail_at(3)  # lo of blue
        with pytest.raises(CommandError):
            lab.namespace("blue")
        assert lines(ex.commands[4:]) == ["ip netns delete blue"]
        assert lab.teardown_commands() == [Command(("ip", "netns", "delete", "red"))]


# -- batch --------------------------------------------------------------------------------
def bridge_lab(lab: Lab, names: tuple[str, ...] = ("red", "green", "blue")) -> None:
    """The README's lab: a bridge with the host address, each namespace on it."""
    bridge = lab.bridge("br0", "10.0.0.254/24")
    for i, name in enumerate(names, 1):
        ns = lab.namespace(name)
        lab.link(ns, bridge, addresses=(f"10.0.0.{i}/24", None))
        lab.route("default", via="10.0.0.254", namespace=ns)


def _first(commands: list[Argv], prefix: Argv) -> int:
    return next(i for i, argv in enumerate(commands) if argv[: len(prefix)] == prefix)


def test_batch_runs_nothing_inside_the_block_then_few_processes(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        runs = len(ex.runs)
        with lab.batch():
            bridge_lab(lab)
            assert len(ex.commands) == opened  # queued, not run
            assert [type(r).__name__ for r in lab.resources][:3] == [
                "Bridge",
                "Namespace",
                "VethPair",
            ]
        built = ex.commands[opened:]
        processes = ex.runs[runs:]
        # one `ip -j netns list` to refuse taken names, then the build
        assert built[0] == ("ip", "-j", "netns", "list")
        assert len(built) == 1 + 3 * 2 + 4 + 3 * 7 + 3
        assert len(processes) <= 8, [str(p) for p in processes]
        # each lab namespace is configured by exactly one process
        for name in ("red", "green", "blue"):
            assert sum(p.namespace == name for p in processes) == 1
        assert sum(p.namespace == "t-host" for p in processes) <= 2
        assert sum(p.namespace is None for p in processes) <= 3
    assert list(state.iterdir()) == []


def test_batch_keeps_every_dependency(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        with lab.batch():
            bridge_lab(lab)
        built = ex.commands[opened:]
    for name in ("red", "green", "blue"):
        added = built.index(("ip", "netns", "add", name))
        users = [
            i
            for i, argv in enumerate(built)
            if argv[:3] == ("ip", "-n", name) or ("netns", name) in itertools.pairwise(argv)
        ]
        assert users and min(users) > added, name
        veth = _first(built, ("ip", "link", "add", "name", f"veth-{name}"))
        assert min(i for i in users if i != veth) > veth
        assert _first(built, ("ip", "-n", name, "addr", "add")) < _first(
            built, ("ip", "-n", name, "route", "add")
        )
        port = ("ip", "-n", "t-host", "link", "set", "dev", f"veth-{name}-br")
        master = built.index((*port, "master", "br0"))
        up = built.index(
            ("ip", "-n", name, "link", "set", "dev", f"veth-{name}", "addrgenmode", "none", "up")
        )
        assert master < up  # the bridge port is ready before its far end comes up
    bridge = built.index(("ip", "-n", "t-host", "link", "add", "name", "br0", "type", "bridge"))
    assert all(bridge < i for i, argv in enumerate(built) if "master" in argv)


def test_batch_keeps_sysctl_and_iptables_in_place(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state) as lab:
        with lab.batch():
            lab.namespace("red")
            lab.sysctl("net.ipv4.ip_forward", 1, namespace="red")
            lab.namespace("blue")
            lab.masquerade("10.0.0.0/24")
            lab.link("red", "blue")
        # the root sysctl is read when the builder is called, the rest at the end
        assert lines(ex.commands) == [
            "sysctl -n net.ipv4.ip_forward",
            "ip -j netns list",
            "ip netns add red",
            f"ip -n red link set dev lo up alias {TAG}",
            "ip netns exec red sysctl -q -w net.ipv4.ip_forward=1",
            "ip netns add blue",
            f"ip -n blue link set dev lo up alias {TAG}",
            "sysctl -q -w net.ipv4.ip_forward=1",
            "iptables -w " + MASQ.format(op="-C"),
            "iptables -w " + MASQ.format(op="-A"),
            "ip link add name veth-red netns red type veth peer name veth-blue netns blue",
            f"ip -n red link set dev veth-red alias {TAG}",
            "ip -n red link set dev veth-red addrgenmode none up",
            f"ip -n blue link set dev veth-blue alias {TAG}",
            "ip -n blue link set dev veth-blue addrgenmode none up",
        ]


def test_a_batch_block_that_raises_runs_nothing(state: Path) -> None:
    ex = fresh()
    with make_lab(ex, state, isolated=True) as lab:
        opened = len(ex.commands)
        with pytest.raises(RuntimeError), lab.batch():
            bridge_lab(lab)
            raise RuntimeError("changed my mind")
        assert len(ex.commands) == opened
    assert lines(ex.commands[opened:]) == ["ip netns delete t-host"]


def test_batch_refuses_taken_namespace_names_before_changing_anything(state: Path) -> None:
    ex = fresh()
    ex.answer(("ip", "-j", "netns", "list"), stdout='[{"name":"green"}]')
    with make_lab(ex, state) as lab:
        with pytest.raises(AlreadyExistsError) as caught, lab.batch():
            bridge_lab(lab)
        assert caught.value.argv == ("ip", "netns", "add", "green")
        assert "not made by a netns_kit lab" in "".join(caught.value.__notes__)
        assert lines(ex.commands) == ["ip -j netns list"]


class CannedBatchFailure(BaseExecutor):
    """Fails the ``nth`` ``ip -batch`` with the kernel's own words for ``line``."""

    def __init__(self, nth: int, line: int, said: str) -> None:
        self.nth, self.line, self.said = nth, line, said
        self.batches: list[Command] = []
        self.runs: list[Command] = []

    def _execute(self, command: Command, timeout: float | None) -> Result:
        self.runs.append(command)
        if command.argv[-2:] == ("-batch", "-"):
            self.batches.append(command)
            if len(self.batches) == self.nth:
                stderr = f"{self.said}\nCommand failed -:{self.line}\n"
                return Result(command.argv, 1, "", stderr)
        return Result(command.argv, 0)


def test_a_failed_batch_line_raises_the_error_of_that_command(state: Path) -> None:
    ex = CannedBatchFailure(nth=3, line=3, said="RTNETLINK answers: File exists")
    lab = Lab("t", executor=ex, isolated=True, state_dir=state)
    with pytest.raises(AlreadyExistsError) as caught, lab, lab.batch():
        bridge_lab(lab)
    failed = ex.batches[2]
    assert failed.stdin is not None
    line = failed.stdin.splitlines()[2]
    prefix = ("ip", "-n", failed.namespace) if failed.namespace else ("ip",)
    assert caught.value.argv == (*prefix, *line.split())
    assert "RTNETLINK answers: File exists" in str(caught.value)
    # torn down all the same: the last process deletes every namespace made
    assert ex.runs[-1].argv == ("ip", "-force", "-batch", "-")
    assert ex.runs[-1].stdin is not None and "netns delete t-host" in ex.runs[-1].stdin
    assert list(state.iterdir()) == []


# -- fault injection: every command fails once ----------------------------------------
def _after(argv: Argv, word: str) -> str | None:
    return argv[argv.index(word) + 1] if word in argv[:-1] else None


def undo_of(argv: Argv, saved: set[str]) -> tuple[Argv, frozenset[str | None]] | None:
    """What undoes a change, and where the undone thing lives (``None``: the root).

    Written from the documented behaviour, not from lab.py: a namespace is deleted; a
    bridge, a route, an iptables rule are deleted where they were made; a veth is
    deleted by an end in a namespace that survives (the root end), or by its first
    end when both ends are in lab namespaces; a root sysctl is put back to the value
    it had, once, at its first change.  Reads and settings of made things undo nothing.
    """
    ns: str | None = None
    body = argv[1:]
    if argv[:2] == ("ip", "-n"):
        ns, body = argv[2], argv[3:]
    if argv[:3] == ("ip", "netns", "add"):
        return ("ip", "netns", "delete", argv[3]), frozenset()
    if argv[0] == "ip" and body[:2] == ("link", "add") and "bridge" in body:
        prefix = ("ip", "-n", ns) if ns else ("ip",)
        return (*prefix, "link", "delete", "dev", body[3]), frozenset({ns})
    if argv[0] == "ip" and body[:2] == ("link", "add") and "veth" in body:
        first, first_ns = body[3], _after(body, "netns")
        peer_part = body[body.index("peer") :]
        peer, peer_ns = peer_part[2], _after(peer_part, "netns")
        assert first_ns is not None
        if peer_ns is None:
            return ("ip", "link", "delete", "dev", peer), frozenset({None})
        both = frozenset({first_ns, peer_ns})
        return ("ip", "-n", first_ns, "link", "delete", "dev", first), both
    if argv[0] == "ip" and "route" in body and "add" in body:
        i = argv.index("add")
        return (*argv[:i], "delete", *argv[i + 1 :]), frozenset({ns})
    if argv[:3] == ("sysctl", "-q", "-w"):
        key = argv[3].split("=")[0]
        if key in saved:
            return None
        saved.add(key)
        return ("sysctl", "-q", "-w", f"{key}={ROOT_SYSCTLS[key]}"), frozenset({None})
    tool = 4 if argv[:3] == ("ip", "netns", "exec") else 0
    if argv[tool] in ("iptables", "ip6tables") and "-A" in argv:
        where = argv[3] if tool else None
        i = argv.index("-A")
        return (*argv[:i], "-D", *argv[i + 1 :]), frozenset({where})
    return None


def expected_undos(done: list[Argv], rollback_from: int) -> list[Argv]:
    """The undo commands after a failure, given the commands that succeeded before it.

    ``done[rollback_from:]`` belong to the builder that failed: it undoes them at
    once, all of them, in reverse.  The rest are undone by the teardown, in reverse,
    skipping what lives only in namespaces that the same teardown deletes.
    """
    saved: set[str] = set()
    undos = [undo_of(argv, saved) for argv in done]
    rollback = [u[0] for u in reversed(undos[rollback_from:]) if u is not None]
    kept = [u for u in undos[:rollback_from] if u is not None]
    deleted = {u[0][3] for u in kept if u[0][1:3] == ("netns", "delete")}
    teardown = [u[0] for u in reversed(kept) if not (u[1] and u[1] <= deleted)]
    return rollback + teardown


def big_script(lab: Lab, mark: Callable[[], None]) -> None:
    """A lab of 19 builder calls touching every kind of step, root side included."""
    mark()
    red = lab.namespace("red")
    mark()
    blue = lab.namespace("blue")
    mark()
    green = lab.namespace("green")
    mark()
    bridge = lab.bridge("br0", "10.0.0.254/24")
    mark()
    lab.link(red, blue, addresses=("10.1.0.1/24", "10.1.0.2/24"), mtu=1400)
    mark()
    lab.link(red, bridge, addresses=("10.0.0.1/24", None))
    mark()
    lab.link(bridge, blue, addresses=(None, "10.0.0.2/24"))
    mark()
    lab.link(green, bridge, addresses=("10.0.0.3/24", None), names=("g0", "g0-br"))
    mark()
    lab.route("10.9.0.0/16", via="10.1.0.2", namespace=red)
    mark()
    lab.route("10.8.0.0/16", via="10.0.0.3")
    mark()
    lab.sysctl("net.ipv4.ip_forward", 1, namespace=green)
    mark()
    lab.sysctl("net.ipv4.ip_forward", 1)
    mark()
    lab.masquerade("10.0.0.0/24")
    mark()
    lab.masquerade("10.1.0.0/24", out_interface="br0")
    mark()
    yellow = lab.namespace("yellow")
    mark()
    lab.link(yellow, green, addresses=("10.2.0.1/24", "10.2.0.2/24"))
    mark()
    lab.route("default", via="10.2.0.2", namespace=yellow)
    mark()
    lab.masquerade("fd00:1::/64")
    mark()
    lab.sysctl("net.ipv4.conf.all.rp_filter", 2)


def _is_guard(argv: Argv) -> bool:
    return argv[0] in ("iptables", "ip6tables") and "-C" in argv


@attrs.define
class Outcome:
    ex: RecordingExecutor
    marks: list[int]  # where each builder call started (builders only)
    built: int  # how many commands ran before the teardown (when nothing failed)
    raised: BaseException | None


def run_script(state: Path, *, batch: bool, fail: int | None = None) -> Outcome:
    ex = fresh()
    if fail is not None:
        ex.fail_at(fail)
    marks: list[int] = []
    built = -1
    raised: BaseException | None = None
    lab = make_lab(ex, state)
    try:
        with lab:
            if batch:
                with lab.batch():
                    big_script(lab, lambda: None)
            else:
                big_script(lab, lambda: marks.append(len(ex.commands)))
            built = len(ex.commands)
    except (CommandError, TeardownError) as error:
        raised = error
    assert lab.state == "closed"
    return Outcome(ex, marks, built, raised)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Outcome]:
    """The script run without failures, as builders and as one batch."""
    state = tmp_path_factory.mktemp("state")
    runs = {}
    for batch in (False, True):
        outcome = run_script(state, batch=batch)
        assert outcome.raised is None
        assert len(outcome.marks) == (0 if batch else 19)
        runs[batch] = outcome
    return runs


@pytest.mark.parametrize("batch", [False, True], ids=["builders", "batch"])
def test_every_failure_propagates_and_exactly_its_predecessors_are_undone(
    batch: bool, reference: dict[bool, Outcome], tmp_path: Path
) -> None:
    commands = reference[batch].ex.commands
    build_end = reference[batch].built
    # the derivation agrees with a teardown that nothing disturbed
    assert commands[build_end:] == expected_undos(commands[:build_end], build_end)
    checked = 0
    for k in range(len(commands)):
        state = tmp_path / f"state-{k}"
        outcome = run_script(state, batch=batch, fail=k)
        ex, marks, raised = outcome.ex, outcome.marks, outcome.raised
        done = ex.commands[:k]
        assert done == commands[:k], k  # deterministic up to the failure
        if _is_guard(commands[k]):  # "-C failed" only means "append the rule"
            assert raised is None and ex.commands == commands, k
            continue
        if k >= build_end:  # an undo failed: reported once the rest is undone too
            assert isinstance(raised, TeardownError), k
            assert [e.argv for e in raised.errors] == [commands[k]]  # type: ignore[attr-defined]
            assert ex.commands == commands, k
            assert (state / "t.json").exists(), k  # left for recover()
            continue
        assert type(raised) is CommandError, (k, raised)
        assert raised.argv == commands[k], k
        assert "injected failure" in str(raised)
        assert not getattr(raised, "__notes__", None), (k, raised.__notes__)
        rollback_from = k if batch else max(m for m in marks if m <= k)
        assert ex.commands[k + 1 :] == expected_undos(done, rollback_from), k
        assert list(state.iterdir()) == [], k
        checked += 1
    assert checked > 50


def test_the_fault_script_undoes_at_least_one_of_each_kind(
    reference: dict[bool, Outcome],
) -> None:
    """The fault injection above means something only if every kind of undo is in."""
    outcome = reference[False]
    undone = lines(outcome.ex.commands[outcome.built :])
    for fragment in (
        "iptables -w -t nat -D",
        "ip6tables -w -t nat -D",
        "sysctl -q -w net.ipv4.ip_forward=0",
        "sysctl -q -w net.ipv6.conf.all.forwarding=0",
        "sysctl -q -w net.ipv4.conf.all.rp_filter=1",
        "ip route delete 10.8.0.0/16",
        "ip link delete dev br0-red",
        "ip link delete dev g0-br",
        "ip link delete dev br0",
        "ip netns delete yellow",
    ):
        assert any(line.startswith(fragment) for line in undone), fragment
    assert not any("-n red route delete" in line for line in undone)  # moot
    assert not any(line.endswith("dev veth-red") for line in undone)  # moot ns-ns veth


# -- the pytest plugin ------------------------------------------------------------------
def test_plugin_gives_a_fresh_recording_executor(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from netns_kit import RecordingExecutor
        from netns_kit.command import Command

        def test_one(recording_executor):
            assert isinstance(recording_executor, RecordingExecutor)
            assert recording_executor.commands == []
            recording_executor.run(Command(("true",)))
            assert recording_executor.commands == [("true",)]

        def test_two(recording_executor):
            assert recording_executor.commands == []
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_lab_skips_with_a_reason_without_root(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    pytester.makepyfile(
        """
        def test_needs_a_lab(lab):
            raise AssertionError("must not run without root")
        """
    )
    result = pytester.runpytest_inprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*lab* fixture needs root*"])


def test_plugin_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--fixtures", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["recording_executor*", "*fresh fake executor*", "lab *", "*real isolated lab*"]
    )
