"""Named namespaces made and removed by a thread (nsfiles) against `ip netns`, real kernel."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator

import pytest
from pytest_mock import MockerFixture

from netns_kit import Command, Result, ShellExecutor

from .conftest import Kernel, sh


class ThroughIp(ShellExecutor):
    NETLINK = False


class Threaded(ShellExecutor):
    NAMESPACE_FILES = True


def batch(lines: list[str], *, force: bool = False) -> Command:
    flags = ("-force", "-batch", "-") if force else ("-batch", "-")
    return Command(("ip", *flags), stdin="".join(f"{line}\n" for line in lines))


@pytest.fixture
def names(uid: str, kernel: Kernel) -> Iterator[list[str]]:
    made = [f"nk-{uid}-{i}" for i in range(4)]
    yield made
    for name in made:
        if name in kernel.namespaces():
            sh("ip", "netns", "delete", name)


@pytest.fixture
def threaded(mocker: MockerFixture) -> Callable[[Command], Result]:
    """Run a command through the shell executor, checking that it started no process."""
    spies = (mocker.spy(subprocess, "run"), mocker.spy(subprocess, "Popen"))

    def run(command: Command) -> Result:
        before = [spy.call_count for spy in spies]
        done = Threaded().execute(command)
        assert [spy.call_count for spy in spies] == before  # no ip, no process
        return done

    return run


def test_namespaces_made_by_a_thread_are_ip_netns_namespaces(
    names: list[str], kernel: Kernel, threaded: Callable[[Command], Result]
) -> None:
    home = os.readlink("/proc/thread-self/ns/net")
    done = threaded(batch([f"netns add {n}" for n in names]))
    assert (done.returncode, done.stderr) == (0, "")
    assert os.readlink("/proc/thread-self/ns/net") == home  # the thread came back
    assert set(names) <= set(kernel.namespaces())
    inodes = {sh("ip", "netns", "exec", n, "readlink", "/proc/self/ns/net").strip() for n in names}
    assert len(inodes) == len(names) and home not in inodes  # each its own, none the machine's
    assert kernel.links(names[0]).keys() == {"lo"}
    sh("ip", "-n", names[0], "link", "add", "v0", "type", "veth", "peer", "name", "v1")
    assert {"v0", "v1"} <= kernel.links(names[0]).keys()  # usable by ip
    mounts = sh("findmnt", "-n", "-o", "PROPAGATION", "/run/netns").split()
    assert mounts and all(p.startswith("shared") for p in mounts)  # as ip leaves it

    done = threaded(batch([f"netns delete {n}" for n in names]))
    assert (done.returncode, done.stderr) == (0, "")
    assert not set(names) & set(kernel.namespaces())
    assert not any(os.path.exists(f"/run/netns/{n}") for n in names)


@pytest.mark.parametrize("force", [False, True])
def test_failures_say_what_ip_says(
    names: list[str], force: bool, kernel: Kernel, threaded: Callable[[Command], Result]
) -> None:
    a, b, c, _ = names
    sh("ip", "netns", "add", a)
    lines = [f"netns add {b}", f"netns add {a}", f"netns add {c}"]
    by_ip = ThroughIp().execute(batch(lines, force=force))
    made_by_ip = sorted(set(names) & set(kernel.namespaces()))
    for name in (b, c):
        sh("ip", "netns", "delete", name, check=False)
    by_thread = threaded(batch(lines, force=force))
    assert by_ip.returncode == 1 and "Command failed -:2" in by_ip.stderr
    assert (by_thread.returncode, by_thread.stderr) == (by_ip.returncode, by_ip.stderr)
    assert sorted(set(names) & set(kernel.namespaces())) == made_by_ip  # c only when forced

    missing = [f"netns delete {names[3]}"]
    assert ThroughIp().execute(batch(missing)).stderr == threaded(batch(missing)).stderr


def test_a_namespace_file_without_a_namespace_is_a_failed_result(uid: str) -> None:
    """What a build killed between making a namespace's file and mounting it leaves:
    reading inside it is a failed run with the kernel's words, not an exception (the
    recovery of that build reads every namespace's loopback)."""
    path = f"/run/netns/nk-{uid}-empty"
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    try:
        read = Command(
            ("ip", "-n", f"nk-{uid}-empty", "link", "show"),
            namespace=f"nk-{uid}-empty",
            inside=("ip", "link", "show"),
            read=True,
        )
        done = ShellExecutor().execute(read)
        assert done.returncode == 1
        assert done.stderr == (f'Cannot open network namespace "nk-{uid}-empty": Invalid argument')
    finally:
        os.unlink(path)
