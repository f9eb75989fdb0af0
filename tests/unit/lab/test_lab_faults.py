"""Fault injection: every command of a 19-builder lab fails once, imperatively and
batched; the failure propagates and exactly what ran is undone.  No root needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from netns_kit import (
    CommandError,
    Lab,
    RecordingExecutor,
    TeardownError,
)

from ..conftest import ROOT_SYSCTLS, Argv, fresh, lines, make_lab


# -- fault injection: every command fails once ----------------------------------------
def _after(argv: Argv, word: str) -> str | None:
    return argv[argv.index(word) + 1] if word in argv[:-1] else None


def undo_of(argv: Argv, saved: set[str]) -> tuple[Argv, frozenset[str | None]] | None:
    """What undoes a change, and where the undone thing lives (``None``: the root).

    Written from the documented behaviour, not from lab.py: a namespace is deleted; a
    bridge, a route, an iptables rule are deleted where they were made; a veth is
    deleted by an end in a namespace that survives (the root end), or by its first
    end when both ends are in lab namespaces; a root sysctl is put back to the value
    it had, once, at its first change; a file or directory made in /etc/netns is
    removed.  Reads and settings of made things undo nothing.
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
    if argv[:3] == ("mkdir", "-p", "/etc/netns") and len(argv) == 3:  # made when missing
        return ("rmdir", "--ignore-fail-on-non-empty", "/etc/netns"), frozenset({None})
    if argv[:2] == ("mkdir", "-p"):  # the namespaces' directories in /etc/netns
        return ("rmdir", *argv[2:]), frozenset({None})
    if argv[0] == "tee":  # the hosts files
        return ("rm", "-f", *argv[1:]), frozenset({None})
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
