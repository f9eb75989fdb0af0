"""A self-contained SVG picture of a lab, drawn without graphviz.

Everything is monospace so that text widths follow from the text, with no font
metrics: boxes, tabs and lanes are sized from what they must hold.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable

import attrs

from netns_kit.render.model import Model, build_model
from netns_kit.spec import Topology

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text escaped for XML content and attributes (control characters replaced)."""
    return html.escape(_XML_BAD.sub("\ufffd", text), quote=True)


# Everything is monospace so that text widths can be computed without font metrics:
# DejaVu Sans Mono's advance is 0.602 em; 0.62 leaves a little room for others.
_FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
_EM = 0.62
_SIZE = 12  # body text
_TITLE = 14  # namespace and host-side titles
_SMALL = 11  # interface tabs and drop labels
_LINE = 17  # body line height
_PAD = 12  # inside a box
_TAB_H = 18  # interface tabs straddle a box edge, half in and half out
_HALF = _TAB_H / 2
_LANE = 10  # distance between parallel wires in a channel
_MARGIN = 20
_BAR = 30  # vertical room for one bridge bar with its label
_GLYPH = 26  # room for the little bar before a switch's name in a box

COLOURS = {
    "host_fill": "#fff6e5",
    "host_stroke": "#d08a00",
    "host_text": "#7a4e00",
    "ns_fill": "#eef4fb",
    "ns_stroke": "#4f79a8",
    "ns_text": "#1c3a5e",
    "bridge": "#2e8b57",
    "wire": "#3d3d3d",
    "addr": "#0b5fa5",
    "note": "#6b6b6b",
    "nat": "#a3470b",
}


_Add = Callable[[str], None]


def _w(text: str, size: float = _SIZE) -> float:
    return len(text) * size * _EM


@attrs.define
class _Port:
    """Where a wire meets a box: a tab with the interface name on the box's edge."""

    wire: int
    label: str
    note: str | None = None  # a bridge port's name, written beside the drop from the bar
    x: float = 0.0
    y: float = 0.0
    switch: bool = False  # the interface is a port of a switch inside the box

    @property
    def tab(self) -> float:
        return _w(self.label, _SMALL) + 14

    @property
    def slot(self) -> float:
        """Room along the edge: the tab, or the note beside the line, whichever is wider."""
        return max(self.tab, _w(self.note or "", _SMALL) + 16) + 8


@attrs.define
class _Route:
    """How a wire between two namespaces runs (see :class:`_Svg`)."""

    kind: str  # side, u (same row), step (next row) or gutter (further down)
    first: int = 0  # lane in the channel below the upper box
    gutter: int = 0  # lane in the gutter left of the lower box's column
    last: int = 0  # lane in the channel above the lower box


@attrs.define
class _Box:
    name: str
    row: int
    col: int
    interfaces: list[tuple[str, str]]
    notes: list[tuple[str, str]]  # (text, kind): see Model.styled_notes
    top: list[_Port] = attrs.Factory(list)
    bottom: list[_Port] = attrs.Factory(list)
    left: list[_Port] = attrs.Factory(list)
    right: list[_Port] = attrs.Factory(list)
    x: float = 0.0
    y: float = 0.0

    @property
    def name_column(self) -> float:
        return max((_w(name) for name, _ in self.interfaces), default=0.0) + _w("  ")

    def content_width(self) -> float:
        widths = [_w(self.name, _TITLE)] + [_w(note) + _GLYPH for note, _ in self.notes]
        widths += [self.name_column + _w(address) for _, address in self.interfaces]
        return max(widths)

    def content_height(self) -> float:
        lines = len(self.interfaces) + len(self.notes)
        body = _HALF + 8 + 18 + lines * _LINE + 8 + _HALF
        sides = max(len(self.left), len(self.right)) * (_TAB_H + 8) + 8
        return max(body, sides, 64.0)


def _columns(count: int) -> int:
    if count <= 4:
        return max(count, 1)
    return min(math.ceil(math.sqrt(count)), 6)


#: The widest a row of boxes laid out by level gets; a longer level wraps.
_MAX_COLUMNS = 12


def _grid(model: Model) -> tuple[int, dict[str, tuple[int, int]]]:
    """Each box's (row, column), and how many columns there are.

    Boxes wired to each other go by level (:func:`~netns_kit.render.model.levels`),
    each row spread evenly under the widest, so a tree reads as a tree; otherwise
    they fill a grid in order.
    """
    if not model.rows:
        cols = _columns(len(model.namespaces))
        return cols, {name: divmod(i, cols) for i, name in enumerate(model.namespaces)}
    cols = min(max(len(row) for row in model.rows), _MAX_COLUMNS)
    cells: dict[str, tuple[int, int]] = {}
    row_number = 0
    for level in model.rows:
        for start in range(0, len(level), cols):
            chunk = level[start : start + cols]
            for k, name in enumerate(chunk):
                cells[name] = (row_number, int((k + 0.5) * cols / len(chunk)))
            row_number += 1
    return cols, cells


class _Svg:
    """Lays a model out on a grid and draws it.

    Namespaces sit in a grid below the host-side box, which holds the bridges as
    bars.  Wires run in the free space between boxes: a pair of neighbours in a row
    is joined straight across the gutter between them; any other wire runs in the
    horizontal channel above or below a row and in the vertical gutter between
    columns, each on a lane of its own, so no wire crosses a box or runs on top of
    another.  A bridge reaches the first row straight down from its bar, and rows
    further down through a trunk in the left gutter and a branch along each row's
    channel.  Text is monospace, so every size follows from the text it must hold.
    """

    def __init__(self, model: Model) -> None:
        self.m = model
        self.cols, cells = _grid(model)
        self.rows = 1 + max((row for row, _ in cells.values()), default=0)
        self.boxes = {
            name: _Box(
                name,
                *cells[name],
                [(n, a or "") for n, a in model.interfaces(name)],
                model.styled_notes(name),
            )
            for name in model.namespaces
        }
        self.bridge_index = {name: k for k, (name, _) in enumerate(model.bridges)}
        self.show_host_side = model.show_host_side
        # channel r lies above row r; channel `rows` lies below the last row
        self.channel_lanes = [0] * (self.rows + 1)
        self.gutter_lanes = [0] * (self.cols + 1)
        self.trunk_lane: dict[str, int] = {}
        self.branch_lane: dict[tuple[str, int], int] = {}
        self.routes: dict[int, _Route] = {}
        self._plan()

    # -- planning: ports and lanes ---------------------------------------------------------
    def _ordered(self, i: int) -> tuple[_Box, _Box, str, str]:
        """A namespace wire's boxes, upper-left first, with the interface at each."""
        w = self.m.wires[i]
        a, b = self.boxes[w.ns_a], self.boxes[w.ns_b or ""]
        if (b.row, b.col) < (a.row, a.col):
            return b, a, w.if_b, w.if_a
        return a, b, w.if_a, w.if_b

    def _plan(self) -> None:
        """Give every wire its ports and lanes; geometry follows from the counts."""
        for i, wire in enumerate(self.m.wires):
            if wire.bridge is not None:
                box = self.boxes[wire.ns_a]
                box.top.append(_Port(i, wire.if_a, wire.if_b, switch=wire.ports[0] is not None))
                if box.row > 0:
                    if wire.bridge not in self.trunk_lane:
                        self.trunk_lane[wire.bridge] = self._take_gutter(0)
                    self.branch_lane.setdefault((wire.bridge, box.row), -1)
                continue
            a, b, end_a, end_b = self._ordered(i)
            flipped = a.name != wire.ns_a
            port_a = _Port(i, end_a, switch=wire.ports[1 if flipped else 0] is not None)
            port_b = _Port(i, end_b, switch=wire.ports[0 if flipped else 1] is not None)
            if a.row == b.row and b.col == a.col + 1:
                a.right.append(port_a)
                b.left.append(port_b)
                self.routes[i] = _Route("side")
            elif a.row == b.row:
                a.bottom.append(port_a)
                b.bottom.append(port_b)
                self.routes[i] = _Route("u", self._take_channel(a.row + 1))
            elif b.row == a.row + 1:
                a.bottom.append(port_a)
                b.top.append(port_b)
                self.routes[i] = _Route("step", self._take_channel(b.row))
            else:
                a.bottom.append(port_a)
                b.top.append(port_b)
                first = self._take_channel(a.row + 1)
                self.routes[i] = _Route("gutter", first, self._take_gutter(b.col))
        # branches sit below the wires that leave the row above, so these never cross them
        for key in sorted(self.branch_lane, key=lambda k: (k[1], self.bridge_index[k[0]])):
            self.branch_lane[key] = self._take_channel(key[1])
        # the last leg of a wire that came down a gutter lies lowest in its channel
        for i, route in self.routes.items():
            if route.kind == "gutter":
                route.last = self._take_channel(self._ordered(i)[1].row)
        for box in self.boxes.values():
            box.bottom.sort(key=lambda port: self._other(port.wire, box).col)
            box.top.sort(key=lambda port: self._top_order(port.wire, box))

    def _other(self, wire: int, box: _Box) -> _Box:
        a, b, _, _ = self._ordered(wire)
        return b if a is box else a

    def _top_order(self, wire: int, box: _Box) -> tuple[int, int]:
        bridge = self.m.wires[wire].bridge
        if bridge is not None:
            return (0, self.bridge_index[bridge])
        return (1, self._other(wire, box).col)

    def _take_channel(self, row: int) -> int:
        self.channel_lanes[row] += 1
        return self.channel_lanes[row] - 1

    def _take_gutter(self, col: int) -> int:
        self.gutter_lanes[col] += 1
        return self.gutter_lanes[col] - 1

    # -- geometry ----------------------------------------------------------------------------
    def layout(self) -> None:
        self._layout_x()
        self._layout_bars()
        self._layout_y()

    def _layout_x(self) -> None:
        boxes = self.boxes.values()
        edge_ports = [sum(p.slot for p in ports) for b in boxes for ports in (b.top, b.bottom)]
        self.bw = math.ceil(
            max([150.0] + [b.content_width() for b in boxes] + edge_ports) + 2 * _PAD
        )
        self.bh = math.ceil(max([b.content_height() for b in boxes], default=64.0))
        self.gutters: list[float] = []
        for g, lanes in enumerate(self.gutter_lanes):
            lane_room = lanes * _LANE + (10 if lanes else 0)
            if g == 0:
                self.gutters.append((24.0 if lanes else 16.0) + lane_room)
            elif g == self.cols:
                self.gutters.append(16.0 + lane_room)
            else:
                sides = [
                    p.tab + self.boxes_at(b.row, g)[0].left[k].tab + 44
                    for b in boxes
                    if b.col == g - 1
                    for k, p in enumerate(b.right)
                ]
                self.gutters.append(max([40.0, *sides]) + lane_room)
        self.gutter_x: list[float] = []
        x = float(_MARGIN)
        for c in range(self.cols):
            self.gutter_x.append(x)
            x += self.gutters[c]
            for box in boxes:
                if box.col == c:
                    box.x = x
            x += self.bw
        self.gutter_x.append(x)
        self.grid_right = x + self.gutters[-1]
        for box in boxes:
            self._place(box.top, box.x, "centre")
            self._place(box.bottom, box.x, "centre")
        for box in boxes:  # a wire going down must not run on top of one coming up
            above = self.boxes_at(box.row - 1, box.col)
            if above and _close(box.top, above[0].bottom):
                self._place(box.top, box.x, "left")
                self._place(above[0].bottom, box.x, "right")

    def _place(self, ports: list[_Port], left: float, align: str) -> None:
        room = self.bw - sum(p.slot for p in ports)
        offset = {"left": _PAD, "centre": room / 2, "right": room - _PAD}[align]
        x = left + min(max(offset, 0.0), max(room, 0.0))
        for port in ports:
            port.x = x + 4 + port.tab / 2
            x += port.slot

    def boxes_at(self, row: int, col: int) -> list[_Box]:
        return [b for b in self.boxes.values() if b.row == row and b.col == col]

    def _bar_label(self, k: int) -> str:
        name, address = self.m.bridges[k]
        return f"{name}  {address}" if address else name

    def _layout_bars(self) -> None:
        """Each bridge's bar spans its first-row ports; bars that do not overlap share a
        track (a height in the host-side box), so two bridges side by side never cross."""
        self.spans: list[tuple[float, float]] = []
        for k, (name, _) in enumerate(self.m.bridges):
            xs = [p.x for p in self._bridge_ports(name, 0)]
            if name in self.trunk_lane:
                left = self.gutter_lane_x(0, self.trunk_lane[name])
            else:
                left = min(xs) - 14 if xs else float(_MARGIN + _PAD)
            right = max([left, *xs]) + 14
            right = max(right, left + _w(self._bar_label(k)) + 8)
            self.spans.append((left, right))
        self.track: list[int] = []
        taken: list[list[tuple[float, float]]] = []
        for left, right in self.spans:
            for t, spans in enumerate(taken):
                if all(right + 30 < l2 or r2 + 30 < left for l2, r2 in spans):
                    spans.append((left, right))
                    self.track.append(t)
                    break
            else:
                taken.append([(left, right)])
                self.track.append(len(taken) - 1)
        self.tracks = len(taken)

    def _bridge_ports(self, bridge: str, row: int) -> list[_Port]:
        return [
            p
            for box in self.boxes.values()
            if box.row == row
            for p in box.top
            if self.m.wires[p.wire].bridge == bridge
        ]

    def _layout_y(self) -> None:
        self.host_y = _MARGIN + 30.0
        notes_h = len(self.m.host_side_notes) * _LINE
        self.bar_top = self.host_y + 30 + notes_h + (8 if notes_h else 0) + 22
        self.host_h = self.bar_top - self.host_y - 22 + self.tracks * _BAR + 6
        if not self.show_host_side:  # nothing lives on the host side: no box for it
            self.host_h = 0.0
        self.channel_y: list[float] = []
        y = self.host_y + self.host_h
        for r in range(self.rows + 1):
            self.channel_y.append(y)
            room = (_HALF if r > 0 else 0) + 12 + self.channel_lanes[r] * _LANE
            if r < self.rows:
                room += 18 + _HALF + 4  # the bridge port's name above each top tab
                y += max(room, 40.0)
                for box in self.boxes.values():
                    if box.row == r:
                        box.y = y
                y += self.bh
            else:
                y += room if self.channel_lanes[r] else _HALF + 8
        for box in self.boxes.values():
            for ports in (box.left, box.right):
                for k, port in enumerate(ports):
                    port.y = box.y + self.bh * (k + 1) / (len(ports) + 1)
        self.legend_y = y + 30
        self.height = math.ceil(self.legend_y + _MARGIN)
        host_w = max([_w(self.m.host_side_label, _TITLE)] + [_w(n) for n in self.m.host_side_notes])
        self.width = math.ceil(
            max(
                [
                    self.grid_right + _MARGIN,
                    host_w + 2 * _PAD + 2 * _MARGIN,
                    self.legend_width + 2 * _MARGIN,
                ]
                + [right + _PAD + _MARGIN for _, right in self.spans]
            )
        )

    def bar_y(self, k: int) -> float:
        return self.bar_top + self.track[k] * _BAR

    def lane_y(self, row: int, lane: int) -> float:
        return self.channel_y[row] + (_HALF if row > 0 else 0) + 12 + lane * _LANE

    def gutter_lane_x(self, col: int, lane: int) -> float:
        if col == 0:
            return self.gutter_x[0] + 20 + lane * _LANE
        middle = self.gutter_x[col] + self.gutters[col] / 2
        return middle + (lane - (self.gutter_lanes[col] - 1) / 2) * _LANE

    # -- drawing -------------------------------------------------------------------------------
    def draw(self) -> str:
        self.layout()
        out: list[str] = []
        add = out.append
        add(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
            f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
            f'font-family="{_FONT}" font-size="{_SIZE}">'
        )
        add(f"<title>{_x('netns lab ' + self.m.name)}</title>")
        add(f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="white"/>')
        add(_text(_MARGIN, _MARGIN + 14, f"lab: {self.m.name}", 16, "#222", bold=True))
        if self.m.hosts:
            title = _w(f"lab: {self.m.name}", 16) + 24
            hint = "names in /etc/netns/<ns>/hosts"
            add(_text(_MARGIN + title, _MARGIN + 14, hint, _SMALL, COLOURS["note"]))
        if self.show_host_side:
            self._host(add)
        for box in self.boxes.values():
            add(
                f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{self.bw}" height="{self.bh}" '
                f'rx="8" fill="{COLOURS["ns_fill"]}" stroke="{COLOURS["ns_stroke"]}" '
                'stroke-width="1.5"/>'
            )
        self._bridges(add)
        self._wires(add)
        self._tabs(add)
        for box in self.boxes.values():
            self._box_text(add, box)
        self._legend(add)
        add("</svg>")
        return "\n".join(out) + "\n"

    def _host(self, add: _Add) -> None:
        x, y = float(_MARGIN), self.host_y
        w = self.width - 2 * _MARGIN
        add(
            f'<rect x="{x}" y="{y:.1f}" width="{w}" height="{self.host_h:.1f}" rx="10" '
            f'fill="{COLOURS["host_fill"]}" stroke="{COLOURS["host_stroke"]}" stroke-width="1.5" '
            'stroke-dasharray="7 4"/>'
        )
        add(
            _text(x + _PAD, y + 21, self.m.host_side_label, _TITLE, COLOURS["host_text"], bold=True)
        )
        for i, note in enumerate(self.m.host_side_notes):
            add(_text(x + _PAD, y + 30 + 14 + i * _LINE, note, _SIZE, COLOURS["note"]))

    def _bridges(self, add: _Add) -> None:
        colour = COLOURS["bridge"]
        for k, (name, _) in enumerate(self.m.bridges):
            y = self.bar_y(k)
            left, right = self.spans[k]
            if name in self.trunk_lane:
                tx = self.gutter_lane_x(0, self.trunk_lane[name])
                branches = [(r, lane) for (b, r), lane in self.branch_lane.items() if b == name]
                bottom = max(self.lane_y(r, lane) for r, lane in branches)
                add(_polyline([(tx, y), (tx, bottom)], colour, 4, casing=True))
                for r, lane in branches:
                    ly = self.lane_y(r, lane)
                    far = max(p.x for p in self._bridge_ports(name, r))
                    add(_polyline([(tx, ly), (far, ly)], colour, 4, casing=True))
            add(
                f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" '
                f'stroke="{colour}" stroke-width="8" stroke-linecap="round"/>'
            )
            add(_text(left, y - 9, self._bar_label(k), _SIZE, colour, bold=True, halo=True))

    def _wires(self, add: _Add) -> None:
        for i, wire in enumerate(self.m.wires):
            if wire.bridge is not None:
                box = self.boxes[wire.ns_a]
                port = next(p for p in box.top if p.wire == i)
                if box.row == 0:
                    start = self.bar_y(self.bridge_index[wire.bridge]) + 4
                else:
                    start = self.lane_y(box.row, self.branch_lane[(wire.bridge, box.row)]) + 2
                points = [(port.x, start), (port.x, box.y)]
            else:
                points = self._wire_points(i, self.routes[i])
            add(_polyline(points, COLOURS["wire"], 1.6, casing=True))

    def _wire_points(self, i: int, route: _Route) -> list[tuple[float, float]]:
        a, b, _, _ = self._ordered(i)

        def port(box: _Box, ports: list[_Port]) -> _Port:
            return next(p for p in ports if p.wire == i)

        if route.kind == "side":
            pa, pb = port(a, a.right), port(b, b.left)
            return [(a.x + self.bw, pa.y), (b.x, pb.y)]
        pa = port(a, a.bottom)
        start = (pa.x, a.y + self.bh)
        first = self.lane_y(a.row + 1, route.first)
        if route.kind == "u":
            pb = port(b, b.bottom)
            return [start, (pa.x, first), (pb.x, first), (pb.x, b.y + self.bh)]
        pb = port(b, b.top)
        if route.kind == "step":
            return [start, (pa.x, first), (pb.x, first), (pb.x, b.y)]
        gx = self.gutter_lane_x(b.col, route.gutter)
        last = self.lane_y(b.row, route.last)
        return [start, (pa.x, first), (gx, first), (gx, last), (pb.x, last), (pb.x, b.y)]

    def _tabs(self, add: _Add) -> None:
        for box in self.boxes.values():
            for port in box.top:
                add(_tab(port.x, box.y, port.label, port.switch))
                if port.note:
                    add(
                        _text(
                            port.x + 6,
                            box.y - _HALF - 6,
                            port.note,
                            _SMALL,
                            COLOURS["bridge"],
                            italic=True,
                            halo=True,
                        )
                    )
            for port in box.bottom:
                add(_tab(port.x, box.y + self.bh, port.label, port.switch))
            for port in box.left:
                add(_tab(box.x - port.tab / 2 + 3, port.y, port.label, port.switch))
            for port in box.right:
                add(_tab(box.x + self.bw + port.tab / 2 - 3, port.y, port.label, port.switch))

    def _box_text(self, add: _Add, box: _Box) -> None:
        x = box.x + _PAD
        y = box.y + _HALF + 8 + 12
        add(_text(x, y, box.name, _TITLE, COLOURS["ns_text"], bold=True))
        y += 6
        for name, address in box.interfaces:
            y += _LINE
            add(_text(x, y, name, _SIZE, "#222"))
            if address:
                add(_text(x + box.name_column, y, address, _SIZE, COLOURS["addr"]))
        for note, kind in box.notes:
            y += _LINE
            if kind == "switch":  # a switch inside the namespace: a small bar, then its name
                add(
                    f'<line x1="{x + 2}" y1="{y - 4}" x2="{x + _GLYPH - 8}" y2="{y - 4}" '
                    f'stroke="{COLOURS["bridge"]}" stroke-width="6" stroke-linecap="round"/>'
                )
                add(_text(x + _GLYPH, y, note, _SIZE, COLOURS["bridge"], bold=True))
            else:
                colour = COLOURS["nat"] if kind == "nat" else COLOURS["note"]
                add(_text(x, y, note, _SIZE, colour))

    @property
    def legend_width(self) -> float:
        """The legend shows what the picture uses: a switch's port tab only where there
        are switches, so a lab without them keeps its narrow picture."""
        host = (
            _w("veth-x-br port of a bridge", _SMALL) if self.m.bridges or not self.m.switches else 0
        )
        return 380 + (150 if self.m.switches else 0) + host

    def _legend(self, add: _Add) -> None:
        y = self.legend_y
        x = float(_MARGIN)
        add(
            f'<line x1="{x + 4}" y1="{y - 4}" x2="{x + 30}" y2="{y - 4}" '
            f'stroke="{COLOURS["bridge"]}" stroke-width="8" stroke-linecap="round"/>'
        )
        add(_text(x + 42, y, "bridge", _SMALL, "#444"))
        x += 100
        add(
            f'<line x1="{x}" y1="{y - 4}" x2="{x + 30}" y2="{y - 4}" '
            f'stroke="{COLOURS["wire"]}" stroke-width="1.6"/>'
        )
        add(_text(x + 38, y, "veth pair", _SMALL, "#444"))
        x += 120
        add(_tab(x + 20, y - 4, "eth0"))
        add(_text(x + 50, y, "interface", _SMALL, "#444"))
        x += 130
        if self.m.switches:
            add(_tab(x + 20, y - 4, "eth1", switch=True))
            add(_text(x + 50, y, "switch port", _SMALL, "#444"))
            x += 150
        if self.m.bridges or not self.m.switches:  # bars on the host side
            add(_text(x, y, "veth-x-br", _SMALL, COLOURS["bridge"], italic=True))
            add(_text(x + _w("veth-x-br ", _SMALL), y, "port of a bridge", _SMALL, "#444"))


def _close(ports: list[_Port], others: list[_Port]) -> bool:
    return any(abs(p.x - q.x) < 8 for p in ports for q in others)


def _text(
    x: float,
    y: float,
    text: str,
    size: float = _SIZE,
    fill: str = "#222",
    *,
    bold: bool = False,
    anchor: str = "start",
    halo: bool = False,
    italic: bool = False,
) -> str:
    extra = ' font-weight="bold"' if bold else ""
    extra += ' font-style="italic"' if italic else ""
    if anchor != "start":
        extra += f' text-anchor="{anchor}"'
    if halo:
        extra += ' stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke"'
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}"'
        f' xml:space="preserve"{extra}>{_x(text)}</text>'
    )


def _tab(x: float, y: float, label: str, switch: bool = False) -> str:
    """An interface tab centred on (x, y); a switch's port has the bridge's colour."""
    w = _w(label, _SMALL) + 14
    stroke, width = (COLOURS["bridge"], 2.2) if switch else (COLOURS["ns_stroke"], 1.2)
    return (
        f'<rect x="{x - w / 2:.1f}" y="{y - _HALF:.1f}" width="{w:.1f}" height="{_TAB_H}" '
        f'rx="4" fill="white" stroke="{stroke}" stroke-width="{width}"/>'
        + _text(x, y + 4, label, _SMALL, "#222", anchor="middle")
    )


def _polyline(points: list[tuple[float, float]], colour: str, width: float, *, casing: bool) -> str:
    """A line; with ``casing`` a white edge under it, so crossings read as crossings."""
    d = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    line = (
        f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="{width}" '
        'stroke-linejoin="round"/>'
    )
    if not casing:
        return line
    return (
        f'<polyline points="{d}" fill="none" stroke="white" stroke-width="{width + 4}" '
        'stroke-linejoin="round"/>' + line
    )


def to_svg(topology: Topology) -> str:
    """A self-contained SVG picture of the lab, drawn without graphviz.

    Namespaces are boxes with their interfaces and addresses, bridges are bars in
    the host-side box, each veth pair is a line whose ends carry the interface
    names.  Sizes follow the text, so nothing overlaps however long the names are.
    """
    return _Svg(build_model(topology)).draw()
