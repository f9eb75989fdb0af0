"""A reachability check shown: a matrix for a terminal, a heat map for Jupyter.

Pure: a :class:`~netns_kit.check.result.Reachability` goes in (known here only by the
protocols below, so that drawing never imports the check), text comes out, every
name escaped for HTML.  Rows are source namespaces, columns the target addresses,
grouped under the namespace that holds them; a cell is green where the pair
answered (its title gives the round-trip time), red where it did not, grey on the
diagonal.  With many addresses the heat map draws one small cell per namespace
instead (orange where only some of its addresses answered), and the text shows a
summary and the failures, grouped where a whole namespace is cut off.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Protocol

from netns_kit.readback.tables import text_table


class Target(Protocol):
    """An address that was probed, and the namespace that holds it."""

    @property
    def namespace(self) -> str: ...
    @property
    def address(self) -> str: ...


class Failure(Protocol):
    """A pair that did not answer; its ``str()`` says which and why."""

    @property
    def source(self) -> str: ...
    @property
    def target(self) -> Target: ...


class Reachability(Protocol):
    """What the drawing reads of a check's result (:class:`netns_kit.Reachability`)."""

    @property
    def sources(self) -> Sequence[str]: ...
    @property
    def targets(self) -> Sequence[Target]: ...
    @property
    def rtts(self) -> Mapping[tuple[str, str], float | None]: ...
    @property
    def notes(self) -> Sequence[str]: ...
    @property
    def lab(self) -> str | None: ...
    @property
    def namespaces(self) -> list[str]: ...
    @property
    def ok(self) -> bool: ...

    def grid(self) -> dict[tuple[str, str], tuple[int, int]]: ...
    def failures(self) -> Sequence[Failure]: ...
    def summary(self) -> str: ...


#: Namespaces above which text is a summary rather than a matrix.
MATRIX_MOST = 12
#: Addresses above which the heat map draws one cell per namespace.
CELLS_MOST = 64
#: Failures listed one by one before "and N more".
LISTED = 20
GREEN, RED, ORANGE, GREY = "#2e7d32", "#c62828", "#ef6c00", "#e0e0e0"


Grid = dict[tuple[str, str], tuple[int, int]]


def _cell(grid: Grid, source: str, namespace: str) -> str:
    if source == namespace:
        return "."
    answered, probed = grid.get((source, namespace), (0, 0))
    if not probed:
        return ""
    if answered == probed:
        return "ok"
    return "FAIL" if answered == 0 else f"{answered}/{probed}"


def _listed(failures: Sequence[Failure]) -> list[str]:
    lines = [f"  {failure}" for failure in failures[:LISTED]]
    if len(failures) > LISTED:
        lines.append(f"  ... and {len(failures) - LISTED} more")
    return lines


def _cut_off(result: Reachability, grid: Grid) -> tuple[list[str], list[str]]:
    """Namespaces no source reached at all, and sources that reached nothing."""
    reached: dict[str, int] = {}
    reaching: dict[str, int] = {}
    for (source, namespace), (answered, _) in grid.items():
        reached[namespace] = reached.get(namespace, 0) + answered
        reaching[source] = reaching.get(source, 0) + answered
    unreached = [ns for ns in result.namespaces if reached.get(ns, 1) == 0]
    lost = [source for source in result.namespaces if reaching.get(source, 1) == 0]
    return unreached, lost


def reachability_text(result: Reachability, *, compact: bool | None = None) -> str:
    """The matrix (``ok``, ``FAIL``, ``k/n`` answered, ``.`` itself) or, ``compact``,
    a summary; either way the summary line and the failures follow."""
    names = result.namespaces
    if compact is None:
        compact = len(names) > MATRIX_MOST
    lines: list[str] = []
    if result.lab:
        lines.append(f"lab {result.lab}: reachability")
    held = {t.namespace for t in result.targets}
    targets = [ns for ns in names if ns in held]
    grid = result.grid()
    if not compact and result.rtts:
        rows = [(src, *(_cell(grid, src, ns) for ns in targets)) for src in result.sources]
        lines += text_table(("FROM \\ TO", *targets), rows).rstrip("\n").splitlines()
    failures = result.failures()
    lines.append(("OK: " if result.ok else "FAILED: ") + result.summary())
    if not result.rtts:
        lines.append("nothing to probe: no namespace has a global address")
    if failures and compact:  # a namespace cut off is one line, not dozens
        unreached, lost = _cut_off(result, grid)
        if unreached:
            lines.append("no source reached: " + ", ".join(unreached))
        if lost:
            lines.append("reached nothing: " + ", ".join(lost))
        rest = [f for f in failures if f.source not in lost and f.target.namespace not in unreached]
        if rest:
            other = " other" if unreached or lost else ""
            lines.append(f"{len(rest)}{other} pair(s) did not answer:")
            lines += _listed(rest)
    elif failures:
        lines.append(f"{len(failures)} pair(s) did not answer:")
        lines += _listed(failures)
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def _style(colour: str, size: int) -> str:
    return f"background:{colour};width:{size}px;height:{size}px;padding:0"


def reachability_html(result: Reachability) -> str:
    """A heat map (an HTML table), grouped by namespace, with a caption."""
    esc = html.escape
    groups: dict[str, list[str]] = {}
    for target in result.targets:
        groups.setdefault(target.namespace, []).append(target.address)
    per_address = len(result.targets) <= CELLS_MOST
    size = 14 if per_address else 6
    border = "border-left:2px solid #fff"
    head = ["<tr><th></th>"]
    for namespace, addresses in groups.items():
        span = len(addresses) if per_address else 1
        head.append(f'<th colspan="{span}" style="{border}">{esc(namespace)}</th>')
    head.append("</tr>")
    if per_address:
        head.append("<tr><th></th>")
        for addresses in groups.values():
            for k, address in enumerate(addresses):
                edge = f";{border}" if k == 0 else ""
                head.append(
                    f'<th style="font-weight:normal;font-size:70%;writing-mode:vertical-rl'
                    f'{edge}">{esc(address)}</th>'
                )
        head.append("</tr>")
    grid = result.grid()
    body = []
    for source in result.sources:
        cells = [f'<th style="text-align:right">{esc(source)}</th>']
        for namespace, addresses in groups.items():
            if per_address:
                cells += [
                    _address_cell(result, source, namespace, address, size, first=k == 0)
                    for k, address in enumerate(addresses)
                ]
            else:
                cells.append(_namespace_cell(grid, source, namespace, size))
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = esc(("OK: " if result.ok else "FAILED: ") + result.summary())
    legend = (
        f'<span style="color:{GREEN}">&#9632;</span> answered '
        f'<span style="color:{RED}">&#9632;</span> no reply '
        + (
            f'<span style="color:{ORANGE}">&#9632;</span> some addresses '
            if not per_address
            else ""
        )
        + f'<span style="color:{GREY}">&#9632;</span> itself'
    )
    return (
        '<div class="netns-kit-reachability">'
        f'<table style="border-collapse:collapse"><caption>{caption}</caption>'
        f"<thead>{''.join(head)}</thead><tbody>{''.join(body)}</tbody></table>"
        f'<div style="font-size:80%">{legend}</div></div>'
    )


def _td(title: str, colour: str, size: int, *, first: bool = False) -> str:
    edge = ";border-left:2px solid #fff" if first else ""
    return f'<td title="{html.escape(title)}" style="{_style(colour, size)}{edge}"></td>'


def _address_cell(
    result: Reachability, source: str, namespace: str, address: str, size: int, *, first: bool
) -> str:
    if namespace == source:
        return _td("itself", GREY, size, first=first)
    key = (source, address)
    if key not in result.rtts:
        return _td("not probed", "#fff", size, first=first)
    rtt = result.rtts[key]
    said = f"{source} -> {address} ({namespace}): "
    said += "no reply" if rtt is None else f"{rtt:.3f} ms"
    return _td(said, RED if rtt is None else GREEN, size, first=first)


def _namespace_cell(grid: Grid, source: str, namespace: str, size: int) -> str:
    if namespace == source:
        return _td("itself", GREY, size, first=True)
    answered, probed = grid.get((source, namespace), (0, 0))
    if not probed:
        return _td("not probed", "#fff", size, first=True)
    colour = GREEN if answered == probed else RED if answered == 0 else ORANGE
    said = f"{source} -> {namespace}: {answered}/{probed} answered"
    return _td(said, colour, size, first=True)
