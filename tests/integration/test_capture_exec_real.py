"""``netns-kit exec``, ``shell`` and ``capture`` on the real kernel, under a pseudo-terminal.

The command runs in a child whose controlling terminal is a pty (``pty.fork``), as
at a real terminal: we type into the master side and read what it prints.  Every
wait is bounded.  Labs are named ``cap-<token>`` and removed with ``recover``.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_kit import Lab, recover
from netns_kit.capture import pcap


@pytest.fixture
def kept(uid: str, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A kept lab with namespaces red and blue joined by a veth; (lab, red, state)."""
    state = tmp_path / "state"
    name = f"cap-{uid}-x"
    lab = Lab(name, isolated=True, state_dir=state)
    try:
        red = lab.namespace(f"{name}-red")
        blue = lab.namespace(f"{name}-blue")
        lab.link(red, blue, addresses=("10.62.0.1/24", "10.62.0.2/24"), names=("vr", "vb"))
        lab.keep()
        yield name, red.name, state
    finally:
        if lab.state == "open":
            lab.close()
        recover(name, state_dir=state)


class Terminal:
    """A child on a pty: type, read until a text shows, and its exit code."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            try:
                os.execvpe(argv[0], argv, {**os.environ, **(env or {})})
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.seen = b""

    def type(self, text: str | bytes) -> None:
        os.write(self.fd, text.encode() if isinstance(text, str) else text)

    def expect(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; saw {self.seen.decode(errors='replace')!r}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child ended: EIO
                    chunk = b""
                if not chunk:
                    break
                self.seen += chunk
        assert text.encode() in self.seen, f"ended without {text!r}: {self.seen!r}"
        return self.seen.decode(errors="replace")

    def exit_code(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            assert time.monotonic() < deadline, "the command did not end"
            with_data, _, _ = select.select([self.fd], [], [], 0.05)
            if with_data:
                with contextlib.suppress(OSError):
                    self.seen += os.read(self.fd, 4096)

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def netns_kit(state: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "netns_kit", "--state-dir", str(state), *args]


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    made: list[Terminal] = []
    yield made
    for terminal in made:
        terminal.kill()


def test_an_interactive_sh_answers_a_typed_line(
    kept: tuple[str, str, Path], terminals: list[Terminal]
) -> None:
    name, red, state = kept
    term = Terminal(netns_kit(state, "exec", name, red, "--", "sh", "-i"), {"PS1": "ps1> "})
    terminals.append(term)
    term.expect("ps1> ")
    term.type("echo answer-$((6 * 7)); ip -o link show vr | cut -d: -f2\n")
    out = term.expect("answer-42")
    term.expect(" vr@")  # it runs in red: vr is there
    term.type("exit 5\n")
    assert term.exit_code() == 5, out


def test_ctrl_c_reaches_the_command(kept: tuple[str, str, Path], terminals: list[Terminal]) -> None:
    name, red, state = kept
    script = 'trap "echo got-int; exit 9" INT; echo armed; while :; do sleep 0.05; done'
    term = Terminal(netns_kit(state, "exec", name, red, "--", "sh", "-c", script))
    terminals.append(term)
    term.expect("armed")
    term.type(b"\x03")  # Ctrl-C at the terminal
    term.expect("got-int")
    assert term.exit_code() == 9  # the command's own code: netns-kit was not interrupted


@pytest.mark.parametrize("code", [0, 3, 77])
def test_exit_codes_pass_through(kept: tuple[str, str, Path], code: int) -> None:
    name, red, state = kept
    done = subprocess.run(
        netns_kit(state, "exec", name, red, "--", "sh", "-c", f"exit {code}"), timeout=60
    )
    assert done.returncode == code


def test_stdin_passes_through_and_output_streams(kept: tuple[str, str, Path]) -> None:
    name, red, state = kept
    done = subprocess.run(
        netns_kit(state, "exec", name, red, "--", "tr", "a-z", "A-Z"),
        input="piped in\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == "PIPED IN\n"


def line_within(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's next stdout line, or fail after ``timeout`` seconds (never hang)."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    assert ready, f"no line within {timeout} s"
    return child.stdout.readline()


def test_a_signal_to_netns_kit_reaches_the_command_without_a_terminal(
    kept: tuple[str, str, Path],
) -> None:
    name, red, state = kept
    script = 'trap "echo got-int; exit 9" INT; echo armed; while :; do sleep 0.05; done'
    child = subprocess.Popen(
        netns_kit(state, "exec", name, red, "--", "sh", "-c", script),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert line_within(child, 30) == "armed\n"
        child.send_signal(signal.SIGINT)
        assert line_within(child, 30) == "got-int\n"
        assert child.wait(30) == 9
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_shell_shows_the_namespace_in_its_prompt(
    kept: tuple[str, str, Path], terminals: list[Terminal]
) -> None:
    name, red, state = kept
    term = Terminal(netns_kit(state, "shell", name, red), {"SHELL": "/bin/sh"})
    terminals.append(term)
    term.expect(f"({name}:{red}) $ ")
    term.type("echo ns=$NETNS_KIT_NAMESPACE\n")
    term.expect(f"ns={red}")
    term.type("exit\n")
    assert term.exit_code() == 0


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_capture_writes_pcap_to_stdout_and_ends_cleanly_on_ctrl_c(
    kept: tuple[str, str, Path], tmp_path: Path
) -> None:
    name, red, state = kept
    out = tmp_path / "stdout.pcap"
    with out.open("wb") as sink:
        child = subprocess.Popen(
            netns_kit(state, "capture", name, f"{red}:vr", "-w", "-", "icmp"),
            stdout=sink,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stderr is not None
            assert "listening on vr" in child.stderr.readline()
            ping = subprocess.run(
                ["ip", "netns", "exec", red, "ping", "-c", "3", "-i", "0.05", "10.62.0.2"],
                capture_output=True,
                timeout=30,
            )
            assert ping.returncode == 0
            deadline = time.monotonic() + 10
            while pcap.parse(out.read_bytes()).packets < 6 if out.stat().st_size >= 24 else True:
                assert time.monotonic() < deadline, "the packets never reached stdout"
                time.sleep(0.01)
            child.send_signal(signal.SIGINT)
            assert child.wait(30) == 0
            assert "packets captured" in child.stderr.read()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    found = pcap.read(out)
    assert found.complete and found.packets == 6
    assert {pcap.classify(found.header.linktype, r.data).protocol for r in found.records} == {
        "ICMP"
    }
