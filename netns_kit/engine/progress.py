"""Progress of long work: what a build, a teardown or a check is doing, and how far.

A 1,000-namespace build takes seconds; without a word it looks hung.  The runner
knows each command's phase (namespaces, links, settings, addresses, rules) and tells
a :class:`Reporter` as commands finish; the lab tells it while it waits for spanning
tree.  The reporter turns that into :class:`ProgressEvent` values for **one hook**:

- ``Lab(..., progress=callback)``: ``callback(event)`` hears of the work of that lab
  (its build, its teardown);
- ``with netns_kit.engine.progress.reporting(callback):`` hears of everything run in the
  block (``recover()``, a kept lab's check...), whatever lab or runner does it;
- the ``netns_kit`` logger at INFO gets one line per finished phase, with no hook.

``netns-kit`` uses :class:`TerminalLine` (one line on stderr, rewritten in place,
only when stderr is a terminal).  In a notebook a build shows a progress bar once it
has run a second, when ``tqdm`` or ``ipywidgets`` is installed (the ``progress``
extra); neither is ever needed.

The cost is kept to a counter under the runner's lock per command and an event at
most every :data:`INTERVAL` seconds (and at each phase's start and end); with no hook
and the logger quiet there is no reporter at all.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import importlib.util
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO

import attrs

from netns_kit.engine.step import Phase

log = logging.getLogger("netns_kit")

#: What each phase of a build is called in progress reports.
PHASE_LABELS: dict[Phase, str] = {
    Phase.NAMESPACE: "namespaces",
    Phase.SETTINGS: "namespace settings",
    Phase.CREATE: "links",
    Phase.CONFIGURE: "settings",
    Phase.ADDRESS6: "addresses",
    Phase.FILTER: "rules",
}
#: Commands run in their given order (teardown, recovery, an object's own action).
COMMANDS = "commands"
#: Independent reads or probes, overlapped (snapshots, a check's reads).
READS = "reading"
SPANNING_TREE = "waiting for spanning tree"
#: A check: pairs probed so far, then the failed ones asked again.
PROBING = "probing pairs"
RETRYING = "asking the failed pairs again"
#: Teardown from a record: which of its namespaces are still the lab's.
OWNERSHIP = "checking what is the lab's"
#: The least time between two events of one phase (its start and end always go out).
INTERVAL = 0.1
#: A notebook bar appears only for work that has run this long.
NOTEBOOK_AFTER = 1.0


@attrs.frozen
class ProgressEvent:
    """Where long work stands: ``phase`` (``namespaces``, ``links``, ``settings``,
    ``addresses``, ``rules``, ``waiting for spanning tree``, ``commands``,
    ``reading``), ``done`` of ``total`` in it, seconds since the work began, and
    whether this is the end of the work (``finished``: clear a status line)."""

    task: str
    phase: str
    done: int
    total: int
    elapsed: float
    finished: bool = False


Hook = Callable[[ProgressEvent], None]


class Reporter:
    """Counts what finished, per phase, and sends events to a hook and the log.

    ``task`` names the work (``building lab demo``).  Thread-safe: lanes of a wave
    finish on several threads.
    """

    def __init__(
        self,
        hook: Hook | None = None,
        *,
        task: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hook = hook
        self.task = task
        self.clock = clock
        self.started = clock()
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._order: list[str] = []
        self._last = -INTERVAL
        self._shown: str | None = None
        self._lock = threading.Lock()

    # -- what the runner and the lab say --------------------------------------------
    def plan(self, labels: Sequence[str]) -> None:
        """Commands are about to run, each in the phase ``labels`` gives it."""
        totals: dict[str, int] = {}
        for label in labels:
            totals[label] = totals.get(label, 0) + 1
        with self._lock:
            self._totals, self._done, self._order = totals, dict.fromkeys(totals, 0), list(totals)
            self._order.sort(key=_rank)
            first = self._order[0] if self._order else None
        if first is not None:
            self._emit(first, force=True)

    def advance(self, label: str) -> None:
        """One command of phase ``label`` finished."""
        with self._lock:
            done = self._done[label] = self._done.get(label, 0) + 1
            complete = done >= self._totals.get(label, 0)
            current = next(
                (x for x in self._order if self._done[x] < self._totals[x]), self._order[-1]
            )
        if complete:
            self._emit(label, force=True)
            if current != label:
                self._emit(current, force=True)
        elif current != self._shown or self.clock() - self._last >= INTERVAL:
            self._emit(current, force=current != self._shown)

    def waiting(self, phase: str, done: int, total: int) -> None:
        """Something the work waits for (spanning tree): ``done`` of ``total`` ready."""
        with self._lock:
            self._totals[phase], self._done[phase] = total, done
            new = phase not in self._order
            if new:
                self._order.append(phase)
        self._emit(phase, force=new or done >= total or phase != self._shown)

    def finish(self) -> None:
        """The work is over: a last event, ``finished=True``."""
        if self.hook is not None:
            phase = self._shown or ""
            done, total = self._done.get(phase, 0), self._totals.get(phase, 0)
            self.hook(ProgressEvent(self.task, phase, done, total, self.elapsed(), True))

    def elapsed(self) -> float:
        return self.clock() - self.started

    # -- out -------------------------------------------------------------------------
    def _emit(self, phase: str, *, force: bool) -> None:
        now = self.clock()
        if not force and now - self._last < INTERVAL:
            return
        with self._lock:
            done, total = self._done.get(phase, 0), self._totals.get(phase, 0)
        self._last = now
        self._shown = phase
        event = ProgressEvent(self.task, phase, done, total, now - self.started)
        if done == total and total and log.isEnabledFor(logging.INFO):
            log.info("%s", render(event))
        if self.hook is not None:
            self.hook(event)


def _rank(label: str) -> int:
    order = [*PHASE_LABELS.values(), SPANNING_TREE]
    return order.index(label) if label in order else len(order)


def phase_labels(phases: Sequence[Phase]) -> list[str]:
    return [PHASE_LABELS[phase] for phase in phases]


# -- which reporter is in force ------------------------------------------------------

_active: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "netns_kit_progress", default=None
)


def active() -> Reporter | None:
    """The reporter of the enclosing :func:`reporting` block; else a log-only one when
    the ``netns_kit`` logger shows INFO; else ``None`` (nothing is counted)."""
    found = _active.get()
    if found is None and log.isEnabledFor(logging.INFO):
        return Reporter()
    return found


@contextlib.contextmanager
def reporting(hook: Hook | Reporter | None, *, task: str = "") -> Iterator[Reporter | None]:
    """Report the progress of everything run in the block to ``hook``."""
    if hook is None:
        yield None
        return
    reporter = hook if isinstance(hook, Reporter) else Reporter(hook, task=task)
    token = _active.set(reporter)
    try:
        yield reporter
    finally:
        _active.reset(token)
        reporter.finish()


# -- what shows it -------------------------------------------------------------------


def render(event: ProgressEvent) -> str:
    """One status line: ``building lab demo: links 120/480 (1.4 s)``."""
    head = f"{event.task}: " if event.task else ""
    count = f" {event.done}/{event.total}" if event.total else ""
    return f"{head}{event.phase}{count} ({event.elapsed:.1f} s)"


class TerminalLine:
    """A hook that keeps one line of a terminal up to date (``\\r``, then clear to the
    end of the line), and clears it when the work is finished."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, event: ProgressEvent) -> None:
        if event.finished:
            self.clear()
            return
        self.stream.write(f"\r{render(event)}\033[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


def terminal_hook(stream: TextIO, *, quiet: bool = False) -> TerminalLine | None:
    """The command line's hook: a :class:`TerminalLine` when ``stream`` is a terminal
    and not ``quiet``; else ``None`` (nothing extra on a pipe or in a file)."""
    if quiet:
        return None
    isatty = getattr(stream, "isatty", None)
    return TerminalLine(stream) if callable(isatty) and isatty() else None


class NotebookBar:
    """A hook that draws a progress bar in a notebook, once the work has run
    :data:`NOTEBOOK_AFTER` seconds (a quick build shows nothing): ``tqdm`` when it is
    installed, else an ``ipywidgets`` bar."""

    def __init__(self, make: Callable[[str, int], Any]) -> None:
        self.make = make
        self.bar: Any = None
        self.phase = ""

    def __call__(self, event: ProgressEvent) -> None:
        if event.finished:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            return
        if self.bar is None and event.elapsed < NOTEBOOK_AFTER:
            return
        if self.bar is None or event.phase != self.phase:
            if self.bar is not None:
                self.bar.close()
            self.bar, self.phase = self.make(event.phase, event.total), event.phase
        self.bar.update_to(event.done, event.total)


class _Tqdm:
    def __init__(self, tqdm: Any, phase: str, total: int) -> None:
        # tqdm's monitor thread would take Ctrl-C and SIGTERM from the kernel, and
        # Python would then run the handler past a lab's signal shield: no monitor.
        tqdm.monitor_interval = 0
        self.bar = tqdm(total=total, desc=phase, leave=False)

    def update_to(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class _Widget:
    def __init__(self, widgets: Any, display: Callable[[Any], None], phase: str, n: int) -> None:
        self.bar = widgets.IntProgress(value=0, max=max(n, 1), description=phase)
        display(self.bar)

    def update_to(self, done: int, total: int) -> None:
        self.bar.max, self.bar.value = max(total, 1), done

    def close(self) -> None:
        self.bar.close()


def in_notebook() -> bool:
    """Whether this Python runs a Jupyter kernel (IPython over ipykernel)."""
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if callable(get) else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def notebook_hook() -> NotebookBar | None:
    """A :class:`NotebookBar` in a notebook with tqdm or ipywidgets; else ``None``."""
    if not in_notebook():
        return None
    # tqdm.auto draws a widget with ipywidgets, and warns and draws text without it
    widgets_too = importlib.util.find_spec("ipywidgets") is not None
    try:
        tqdm = importlib.import_module("tqdm.auto" if widgets_too else "tqdm").tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        return NotebookBar(lambda phase, total: _Tqdm(tqdm, phase, total))
    try:
        widgets = importlib.import_module("ipywidgets")
        display = importlib.import_module("IPython.display").display
    except ImportError:
        return None
    return NotebookBar(lambda phase, total: _Widget(widgets, display, phase, total))
