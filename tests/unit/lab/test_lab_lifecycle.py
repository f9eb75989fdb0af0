"""Lab with a fake executor: opening, closing, signals, teardown, rollback and
ownership.  No root needed."""

from __future__ import annotations

import signal
import traceback
from pathlib import Path

import pytest

from netns_kit import (
    CommandError,
    Lab,
    LabBusyError,
    Namespace,
    NotFoundError,
    PermissionDeniedError,
    RecordingExecutor,
    Result,
    TeardownError,
    ValidationError,
)
from netns_kit.command import Command
from netns_kit.errors import NetnsKitError
from netns_kit.record.journal import shielded

from ..conftest import TAG, ctrl_c, fresh, lines, make_lab


# -- life cycle -------------------------------------------------------------------------
def test_a_lab_opens_lazily_and_a_plain_one_runs_nothing_to_open(state: Path) -> None:
    ex = fresh()
    lab = make_lab(ex, state)
    assert lab.state == "new" and lab.host_side is None
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
        assert lab.host_side == "t-host"
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
    with pytest.raises(NetnsKitError, match="closed"):
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
        assert lab.host_side == "x" * 58 + "-host"
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
@pytest.mark.usefixtures("interruptible")
def test_ctrl_c_during_a_step_lands_after_it_and_the_step_is_undone(state: Path) -> None:
    class InterruptedExecutor(RecordingExecutor):
        """Ctrl-C arrives while the veth is being made."""

        def _record(self, command: Command) -> Result:
            if command.argv[1:3] == ("link", "add"):
                ctrl_c()
            return super()._record(command)

    ex = InterruptedExecutor()
    with pytest.raises(KeyboardInterrupt) as caught, make_lab(ex, state) as lab:
        lab.namespace("red")
        lab.namespace("blue")
        lab.link("red", "blue", addresses=("10.1.0.1/24", "10.1.0.2/24"))
        raise AssertionError("not reached: the interrupt ends the block")
    # the whole builder ran (one batch), then the interrupt, then the teardown
    assert lines(ex.commands)[-4:] == [
        "ip -n blue link set dev veth-blue addrgenmode none",
        "ip -n blue link set dev veth-blue up",
        "ip netns delete blue",
        "ip netns delete red",
    ]
    # raised in the shield's own frame, not wherever Python happened to be
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "_deliver" in frames
    assert list(state.iterdir()) == []


@pytest.mark.usefixtures("interruptible")
def test_a_held_signal_is_delivered_once_at_the_end_of_the_outer_shield() -> None:
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with shielded():
            with shielded():
                ctrl_c()
                reached.append("inner")
            reached.append("outer")  # the inner shield does not deliver it
        reached.append("after")
    assert reached == ["inner", "outer"]
    assert not signal.sigpending() & {signal.SIGINT, signal.SIGTERM}


def test_a_held_signal_that_is_ignored_stays_ignored() -> None:
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with shielded():
            ctrl_c()
    finally:
        signal.signal(signal.SIGINT, old)
    assert not signal.sigpending() & {signal.SIGINT}


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
    ex = fresh(namespace="t-host")
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
        ex.fail_at(start + 6)  # the address of the namespace end (after the port's batch)
        with pytest.raises(CommandError) as caught:
            lab.link(red, bridge, addresses=("10.0.0.1/24", None))
        assert lines([caught.value.argv]) == ["ip -n red addr add 10.0.0.1/24 dev red-br0"]
        # exactly this builder's veth is undone, at once; what came before stays
        assert lines(ex.commands[start + 7 :]) == ["ip link delete dev br0-red"]
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
        assert lab.teardown_commands() == Namespace("red").delete_commands()


# -- ownership ----------------------------------------------------------------------------
FWD_READ = ("sysctl", "-n", "net.ipv4.ip_forward")


def test_a_kept_lab_is_not_torn_down_by_a_new_lab_of_the_same_name(tmp_path: Path) -> None:
    kept = Lab("k", executor=RecordingExecutor(), state_dir=tmp_path)
    kept.namespace("k-red")
    kept.keep()
    ex = RecordingExecutor()
    with pytest.raises(LabBusyError, match="netns-kit down k"):
        Lab("k", executor=ex, state_dir=tmp_path).open()
    assert ex.commands == []  # nothing read, nothing removed
    assert (tmp_path / "k.json").exists()


def test_a_masquerade_whose_rule_fails_turns_forwarding_back(tmp_path: Path) -> None:
    ex = RecordingExecutor()
    ex.answer(FWD_READ, stdout="0\n")
    ex.answer(("iptables", "-w", "-t", "nat", "-C"), stderr="Bad rule", returncode=1)
    ex.answer(
        ("iptables", "-w", "-t", "nat", "-A"),
        stderr="Permission denied (you must be root)",
        returncode=4,
    )
    lab = Lab("m", executor=ex, state_dir=tmp_path)
    with pytest.raises(PermissionDeniedError):
        lab.masquerade("10.0.0.0/24")
    writes = [argv[-1] for argv in ex.commands if argv[:3] == ("sysctl", "-q", "-w")]
    assert writes == ["net.ipv4.ip_forward=1", "net.ipv4.ip_forward=0"]
    assert lab.resources == []
    lab.close()
    # the failed builder left nothing to undo at teardown
    assert [argv for argv in ex.commands if argv[:2] == ("sysctl", "-q")][-1][-1].endswith("=0")
