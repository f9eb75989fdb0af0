"""Graph text: Mermaid flowcharts (GitHub renders them) and Graphviz DOT.

Node ids are generated, so names only ever appear inside quoted, escaped labels.
"""

from __future__ import annotations

from ..spec import Topology
from .model import build_model

_MERMAID_ESCAPES = {'"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;", "#": "#35;"}


def _mermaid_text(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in cleaned)


def _label(*lines: str) -> str:
    return "<br/>".join(_mermaid_text(line) for line in lines)


def to_mermaid(topology: Topology) -> str:
    """A Mermaid flowchart (GitHub renders these in Markdown).

    Node ids are generated (``ns0``, ``br0``), so names only ever appear inside
    quoted, escaped labels.
    """
    model = build_model(topology)
    ns_id = {name: f"ns{i}" for i, name in enumerate(model.namespaces)}
    br_id = {name: f"br{i}" for i, (name, _) in enumerate(model.bridges)}
    lines = ["flowchart TB"]
    lines.append(f'  subgraph host["{_label(model.host_label)}"]')
    for name, address in model.bridges:
        lines.append(f'    {br_id[name]}[["{_label(name, address or "")}"]]')
    if not model.bridges:
        lines.append(f'    hostnote["{_label(*model.host_notes or ("(no bridges)",))}"]')
    lines.append("  end")
    for name in model.namespaces:
        body = [name] + [f"{i} {a or ''}".rstrip() for i, a in model.interfaces(name)]
        body += model.routes.get(name, [])
        lines.append(f'  {ns_id[name]}("{_label(*body)}")')
    for wire in model.wires:
        target = br_id[wire.bridge] if wire.bridge else ns_id[wire.ns_b or ""]
        edge = _label(f"{wire.if_a} -- {wire.if_b}", *([wire.shaping] if wire.shaping else []))
        lines.append(f'  {ns_id[wire.ns_a]} ---|"{edge}"| {target}')
    lines.append("  classDef hostside fill:#fff4dc,stroke:#d08a00,stroke-dasharray:6 4")
    lines.append("  class host hostside")
    return "\n".join(lines) + "\n"


def _dot_body(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned.replace("\\", "\\\\").replace('"', '\\"')


def _dot(text: str) -> str:
    """A DOT quoted string: backslash and quote escaped, control characters dropped."""
    return f'"{_dot_body(text)}"'


def _dot_lines(*lines: str) -> str:
    """Several lines in one DOT label, joined by DOT's own ``\\n``."""
    return '"' + "\\n".join(_dot_body(line) for line in lines) + '"'


def to_dot(topology: Topology) -> str:
    """Graphviz DOT: namespaces as boxes, bridges inside a ``host side`` cluster."""
    model = build_model(topology)
    out = [
        f"graph {_dot(model.name)} {{",
        "  graph [rankdir=TB, fontname=monospace];",
        "  node [fontname=monospace, fontsize=11];",
        "  edge [fontname=monospace, fontsize=9];",
        "  subgraph cluster_host {",
        f"    label={_dot_lines(model.host_label, *model.host_notes)};",
        '    style="dashed,filled"; color="#d08a00"; fillcolor="#fff4dc";',
    ]
    for name, address in model.bridges:
        label = _dot_lines(name, address) if address else _dot_lines(name)
        out.append(
            f"    {_dot('bridge:' + name)} [label={label}, shape=box, style=filled, "
            'fillcolor="#2e8b57", fontcolor=white];'
        )
    out.append("  }")
    for name in model.namespaces:
        body = [name] + [f"{i} {a or ''}".rstrip() for i, a in model.interfaces(name)]
        body += model.routes.get(name, [])
        out.append(
            f"  {_dot('ns:' + name)} [label={_dot_lines(*body)}, shape=box, "
            'style="rounded,filled", fillcolor="#eef4fb", color="#4f79a8"];'
        )
    for wire in model.wires:
        target = _dot("bridge:" + wire.bridge) if wire.bridge else _dot(f"ns:{wire.ns_b}")
        shaped = f", label={_dot(wire.shaping)}" if wire.shaping else ""
        out.append(
            f"  {_dot('ns:' + wire.ns_a)} -- {target} "
            f"[taillabel={_dot(wire.if_a)}, headlabel={_dot(wire.if_b)}{shaped}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"
