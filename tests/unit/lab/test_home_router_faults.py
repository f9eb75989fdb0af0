"""Fault injection on the home router (issue 11): a switch inside a namespace, NAT and
a port forward there, hosts files.  Every command of the build fails once, built one
builder at a time and from the example file (one batch); the failure propagates and
exactly what ran is undone, files in /etc/netns included.  No root needed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from netns_kit import CommandError, Lab, RecordingExecutor, TeardownError

from ..conftest import Argv, fresh, lines
from .test_lab_faults import expected_undos

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"


def home_router(lab: Lab, mark: Callable[[], None]) -> None:
    """scripts/labs/home-router.toml, one builder call at a time."""
    mark()
    router = lab.namespace("router")
    pcs = []
    for name in ("pc1", "pc2"):
        mark()
        pcs.append(lab.namespace(name))
    mark()
    isp = lab.namespace("isp")
    mark()
    lan = lab.bridge("lan0", "192.168.1.1/24", namespace=router)
    for k, pc in enumerate(pcs, start=1):
        mark()
        lab.link(pc, lan, names=("eth0", f"lan0-pc{k}"), addresses=(f"192.168.1.1{k - 1}/24", None))
    mark()
    lab.link(router, isp, names=("wan0", "eth0"), addresses=("203.0.113.2/24", "203.0.113.1/24"))
    for pc in pcs:
        mark()
        lab.route("default", via="192.168.1.1", namespace=pc)
    mark()
    lab.route("default", via="203.0.113.1", namespace=router)
    mark()
    lab.masquerade("192.168.1.0/24", "wan0", namespace=router)
    mark()
    lab.port_forward(8080, "192.168.1.10:80", namespace=router, in_interface="wan0")
    mark()
    lab.hosts()


def machine() -> RecordingExecutor:
    """A fresh machine: no /etc/netns yet, and no NAT rule in the router."""
    ex = fresh(namespace="router")
    ex.answer(("ls", "-1", "-A", "/etc/netns"), returncode=2, stderr="No such file or directory")
    return ex


@attrs.define
class Outcome:
    ex: RecordingExecutor
    marks: list[int]
    built: int
    raised: BaseException | None


def run(state: Path, how: str, fail: int | None = None) -> Outcome:
    ex = machine()
    if fail is not None:
        ex.fail_at(fail)
    marks: list[int] = []
    built = -1
    raised: BaseException | None = None
    try:
        if how == "file":
            lab = Lab.from_file(LABS / "home-router.toml", executor=ex, state_dir=state)
            with lab:
                built = len(ex.commands)
        else:
            lab = Lab("home-router", executor=ex, state_dir=state, isolated=True)
            with lab:
                home_router(lab, lambda: marks.append(len(ex.commands)))
                built = len(ex.commands)
    except (CommandError, TeardownError) as error:
        raised = error
    assert lab.state == "closed"
    return Outcome(ex, marks, built, raised)


@pytest.fixture(scope="module", params=["builders", "file"])
def reference(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    outcome = run(tmp_path_factory.mktemp("state"), request.param)
    assert outcome.raised is None
    return outcome


def _is_read(argv: Argv) -> bool:
    """Reads whose failure changes nothing: "no /etc/netns" (ls), "rule missing" (-C)."""
    return argv[0] == "ls" or (argv[:4] == ("ip", "netns", "exec", "router") and "-C" in argv)


def test_the_reference_build_writes_and_removes_everything(reference: Outcome) -> None:
    made = lines(reference.ex.commands[: reference.built])
    undone = lines(reference.ex.commands[reference.built :])
    assert "ip -n router link add name lan0 type bridge mcast_snooping 0" in made
    assert any("-A PREROUTING -i wan0 -p tcp --dport 8080" in line for line in made)
    assert "mkdir -p /etc/netns" in made
    assert undone == [
        "rm -f /etc/netns/router/hosts /etc/netns/pc1/hosts /etc/netns/pc2/hosts "
        "/etc/netns/isp/hosts /etc/netns/home-router-host/hosts",
        "rmdir /etc/netns/router /etc/netns/pc1 /etc/netns/pc2 /etc/netns/isp "
        "/etc/netns/home-router-host",
        "rmdir --ignore-fail-on-non-empty /etc/netns",
        "ip netns delete isp",
        "ip netns delete pc2",
        "ip netns delete pc1",
        "ip netns delete router",
        "ip netns delete home-router-host",
    ]


def test_every_failure_of_the_home_router_build_is_rolled_back_completely(
    reference: Outcome, tmp_path: Path
) -> None:
    how = "file" if not reference.marks else "builders"
    commands, build_end = reference.ex.commands, reference.built
    assert commands[build_end:] == expected_undos(commands[:build_end], build_end)
    checked = 0
    for k in range(len(commands)):
        state = tmp_path / f"state-{k}"
        outcome = run(state, how, fail=k)
        ex, raised = outcome.ex, outcome.raised
        assert ex.commands[:k] == commands[:k], k  # deterministic up to the failure
        if _is_read(commands[k]):
            assert raised is None and ex.commands == commands, k
            continue
        if k >= build_end:  # an undo failed: reported once the rest is undone too
            assert isinstance(raised, TeardownError), k
            assert ex.commands == commands, k
            continue
        assert type(raised) is CommandError, (k, raised)
        assert raised.argv == commands[k], k
        rollback_from = max(m for m in outcome.marks if m <= k) if outcome.marks else k
        assert ex.commands[k + 1 :] == expected_undos(ex.commands[:k], rollback_from), k
        assert list(state.iterdir()) == [], k  # nothing left for recover() either
        checked += 1
    assert checked >= 30, checked
