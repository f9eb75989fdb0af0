"""Graph text: Mermaid flowcharts (GitHub renders them) and Graphviz DOT.

Node ids are generated, so names only ever appear inside quoted, escaped labels.
"""

from __future__ import annotations

from netns_kit.render.model import Model, Wire, build_model
from netns_kit.spec import Topology

_MERMAID_ESCAPES = {'"': "#quot;", "&": "#amp;", "<": "#lt;", ">": "#gt;", "#": "#35;"}


def _mermaid_text(text: str) -> str:
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in cleaned)


def _label(*lines: str) -> str:
    return "<br/>".join(_mermaid_text(line) for line in lines)


_Ids = tuple[dict[str, str], dict[str, str], dict[tuple[str, str], str]]


def _ids(model: Model) -> _Ids:
    """Generated node ids: namespaces, host-side bridges, switches (by namespace, name)."""
    ns_id = {name: f"ns{i}" for i, name in enumerate(model.namespaces)}
    br_id = {name: f"br{i}" for i, (name, _) in enumerate(model.bridges)}
    sw_id = {
        (ns, switch.name): f"ns{model.namespaces.index(ns)}sw{k}"
        for ns, switches in model.switches.items()
        for k, switch in enumerate(switches)
    }
    return ns_id, br_id, sw_id


def _body(model: Model, name: str) -> list[str]:
    """A namespace's label: its name, interfaces, then notes (switches drawn apart)."""
    body = [name] + [f"{i} {a or ''}".rstrip() for i, a in model.interfaces(name)]
    return body + [text for text, kind in model.styled_notes(name) if kind != "switch"]


def _ends(model: Model, wire: Wire, ids: _Ids) -> tuple[str, str]:
    """The nodes a wire joins: a switch where an end is its port, else the box or bar."""
    ns_id, br_id, sw_id = ids
    a = sw_id[wire.ns_a, wire.ports[0]] if wire.ports[0] else ns_id[wire.ns_a]
    if wire.bridge is not None:
        return a, br_id[wire.bridge]
    b_ns = wire.ns_b or ""
    return a, sw_id[b_ns, wire.ports[1]] if wire.ports[1] else ns_id[b_ns]


def to_mermaid(topology: Topology) -> str:
    """A Mermaid flowchart (GitHub renders these in Markdown).

    Node ids are generated (``ns0``, ``br0``, ``ns0sw0``), so names only ever appear
    inside quoted, escaped labels.  A namespace that holds switches is a subgraph
    with its switches inside; a wire to a switch ends at the switch.
    """
    model = build_model(topology)
    ids = _ids(model)
    ns_id, br_id, sw_id = ids
    lines = ["flowchart TB"]
    if model.show_host_side:
        lines.append(f'  subgraph host["{_label(model.host_side_label)}"]')
        for name, address in model.bridges:
            lines.append(f'    {br_id[name]}[["{_label(name, address or "")}"]]')
        if not model.bridges:
            lines.append(f'    hostnote["{_label(*model.host_side_notes or ("(no bridges)",))}"]')
        lines.append("  end")
    for name in model.namespaces:
        switches = model.switches.get(name, ())
        node = f'{ns_id[name]}("{_label(*_body(model, name))}")'
        if not switches:
            lines.append(f"  {node}")
            continue
        lines.append(f'  subgraph {ns_id[name]}box["{_label(name)}"]')
        lines.append(f"    {node}")
        for switch in switches:
            lines.append(f'    {sw_id[name, switch.name]}[["{_label(switch.text())}"]]')
        lines.append("  end")
        lines.append(f"  class {ns_id[name]}box inside")
    for wire in model.wires:
        a, b = _ends(model, wire, ids)
        edge = _label(f"{wire.if_a} -- {wire.if_b}", *([wire.shaping] if wire.shaping else []))
        lines.append(f'  {a} ---|"{edge}"| {b}')
    lines.append("  classDef hostside fill:#fff4dc,stroke:#d08a00,stroke-dasharray:6 4")
    lines.append("  classDef inside fill:#eef4fb,stroke:#4f79a8")
    if model.show_host_side:
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
    """Graphviz DOT: namespaces as boxes, host-side bridges inside a ``host side``
    cluster, and a namespace that holds switches as a cluster with its switches."""
    model = build_model(topology)
    node = {name: f"ns:{name}" for name in model.namespaces}

    def sw(namespace: str, name: str) -> str:
        return _dot(f"switch:{namespace}/{name}")

    out = [
        f"graph {_dot(model.name)} {{",
        "  graph [rankdir=TB, fontname=monospace];",
        "  node [fontname=monospace, fontsize=11];",
        "  edge [fontname=monospace, fontsize=9];",
    ]
    if model.show_host_side:
        out += [
            "  subgraph cluster_host {",
            f"    label={_dot_lines(model.host_side_label, *model.host_side_notes)};",
            '    style="dashed,filled"; color="#d08a00"; fillcolor="#fff4dc";',
        ]
        for name, address in model.bridges:
            label = _dot_lines(name, address) if address else _dot_lines(name)
            out.append(
                f"    {_dot('bridge:' + name)} [label={label}, shape=box, style=filled, "
                'fillcolor="#2e8b57", fontcolor=white];'
            )
        out.append("  }")
    for k, name in enumerate(model.namespaces):
        box = (
            f"{_dot(node[name])} [label={_dot_lines(*_body(model, name))}, shape=box, "
            'style="rounded,filled", fillcolor="#eef4fb", color="#4f79a8"];'
        )
        switches = model.switches.get(name, ())
        if not switches:
            out.append(f"  {box}")
            continue
        out += [
            f"  subgraph cluster_ns{k} {{",
            f"    label={_dot(name)};",
            '    style="rounded"; color="#4f79a8";',
            f"    {box}",
        ]
        for switch in switches:
            out.append(
                f"    {sw(name, switch.name)} [label={_dot(switch.text())}, shape=box, "
                'style=filled, fillcolor="#2e8b57", fontcolor=white];'
            )
        out.append("  }")
    for wire in model.wires:
        a = sw(wire.ns_a, wire.ports[0]) if wire.ports[0] else _dot(node[wire.ns_a])
        if wire.bridge is not None:
            b = _dot("bridge:" + wire.bridge)
        elif wire.ports[1]:
            b = sw(wire.ns_b or "", wire.ports[1])
        else:
            b = _dot(node[wire.ns_b or ""])
        shaped = f", label={_dot(wire.shaping)}" if wire.shaping else ""
        out.append(
            f"  {a} -- {b} [taillabel={_dot(wire.if_a)}, headlabel={_dot(wire.if_b)}{shaped}];"
        )
    out.append("}")
    return "\n".join(out) + "\n"
