"""``netns-kit up`` and ``down`` on a terminal show one updating status line on
stderr; piped, they print nothing beyond what they always print."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from .conftest import Kernel
from .test_cli_real import LABS, Copy, leftovers, netns_kit  # noqa: F401  (a fixture)

#: The most a command may take here (a bound, not a guess of how long it takes).
BOUND = 120.0


def eco_copy(example: str, uid: str, into: Path) -> Copy:
    """The example with every name prefixed ``eco<uid>`` (this suite's kernel prefix)."""
    text = (LABS / f"{example}.toml").read_text()
    data = tomllib.loads(text)
    renamed = {ns: f"eco{uid}{ns}" for ns in data["namespaces"]}
    name = f"eco{uid}-{example}"[:40]
    for old, new in [(data["name"], name), *renamed.items()]:
        text = re.sub(rf'"{re.escape(old)}"', f'"{new}"', text)
    path = into / f"{name}.toml"
    path.write_text(text)
    return Copy(path, name, f"{name}-host", renamed)


def on_a_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with stderr (and stdin) on a pseudo-terminal, stdout piped."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.Popen(
            argv, stdin=terminal, stdout=subprocess.PIPE, stderr=terminal, close_fds=True
        )
        os.close(terminal)
        terminal = -1
        seen = b""
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not chunk:
                    break
                seen += chunk
            elif done.poll() is not None:
                break
        assert done.stdout is not None
        done.stdout.read()
        return done.wait(timeout=BOUND), seen.decode()
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)


def test_status_line_on_a_terminal_nothing_extra_when_piped(
    uid: str,
    tmp_path: Path,
    kernel: Kernel,
    leftovers: list[str],  # noqa: F811
) -> None:
    copy = eco_copy("mininet-tree", uid, tmp_path)
    leftovers += copy.all_namespaces
    state = tmp_path / "state"
    cli = [sys.executable, "-m", "netns_kit", "--state-dir", str(state)]
    code, shown = on_a_terminal([*cli, "up", str(copy.path)])
    assert code == 0, shown
    lines = [part.removesuffix("\033[K") for part in shown.split("\r")]
    phases = {line.split(": ")[1].split(" ")[0] for line in lines if line.startswith("lab ")}
    assert {"namespaces", "links", "settings"} <= phases, shown
    assert shown.rstrip("\n").endswith("\r\033[K") or "\r\033[K" in shown  # cleared
    code, shown = on_a_terminal([*cli, "down", copy.name])
    assert code == 0, shown
    assert f"tearing down {copy.name}: " in shown
    assert not set(copy.all_namespaces) & set(kernel.namespaces())

    # the same, piped: stderr stays empty
    up = netns_kit(state, "up", str(copy.path))
    assert up.returncode == 0, up.stderr
    assert up.stderr == ""
    down = netns_kit(state, "down", copy.name)
    assert down.returncode == 0 and down.stderr == ""
    # --quiet on a terminal: nothing on it but what the command always prints
    code, shown = on_a_terminal([*cli, "--quiet", "up", str(copy.path)])
    assert code == 0 and "\r" not in shown, shown
    assert netns_kit(state, "down", copy.name).returncode == 0
    assert not set(copy.all_namespaces) & set(kernel.namespaces())
