"""``ls --json`` and ``show --json`` use the keys of KeptLab and Snapshot.to_dict()."""

from __future__ import annotations

import io
import json
from pathlib import Path

from netns_kit import cli
from netns_kit.executors import RecordingExecutor
from netns_kit.lab.kept import kept_labs
from netns_kit.record.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = str(ROOT / "scripts" / "labs" / "bridge.toml")


def invoke(state: Path, ex: RecordingExecutor, *argv: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--state-dir", str(state), *argv], executor=ex, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


def listing(ex: RecordingExecutor, *names: str) -> None:
    ex.answer(["ip", "-j", "netns", "list"], stdout=json.dumps([{"name": n} for n in names]))


def test_ls_json_is_kept_lab_to_dict(state: Path) -> None:
    invoke(state, RecordingExecutor(), "up", BRIDGE)
    ex = RecordingExecutor()
    listing(ex, "bridge-host", "red", "blue")
    listed = json.loads(invoke(state, ex, "ls", "--json"))
    (kept,) = kept_labs(Registry(state))
    assert listed == [kept.to_dict({"bridge-host", "red", "blue"})]
    assert listed[0] == {
        "name": "bridge",
        "state": "up",
        "isolated": True,
        "rootless": False,
        "host_side": "bridge-host",
        "namespaces": ["red", "blue"],
        "pid": kept.record.pid,
    }
    table = invoke(state, ex, "ls")
    assert table.splitlines()[1].split()[:4] == ["bridge", "up", "yes", "2"]


def test_show_json_is_kept_lab_and_snapshot(state: Path) -> None:
    invoke(state, RecordingExecutor(), "up", BRIDGE)
    ex = RecordingExecutor()
    listing(ex, "bridge-host", "red")  # blue is missing
    shown = json.loads(invoke(state, ex, "show", "--json", "bridge"))
    (kept,) = kept_labs(Registry(state))
    expected = kept.to_dict({"bridge-host", "red"})
    assert set(shown) == {*expected, "missing"}
    for key in ("name", "isolated", "rootless", "host_side", "pid"):
        assert shown[key] == expected[key]
    assert shown["state"] == "partial"
    assert shown["missing"] == ["blue"]
    # namespaces: as Snapshot.to_dict() gives them, one state per namespace read
    assert [ns["name"] for ns in shown["namespaces"]] == ["bridge-host", "red"]
    assert set(shown["namespaces"][0]) >= {"name", "links", "addresses", "routes"}
