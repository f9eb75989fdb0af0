"""The example labs of scripts/labs, renamed for one test run (issue 11's tests).

Namespace names are machine-wide, so a test builds ``<ns>-<uid>`` and a lab called
``<name>-<uid>``; interface names live inside the namespaces and stay as they are.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

LABS = Path(__file__).resolve().parents[3] / "scripts" / "labs"


def renamed(example: str, uid: str) -> dict[str, Any]:
    """The example's topology as a dict, every namespace and the lab renamed."""
    data: dict[str, Any] = tomllib.loads((LABS / f"{example}.toml").read_text())
    names = set(data["namespaces"])

    def new(name: str) -> str:
        return f"{name}-{uid}" if name in names else name

    data["name"] = f"{data['name']}-{uid}"
    data["namespaces"] = [new(n) for n in data["namespaces"]]
    for link in data.get("links", []):
        link["a"], link["b"] = new(link["a"]), new(link["b"])
    for key in ("bridges", "routes", "sysctls", "masquerade", "port_forwards"):
        for item in data.get(key, []):
            if "namespace" in item:
                item["namespace"] = new(item["namespace"])
    return data


def renamed_file(example: str, uid: str, into: Path) -> Path:
    """The example's TOML with ``-<uid>`` after each namespace's and the lab's name
    (every quoted occurrence), for the command line."""
    source = LABS / f"{example}.toml"
    data = tomllib.loads(source.read_text())
    text = source.read_text()
    for old in [data["name"], *data["namespaces"]]:
        text = re.sub(rf'"{re.escape(old)}"', f'"{old}-{uid}"', text)
    path = into / f"{example}-{uid}.toml"
    path.write_text(text)
    return path
