"""Fixtures and helpers the unit tests share (no root, no kernel)."""

from __future__ import annotations

import os
import shlex
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, RecordingExecutor
from netns_kit.command import Command
from netns_kit.executors import Process
from netns_kit.executors import default as executor_module
from netns_kit.executors.batch import Batch
from netns_kit.result import Result

Argv = tuple[str, ...]
TAG = "netns-kit:t"
#: What iptables says when ``-C`` or ``-D`` finds no such rule.
BAD_RULE = "iptables: Bad rule (does a matching rule exist in that chain?).\n"
#: What the fake says ``sysctl -n KEY`` holds in the root namespace before a lab.
ROOT_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv4.conf.all.rp_filter": "1",
}


def fresh(namespace: str | None = None) -> RecordingExecutor:
    """A fake executor that answers like a fresh machine: forwarding is off, and
    ``iptables -C`` says the rule is missing, so a masquerade appends its rule (in
    the root namespace and in ``namespace``, where a lab's NAT may live)."""
    ex = RecordingExecutor()
    for key, value in ROOT_SYSCTLS.items():
        ex.answer(("sysctl", "-n", key), stdout=value + "\n")
    prefixes: list[Argv] = [()]
    if namespace is not None:
        prefixes.append(("ip", "netns", "exec", namespace))
    for prefix in prefixes:
        for tool in ("iptables", "ip6tables"):
            ex.answer((*prefix, tool, "-w", "-t", "nat", "-C"), returncode=1, stderr=BAD_RULE)
    return ex


def lines(commands: Iterable[Argv]) -> list[str]:
    """Each argv as the shell line a user would type."""
    return [shlex.join(argv) for argv in commands]


def make_lab(ex: RecordingExecutor, state: Path, *, isolated: bool = False) -> Lab:
    return Lab("t", executor=ex, isolated=isolated, state_dir=state)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A lab state directory of the test's own (it does not exist yet)."""
    return tmp_path / "state"


@pytest.fixture
def ex() -> RecordingExecutor:
    return RecordingExecutor()


# -- no real kernel in unit tests ------------------------------------------------------------
class RefusedCommandError(AssertionError):
    """A unit test reached the real kernel through the default executor."""


class RefusingExecutor:
    """The unit tests' default executor: it runs nothing.

    CI runs as root, so a unit test that forgets ``executor=`` would otherwise build
    real namespaces through the default :class:`ShellExecutor`.  Each refusal is also
    noted, so that a test whose code swallowed the error still fails (see ``no_kernel``).
    """

    def __init__(self) -> None:
        self.refused: list[str] = []

    def _refuse(self, what: str) -> RefusedCommandError:
        self.refused.append(what)
        return RefusedCommandError(
            f"a unit test ran {what!r} through the default executor (the real kernel): "
            "pass executor=RecordingExecutor(), or mark the test `real_executor`"
        )

    def execute(self, command: Command, timeout: float | None = None) -> Result:
        raise self._refuse(str(command))

    def execute_batch(self, batch: Batch) -> Result:
        raise self._refuse(f"{batch.process()} <<< {batch.stdin!r}")

    def start(self, command: Command) -> Process:
        raise self._refuse(str(command))


@pytest.fixture(autouse=True)
def no_kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the default executor one that refuses to run anything (all threads: the
    fallback list is module state, not a context variable).  Tests of the executors
    themselves opt out with ``@pytest.mark.real_executor``."""
    if request.node.get_closest_marker("real_executor") is not None:
        yield
        return
    refusing = RefusingExecutor()
    monkeypatch.setattr(executor_module, "_fallback", [refusing])
    yield
    assert not refusing.refused, f"the real kernel was asked for: {refusing.refused}"


def ctrl_c() -> None:
    """Ctrl-C: a SIGINT to this process (tests that use it take ``interruptible``)."""
    os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture
def interruptible() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt during the test, as in an interactive program.

    A suite started in the background (``cmd &`` in a script, nohup, some CI runners)
    inherits SIGINT ignored, and Python then installs no handler of its own: the
    Ctrl-C tests failed with "DID NOT RAISE KeyboardInterrupt" in every such run.
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
