"""Programs attached to the caller's own terminal: ``netns-kit exec`` and ``shell``.

A program started here gets our stdin, stdout and stderr (the terminal, when there is
one), and the signals meant for it are passed on by the PID we started.  Executor
code: every executor's ``interact`` ends here, with its own argv (``ip netns exec``,
``nsenter``, ``ssh -t``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

from netns_kit.errors import ToolMissingError


def _terminal_delivers_sigint() -> bool:
    """Whether Ctrl-C at our terminal reaches a child of ours by itself: stdin is a
    terminal whose foreground process group is ours (the child inherits the group)."""
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def run_attached(argv: Sequence[str], *, forward: Callable[[int, int], None] | None = None) -> int:
    """Start ``argv`` on the caller's stdin, stdout and stderr and wait for it.

    Signals meant for the program are passed on to it, by the PID we started
    (``forward(pid, signum)``, or ``os.kill``): SIGTERM, SIGHUP and SIGQUIT always,
    SIGINT only when the terminal did not already deliver it to the program's
    process group (a Ctrl-C typed at our terminal reaches both of us; a second copy
    would interrupt a shell or a REPL twice).  We ourselves survive them and return
    the program's exit code (128 + N when signal N ended it, as shells say).
    Handlers can only be set in the main thread; elsewhere signals act as usual.
    """
    send = forward or _kill
    by_terminal = _terminal_delivers_sigint()
    started: list[subprocess.Popen[bytes]] = []
    early: list[int] = []

    def passed_on(signum: int, frame: object) -> None:
        if signum == signal.SIGINT and by_terminal:
            return
        if not started:  # it arrived while the program starts: pass it on after
            early.append(signum)
        elif started[0].poll() is None:
            send(started[0].pid, signum)

    # The handlers go in before the program starts: a signal that came between its
    # start and them would end us and leave it running (seen: a program that printed
    # at once and was signalled at once outlived netns-kit).
    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for forwarded in _FORWARDED:
            old[forwarded] = signal.signal(forwarded, passed_on)
    try:
        try:
            popen = subprocess.Popen(list(argv))
        except FileNotFoundError:
            raise ToolMissingError(argv[0]) from None
        started.append(popen)
        for signum in early:
            send(popen.pid, signum)
        code = popen.wait()
    finally:
        for number, handler in old.items():
            signal.signal(number, handler)
        for running in started:
            if running.poll() is None:  # leaving on an exception: end what we started
                with contextlib.suppress(ProcessLookupError):
                    send(running.pid, signal.SIGKILL)
                running.wait()
    return code if code >= 0 else 128 - code


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
