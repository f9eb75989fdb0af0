"""pytest fixtures for testing network code with netns_kit.

Installed with the package (entry point ``pytest11``), so any project that depends on
netns_kit gets them without a ``conftest.py``:

- ``recording_executor``: a fresh :class:`~netns_kit.RecordingExecutor`, to check the
  exact commands a piece of code would run, without root;
- ``lab``: a real, isolated :class:`~netns_kit.Lab`, open, with a name unique to the
  test and its records in a temporary directory.  It is torn down after the test,
  whatever the test did.  Without root it is a rootless lab (:mod:`netns_kit.executors.sandbox`),
  so network tests run in an unprivileged CI job too; the test is skipped, saying
  why, only where the kernel refuses that (or iproute2 is missing).
- ``fake_machines``: a factory, ``fake_machines(n)``, of fake machines on this one, each a
  namespace with its own sshd and its own ``/run/netns``, reached over ssh through an
  underlay that exists only in the test's namespaces
  (:class:`~netns_kit.testing.fakemachines.FakeMachines`): ``fake_machines(2)[0].executor()`` is an
  :class:`~netns_kit.SSHExecutor`.  Every sshd, namespace and key is gone after the
  test, whatever it did; without root or OpenSSH the test is skipped, saying why.

With ``--netns-kit-capture`` (or the ``netns_kit_capture`` marker on a test), the
``lab`` fixture captures every namespace of the lab as it is made (``tcpdump -i
any`` in each, so every link end); when the test fails, the pcaps, the lab's
snapshot (JSON) and its picture (SVG) are kept in a directory named after the test,
under ``--netns-kit-evidence DIR`` (default ``netns-kit-evidence`` where pytest was
started), and the failure report says where.  When it passes they are deleted.

The lab's host side is its own namespace (``lab.host_side``), but the namespaces a test
makes are named exactly as given, machine-wide (as root): prefix them with
``lab.name`` (as in ``lab.namespace(f"{lab.name}-red")``) so that tests running at
the same time, or a test and the machine's own namespaces, never share a name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from netns_kit.errors import RootlessUnavailableError, ToolMissingError
from netns_kit.executors import RecordingExecutor
from netns_kit.lab.lab import Lab
from netns_kit.testing.fakemachines import FakeMachines
from netns_kit.testing.fakemachines import skip_reason as fake_machines_skip_reason

_EVIDENCE = pytest.StashKey[tuple[Lab, object]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netns-kit")
    group.addoption(
        "--netns-kit-capture",
        action="store_true",
        help="the lab fixture captures every namespace; a failing test keeps the pcaps, "
        "the lab's snapshot and picture",
    )
    group.addoption(
        "--netns-kit-evidence",
        metavar="DIR",
        default=None,
        help="where failing tests keep their evidence (default: ./netns-kit-evidence)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netns_kit_capture: the lab fixture captures every namespace; kept if the test fails",
    )


def evidence_root(config: pytest.Config) -> Path:
    chosen = config.getoption("netns_kit_evidence", None)
    return Path(chosen) if chosen else config.invocation_params.dir / "netns-kit-evidence"


@contextlib.contextmanager
def captured(request: pytest.FixtureRequest, lab: Lab) -> Iterator[None]:
    """While the block runs, capture every namespace of the open ``lab`` if the run or
    the test asks for it; the report hook keeps the files of a failing test."""
    node = request.node
    wanted = request.config.getoption("netns_kit_capture", False) or (
        node.get_closest_marker("netns_kit_capture") is not None
    )
    if not wanted:
        yield
        return
    if lab.rootless:
        warnings.warn(
            f"lab {lab.name!r} is rootless: its namespaces are not captured "
            "(tcpdump cannot write its file in a sandbox)",
            stacklevel=1,
        )
        yield
        return
    from netns_kit.capture.evidence import Follow

    follow = Follow(lab)
    node.stash[_EVIDENCE] = (lab, follow)
    try:
        follow()
        lab.after_build.append(follow)
        yield
    finally:
        with contextlib.suppress(KeyError):
            del node.stash[_EVIDENCE]
        with contextlib.suppress(ValueError):
            lab.after_build.remove(follow)
        for capture in follow.captures:
            with contextlib.suppress(Exception):
                capture.stop()
        follow.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test with captures: keep its evidence and say where in its report."""
    report = yield
    if report.when != "call" or not report.failed:
        return report
    held = item.stash.get(_EVIDENCE, None)
    if held is None:
        return report
    from netns_kit.capture.evidence import directory_for, keep

    lab, follow = held
    directory = directory_for(evidence_root(item.config), item.nodeid)
    problems = keep(lab, follow, directory)  # type: ignore[arg-type]
    text = f"pcaps, snapshot.json and lab.svg kept in {directory}"
    report.sections.append(("netns-kit evidence", "\n".join([text, *problems])))
    return report


def lab_skip_reason() -> str | None:
    """Why a real lab cannot be built here, or ``None`` when it can (as far as we can
    tell without trying: a kernel that refuses a rootless lab says so when it opens)."""
    if shutil.which("ip") is None:
        return "the netns_kit `lab` fixture needs iproute2 (`ip`): apt-get install iproute2"
    if os.geteuid() != 0 and not (shutil.which("unshare") and shutil.which("nsenter")):
        return "the netns_kit `lab` fixture needs root, or util-linux for a rootless lab"
    return None


def unique_lab_name(prefix: str = "pt") -> str:
    """A lab name that no other test, run or process is using: ``<prefix>-<6 hex>``."""
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def recording_executor() -> RecordingExecutor:
    """A fresh fake executor: records every command, runs nothing, needs no root."""
    return RecordingExecutor()


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A real isolated lab, already open, unique to this test, always torn down
    (rootless when not root); captured with ``--netns-kit-capture``."""
    reason = lab_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("netns-kit-state")
    the_lab = Lab(unique_lab_name(), isolated=True, state_dir=state)
    try:
        try:
            the_lab.open()
        except (RootlessUnavailableError, ToolMissingError) as refused:
            pytest.skip(f"the netns_kit `lab` fixture cannot build a lab here: {refused}")
        with captured(request, the_lab):
            yield the_lab
    finally:
        the_lab.close()


@pytest.fixture
def fake_machines() -> Iterator[Callable[..., FakeMachines]]:
    """``fake_machines(n, prefix="fm")``: n fake machines reached over ssh, always removed.

    Their names start with ``<prefix>-<6 hex>``; ``subnet=`` changes their underlay
    range (``10.250.0.0/24``, which exists only inside their namespaces).
    """
    reason = fake_machines_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    made: list[FakeMachines] = []

    def make(count: int = 2, *, prefix: str = "fm", subnet: str = "10.250.0.0/24") -> FakeMachines:
        machines = FakeMachines(count, name=unique_lab_name(prefix), subnet=subnet)
        made.append(machines)
        return machines.start()

    try:
        yield make
    finally:
        problems: list[BaseException] = []
        for machines in reversed(made):
            try:
                machines.close()
            except Exception as error:
                problems.append(error)
        if problems:
            raise problems[0]
