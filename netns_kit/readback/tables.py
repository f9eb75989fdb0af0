"""Tables of a lab's live state: HTML for Jupyter, aligned text for a terminal."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

import attrs

from netns_kit.readback.reader import Snapshot


@attrs.frozen
class TableRow:
    """One line of a lab's table: an address of an interface (or the bare interface)."""

    namespace: str
    interface: str
    address: str
    state: str
    master: str
    shaping: str = ""


TABLE_HEADER = ("namespace", "interface", "address", "state", "master", "shaping")


def table_rows(
    snapshot: Snapshot, *, loopback: bool = False, link_local: bool = False
) -> list[TableRow]:
    """Rows for :func:`to_html_table` and :func:`to_text_table`.

    Loopback and IPv6 link-local addresses are left out by default: every namespace
    has them, so they only hide what the lab itself set up.  ``shaping`` is what the
    interface's qdisc does to what it sends (``10mbit 20ms 1%``), empty when nothing.
    """
    rows: list[TableRow] = []
    for state in snapshot.namespaces:
        where = state.name if state.name is not None else "(root)"
        for link in state.links:
            if link.kind == "loopback" and not loopback:
                continue
            addrs = [
                a.address
                for a in state.addresses
                if a.interface == link.name and (link_local or a.scope != "link")
            ]
            shaping = link.qdisc.label if link.qdisc is not None else ""
            for address in addrs or [""]:
                row = TableRow(where, link.name, address, link.state, link.master or "", shaping)
                rows.append(row)
    return rows


def _rows(rows: Snapshot | Iterable[TableRow]) -> list[TableRow]:
    return table_rows(rows) if isinstance(rows, Snapshot) else list(rows)


def to_html_table(rows: Snapshot | Iterable[TableRow]) -> str:
    """An HTML table (namespace, interface, address, state, master), every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in TABLE_HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in attrs.astuple(row)) + "</tr>"
        for row in _rows(rows)
    )
    return f'<table class="netns-kit"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def to_text_table(rows: Snapshot | Iterable[TableRow]) -> str:
    """The same table as aligned plain text, for a terminal."""
    return text_table(TABLE_HEADER, [attrs.astuple(row) for row in _rows(rows)])


def text_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Aligned columns of plain text, ``None`` cells left empty (every text table)."""
    cells = [list(header)] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in cells
    )
