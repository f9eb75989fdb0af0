"""Pictures and tables of a lab: Mermaid, DOT, a self-contained SVG, HTML and text.

Everything here is pure: a :class:`~netns_kit.spec.Topology` (what a lab is meant to
be) or a :class:`~netns_kit.readback.reader.Snapshot` (what the kernel says it is) goes in,
text comes out.  The SVG is drawn by hand, with no graphviz, so that a notebook can
show a lab on a machine that has nothing but Python.  All user text is escaped for
the target format: names are checked by the library, but a topology handed in from
elsewhere need not have been.
"""

from __future__ import annotations

from netns_kit.readback.tables import (
    TABLE_HEADER,
    TableRow,
    table_rows,
    text_table,
    to_html_table,
    to_text_table,
)
from netns_kit.render.graph import to_dot, to_mermaid
from netns_kit.render.heatmap import reachability_html, reachability_text
from netns_kit.render.model import host_side_label
from netns_kit.render.svg import COLOURS, to_svg

__all__ = [
    "COLOURS",
    "TABLE_HEADER",
    "TableRow",
    "host_side_label",
    "reachability_html",
    "reachability_text",
    "table_rows",
    "text_table",
    "to_dot",
    "to_html_table",
    "to_mermaid",
    "to_svg",
    "to_text_table",
]
