"""Named namespaces made and removed by a thread, as ``ip netns add``/``delete`` do, without ``ip``.

A named namespace is a file in ``/run/netns`` with the namespace bind-mounted on
it.  ``ip netns add`` makes it, but first marks ``/run/netns`` shared again,
recursively, on every call: the kernel then walks every mount under it, one per
namespace, so the k-th namespace costs more than the first (0.5 ms at 1,000, 1.2
ms at 8,000 here) and a lab of N costs O(N^2).  Here the mark is set once per
batch, and each namespace is made by a thread that ``unshare``s a new network
namespace for itself, bind-mounts it on the file, and goes back home with
``setns``.

Only ``netns add NAME`` and ``netns delete NAME`` lines are taken (:func:`parse`);
the words of a failure are ``ip -batch``'s own, so a batch's result reads the same.
Only root without sudo gets here (the shell executor's setns path).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator, Sequence

RUN_DIR = "/run/netns"

# linux/sched.h, linux/mount.h
_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 0x1000, 0x4000, 0x100000
_MNT_DETACH = 0x2


def parse(lines: Sequence[str]) -> list[tuple[str, str]] | None:
    """``(verb, name)`` for each line, if every line is ``netns add|delete NAME``."""
    taken = []
    for line in lines:
        words = line.split()
        if len(words) != 3 or words[0] != "netns" or words[1] not in ("add", "delete"):
            return None
        if "/" in words[2] or words[2] in (".", ".."):
            return None  # ip's own refusal, in ip's words
        taken.append((words[1], words[2]))
    return taken


class _Libc:
    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def call(self, result: int) -> None:
        if result != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    def mount(self, source: str, target: str, flags: int) -> None:
        self.call(self.libc.mount(source.encode(), target.encode(), b"none", flags, None))

    def unshare(self, flags: int) -> None:
        self.call(self.libc.unshare(flags))

    def setns(self, fd: int) -> None:
        self.call(self.libc.setns(fd, _CLONE_NEWNET))

    def umount_detached(self, target: str) -> None:
        self.call(self.libc.umount2(target.encode(), _MNT_DETACH))


def _shared(libc: _Libc) -> None:
    """``/run/netns`` exists and propagates mounts (as ``ip`` leaves it), once."""
    os.makedirs(RUN_DIR, mode=0o755, exist_ok=True)
    try:
        libc.mount("", RUN_DIR, _MS_SHARED | _MS_REC)
    except OSError:  # not a mount point yet: make it one, then mark it
        libc.mount(RUN_DIR, RUN_DIR, _MS_BIND | _MS_REC)
        libc.mount("", RUN_DIR, _MS_SHARED | _MS_REC)


@contextlib.contextmanager
def _home(libc: _Libc) -> Iterator[None]:
    """The calling thread comes back to the network namespace it started in."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield
    finally:
        try:
            libc.setns(home)
        finally:
            os.close(home)


def _add(libc: _Libc, name: str) -> str | None:
    path = f"{RUN_DIR}/{name}"
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0))
    except OSError as error:
        return f'Cannot create namespace file "{path}": {error.strerror}'
    try:
        with _home(libc):
            libc.unshare(_CLONE_NEWNET)
            libc.mount("/proc/thread-self/ns/net", path, _MS_BIND)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return f"Bind /proc/self/ns/net -> {path} failed: {error.strerror}"
    return None


def _delete(libc: _Libc, name: str) -> str | None:
    path = f"{RUN_DIR}/{name}"
    with contextlib.suppress(OSError):
        libc.umount_detached(path)
    try:
        os.unlink(path)
    except OSError as error:
        return f'Cannot remove namespace file "{path}": {error.strerror}'
    return None


def run_batch(lines: Sequence[tuple[str, str]], force: bool) -> tuple[int, str]:
    """Add or delete each named namespace in order: ``(exit code, stderr)`` as
    ``ip [-force] -batch -`` gives them."""
    libc = _Libc()
    if any(verb == "add" for verb, _ in lines):
        _shared(libc)
    said: list[str] = []
    for number, (verb, name) in enumerate(lines, 1):
        failed = _add(libc, name) if verb == "add" else _delete(libc, name)
        if failed is not None:
            said += [failed, f"Command failed -:{number}"]
            if not force:
                break
    return (1 if said else 0), "".join(f"{line}\n" for line in said)
