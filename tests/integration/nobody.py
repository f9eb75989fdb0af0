"""Run Python as the unprivileged user ``nobody`` (uid 65534), for the rootless tests.

CI runs as root, in a clone that may sit where ``nobody`` cannot even look (under
``/root``).  So the package, its dependencies (``attrs``, ``sh``), the programs the
tests run and, for the plugin test, pytest with its own dependencies are copied into
a world-readable temporary directory, and a Python that ``nobody`` can start runs them
with ``PYTHONPATH`` pointing there (the system ``python3`` first).  Every program
starts in a session of its own (``setsid``), so that what it leaves behind can be
found by session id, among other users' processes of the same uid: the test then
checks that nothing of that session is left, zombies included.

Everything lives under one directory, which :meth:`Nobody.remove` deletes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

NOBODY = 65534
HERE = Path(__file__).resolve().parent
#: What the children import: the package under test and everything it needs.
PACKAGES = ("netns_kit", "attr", "attrs", "sh")
#: What pytest needs, for running the plugin's ``lab`` fixture as nobody.
PYTEST = ("pytest", "_pytest", "py", "pluggy", "iniconfig", "packaging")


def drop(argv: Sequence[str]) -> list[str]:
    """``argv`` as nobody, with no supplementary groups."""
    return [
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        *argv,
    ]


def _source(module: str) -> Path:
    """Where an importable module lives: its package directory, or its file."""
    found = importlib.import_module(module)
    path = Path(str(found.__file__))
    return path.parent if path.name == "__init__.py" else path


class Nobody:
    """A world-readable copy of the package, and a way to run Python as nobody there."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.python = python
        self.lib = root / "lib"
        self.work = root / "work"  # nobody's: the current directory, $HOME, state
        self.runtime = self.work / "run"  # $XDG_RUNTIME_DIR, so records land here

    @classmethod
    def make(cls, files: Sequence[Path] = ()) -> Nobody:
        """Copy everything, and find a Python that nobody can start."""
        root = Path(tempfile.mkdtemp(prefix="rl-nobody-"))
        try:
            root.chmod(0o755)
            lib = root / "lib"
            lib.mkdir()
            for module in PACKAGES + PYTEST:
                source = _source(module)
                target = lib / source.name
                if source.is_dir():
                    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                    shutil.copytree(source, target, ignore=ignore)
                else:
                    shutil.copy2(source, target)
            for file in files:
                shutil.copy2(file, lib / file.name)
            subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
            work = root / "work"
            (work / "run").mkdir(parents=True)
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(work)], check=True)
            (work / "run").chmod(0o700)
            made = cls(root, "")
            made.python = made._find_python()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return made

    def _find_python(self) -> str:
        candidates = ["/usr/bin/python3", sys.executable, shutil.which("python3") or ""]
        tried = []
        for python in dict.fromkeys(c for c in candidates if c):
            check = "import sys, attrs, sh; sys.exit(sys.version_info < (3, 11))"
            done = self.run_argv([python, "-c", check], timeout=60)
            if done.returncode == 0:
                return python
            tried.append(f"{python}: {done.stderr.strip()[-200:] or done.returncode}")
        raise AssertionError("no Python >= 3.11 that nobody can start: " + "; ".join(tried))

    def env(self) -> dict[str, str]:
        return {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONPATH": str(self.lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": str(self.work),
            "XDG_RUNTIME_DIR": str(self.runtime),
            "LANG": "C.UTF-8",
        }

    def run_argv(
        self, argv: Sequence[str], *, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as nobody, to its end, in a session of its own."""
        return subprocess.run(
            drop(argv),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.work,
            env=self.env(),
            start_new_session=True,
            check=False,
        )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` as nobody, to its end."""
        return self.run_argv([self.python, *args], timeout=timeout)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """``python ARGS`` as nobody in the background (stdin and stdout are pipes);
        its PID is its session's id."""
        return subprocess.Popen(
            drop([self.python, *args]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.work,
            env=self.env(),
            start_new_session=True,
        )

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``netns-kit ARGS`` as nobody."""
        return self.run("-m", "netns_kit", *args, timeout=timeout)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def session_processes(session: int) -> list[str]:
    """Processes of nobody in ``session`` (zombies too): ``PID STATE COMMAND`` lines."""
    out = subprocess.run(
        ["ps", "-u", str(NOBODY), "-o", "pid=,sid=,stat=,args="],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    left = []
    for line in out.splitlines():
        pid, sid, state, *args = line.split(None, 3)
        if int(sid) == session:
            left.append(f"{pid} {state} {' '.join(args)[:80]}")
    return left


def wait_gone(session: int, seconds: float) -> list[str]:
    """Wait up to ``seconds`` for ``session`` to have no process left; what is left.

    An orphan (the ``unshare`` above a kept lab's holder) is reaped by init, which
    may take a moment after it exits.
    """
    deadline = time.monotonic() + seconds
    left = session_processes(session)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = session_processes(session)
    return left


def kill_session(session: int) -> None:
    """SIGKILL what a failed test left in ``session``: only nobody's, by PID."""
    for line in session_processes(session):
        pid = int(line.split()[0])
        if pid > 1:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
