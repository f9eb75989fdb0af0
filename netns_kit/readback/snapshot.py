"""Whole-lab snapshots, fast: one process per namespace, many namespaces at once.

:func:`netns_kit.state.snapshot` reads a lab through here.  Each namespace is read
by one ``ip -d -j -force -batch -`` process (started from a thread inside the
namespace where the executor can, see :mod:`netns_kit.executors`), and the runner
overlaps the namespaces' processes as far as the executor allows.  Facts this
relies on (measured, iproute2 6.1):

* a batch prints one JSON array per line, ``[]`` when there is nothing; a failing
  line prints nothing on stdout, only ``Command failed -:N`` on stderr, so output
  lines are matched to batch lines by counting, skipping the failed ones;
* batch lines take no global options: ``-d`` (for the kind of a link) applies to
  the whole batch, and ``addr show`` then repeats each link's details;
* ``route show`` on a batch line shows IPv4 only; ``route show table all root
  ::/0`` gives the IPv6 routes of every table, and entries of the main table are
  kept (``-d`` names every entry's table).

Veth peers.  ``ip -j link`` gives a peer in another namespace as ``link_index``
plus ``link_netnsid``, an id that means something only inside the namespace that
printed it.  ``ip netns list-id`` maps those ids to names, but it asks the kernel
about every entry of ``/run/netns`` to do so: 8 ms a call with 1,000 namespaces,
8 s for a snapshot of them all.  So peers are matched from what was read instead:
the peer of link ``i`` (whose peer is ``j``) in namespace ``A`` is a link ``j``
whose peer is ``i`` in another namespace, carrying the same alias (a lab tags both
ends), and consistent with every other match (one id in ``A`` names one
namespace).  Only links that stay ambiguous, or whose peer lies outside the
namespaces read, cost a ``netns list-id`` in their namespace.  As before, a peer
in the root namespace (which has no name under ``/run/netns``) stays unnamed when
read from a lab namespace.

Queueing disciplines (:mod:`netns_kit.objects.shaping`) cannot be read by an ``ip`` batch:
``tc -j qdisc show`` is a process of its own.  But ``ip link`` already names each
link's root qdisc, and a veth, a bridge and ``lo`` have ``noqueue``, which is no
qdisc at all: so ``tc`` runs, in a second overlapped wave, only in the namespaces
where some link has another one (a shaped link, a link that is down).  An
unshaped lab costs one process per namespace, a shaped one two where it is shaped.
Another read of that kind belongs beside it in :func:`snapshot`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from netns_kit import validate
from netns_kit.command import Command, ip
from netns_kit.engine.runner import Runner
from netns_kit.errors import command_error
from netns_kit.executors import Executor, batch
from netns_kit.objects.shaping import QdiscInfo, parse_qdiscs, qdiscs_command
from netns_kit.readback.reader import (
    JSON,
    LinkInfo,
    NamespaceState,
    PeerInfo,
    Snapshot,
    links_command,
    name_at,
    nsids_command,
    parse_addresses,
    parse_json,
    parse_link,
    parse_nsids,
    parse_routes,
)
from netns_kit.result import Result

#: The lines of a namespace's read batch, in order, and what each one reads.
READ_LINES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("links", ("link", "show")),
    ("addresses", ("addr", "show")),
    ("routes4", ("route", "show", "table", "all", "root", "0.0.0.0/0")),
    ("routes6", ("route", "show", "table", "all", "root", "::/0")),
)


def read_command(namespace: str | None) -> Command:
    """The one ``ip`` process that reads a namespace's links, addresses and routes."""
    ns = validate.optional_namespace(namespace)
    stdin = "".join(" ".join(words) + "\n" for _, words in READ_LINES)
    command = ip("-d", "-j", "-force", "-batch", "-", namespace=ns, read=True)
    return attrs.evolve(command, stdin=stdin)


def split_output(command: Command, result: Result) -> dict[str, list[JSON]]:
    """The batch's output, one JSON list per read line; a failed line reads as empty.

    A batch that failed as a whole (its namespace is gone, say) raises its error.
    """
    failed = {index for index, _ in batch.failures(result.stderr)}
    if not result and not failed:
        raise command_error(result.argv, result.returncode, result.stdout, result.stderr)
    printed = iter(line for line in result.stdout.splitlines() if line.strip())
    out: dict[str, list[JSON]] = {}
    for index, (key, _) in enumerate(READ_LINES):
        out[key] = [] if index in failed else parse_json(command, next(printed, ""))
    return out


def _main_table(entries: Iterable[JSON]) -> list[JSON]:
    return [e for e in entries if e.get("table", "main") == "main"]


def namespace_state(
    namespace: str | None, command: Command, result: Result
) -> tuple[NamespaceState, list[JSON]]:
    """A namespace's state from its read's result (peers and qdiscs not read yet), and
    its raw link entries."""
    parts = split_output(command, result)
    state = NamespaceState(
        name=namespace,
        links=tuple(parse_link(entry) for entry in parts["links"]),
        addresses=tuple(parse_addresses(parts["addresses"])),
        routes=tuple(
            parse_routes(_main_table(parts["routes4"]), "inet")
            + parse_routes(_main_table(parts["routes6"]), "inet6")
        ),
    )
    return state, parts["links"]


def needs_tc(entries: Iterable[JSON]) -> bool:
    """Whether a link of the namespace has a root qdisc other than ``noqueue``."""
    return any(entry.get("qdisc", "") != "noqueue" for entry in entries)


def snapshot(executor: Executor, namespaces: Iterable[str | None]) -> Snapshot:
    """Read each namespace (``None``: the root namespace) into one comparable value.

    Namespace names are checked before anything is read; a name given twice is read
    once.  Each namespace costs one process, and they overlap.
    """
    names = list(dict.fromkeys(validate.optional_namespace(n) for n in namespaces))
    runner = Runner(executor)
    commands = [read_command(name) for name in names]
    report = runner.run_each(commands)
    if report.error is not None and report.failed is None:
        raise report.error  # not a command's failure: a missing program
    states: dict[str | None, NamespaceState] = {}
    shaped: list[str | None] = []
    for name, command, got in zip(names, commands, report.results, strict=True):
        result = got if got is not None else Result(command.argv, 1, "", "did not run")
        states[name], entries = namespace_state(name, command, result)
        if needs_tc(entries):
            shaped.append(name)
    for name, qdiscs in _qdiscs(runner, shaped).items():
        state = states[name]
        with_qdiscs = tuple(attrs.evolve(x, qdisc=qdiscs.get(x.name)) for x in state.links)
        states[name] = attrs.evolve(state, links=with_qdiscs)
    resolved = Peers(runner, states).resolve()
    return Snapshot(tuple(resolved[name] for name in names))


def _qdiscs(runner: Runner, names: Sequence[str | None]) -> dict[str | None, dict[str, QdiscInfo]]:
    """``tc -j qdisc show`` in each namespace, overlapped: root qdiscs by link name."""
    commands = [qdiscs_command(name) for name in names]
    report = runner.run_each(commands)
    if report.error is not None and report.failed is None:
        raise report.error
    out: dict[str | None, dict[str, QdiscInfo]] = {}
    for name, command, result in zip(names, commands, report.results, strict=True):
        if result is None or not result:
            raise (
                command_error(command.argv, 1, "", "")
                if result is None
                else command_error(result.argv, result.returncode, result.stdout, result.stderr)
            )
        out[name] = parse_qdiscs(parse_json(command, result.stdout))
    return out


class Peers:
    """Names every veth's peer from the links read (see the module docstring)."""

    def __init__(self, runner: Runner, states: Mapping[str | None, NamespaceState]) -> None:
        self.runner = runner
        self.states = states
        # (namespace, position of the link in it) -> (peer namespace, peer name)
        self.found: dict[tuple[str | None, int], tuple[str | None, str | None]] = {}
        # (namespace, netnsid) -> the namespace that id names there
        self.ids: dict[tuple[str | None, int], str | None] = {}
        self.by_index: dict[tuple[int, int], list[tuple[str | None, int]]] = {}
        for ns, state in states.items():
            for position, link in enumerate(state.links):
                peer = link.peer
                if peer is None or peer.netnsid is None or peer.index is None:
                    continue
                if link.index is not None:
                    self.by_index.setdefault((link.index, peer.index), []).append((ns, position))

    def resolve(self) -> dict[str | None, NamespaceState]:
        self._match()
        self._ask_the_kernel()
        return {ns: self._apply(ns, state) for ns, state in self.states.items()}

    # -- matching ----------------------------------------------------------------------
    def _link(self, at: tuple[str | None, int]) -> LinkInfo:
        return self.states[at[0]].links[at[1]]

    def _open(self) -> list[tuple[str | None, int]]:
        return [at for ats in self.by_index.values() for at in ats if at not in self.found]

    def _candidates(self, at: tuple[str | None, int]) -> list[tuple[str | None, int]]:
        link = self._link(at)
        assert link.peer is not None and link.peer.index is not None and link.index is not None
        assert link.peer.netnsid is not None
        known = self.ids.get((at[0], link.peer.netnsid), _UNKNOWN)
        out = []
        for other in self.by_index.get((link.peer.index, link.index), ()):
            if other[0] == at[0] or other in self.found:
                continue
            peer_link = self._link(other)
            if peer_link.alias != link.alias or peer_link.kind != link.kind:
                continue
            if known is not _UNKNOWN and known != other[0]:
                continue
            assert peer_link.peer is not None and peer_link.peer.netnsid is not None
            back = self.ids.get((other[0], peer_link.peer.netnsid), _UNKNOWN)
            if back is not _UNKNOWN and back != at[0]:
                continue
            out.append(other)
        return out

    def _pair(self, a: tuple[str | None, int], b: tuple[str | None, int]) -> None:
        for here, there in ((a, b), (b, a)):
            link = self._link(here)
            assert link.peer is not None and link.peer.netnsid is not None
            self.found[here] = (there[0], self._link(there).name)
            self.ids[(here[0], link.peer.netnsid)] = there[0]

    def _match(self) -> None:
        progress = True
        while progress:
            progress = False
            for at in self._open():
                if at in self.found:
                    continue
                candidates = self._candidates(at)
                if len(candidates) == 1 and self._candidates(candidates[0]) == [at]:
                    self._pair(at, candidates[0])
                    progress = True

    # -- the slow way, for what stays open --------------------------------------------
    def _ask_the_kernel(self) -> None:
        """``netns list-id`` where a link stayed unmatched; read namespaces outside the
        snapshot whose links are named as peers."""
        where = list(dict.fromkeys(at[0] for at in self._open()))
        if not where:
            return
        commands = [nsids_command(ns) for ns in where]
        report = self.runner.run_each(commands)
        maps: dict[str | None, dict[int, str]] = {}
        for ns, command, result in zip(where, commands, report.results, strict=True):
            ok = result is not None and bool(result)
            maps[ns] = parse_nsids(parse_json(command, result.stdout)) if ok and result else {}
        outside = sorted(
            {
                name
                for at in self._open()
                if (name := self._named(maps, at)) is not None and name not in self.states
            }
        )
        links: dict[str, list[JSON]] = {}
        if outside:
            reads = [links_command(name) for name in outside]
            got = self.runner.run_each(reads)
            for name, command, result in zip(outside, reads, got.results, strict=True):
                if result is not None and result:
                    links[name] = parse_json(command, result.stdout)
        for at in self._open():
            name = self._named(maps, at)
            link = self._link(at)
            assert link.peer is not None
            if name is None:
                continue
            if name in self.states:
                peer_name = name_at(
                    ({"ifindex": x.index, "ifname": x.name} for x in self.states[name].links),
                    link.peer.index,
                )
            else:
                peer_name = name_at(links.get(name, ()), link.peer.index)
            self.found[at] = (name, peer_name)

    def _named(
        self, maps: Mapping[str | None, dict[int, str]], at: tuple[str | None, int]
    ) -> str | None:
        link = self._link(at)
        assert link.peer is not None and link.peer.netnsid is not None
        return maps.get(at[0], {}).get(link.peer.netnsid)

    # -- the result ---------------------------------------------------------------------
    def _apply(self, ns: str | None, state: NamespaceState) -> NamespaceState:
        raw = [{"ifindex": x.index, "ifname": x.name} for x in state.links]
        links = []
        for position, link in enumerate(state.links):
            peer = link.peer
            if peer is None:
                links.append(link)
            elif peer.netnsid is None:  # same namespace: ip named it, or we find it
                name = peer.name or name_at(raw, peer.index)
                links.append(attrs.evolve(link, peer=attrs.evolve(peer, name=name, namespace=ns)))
            elif (ns, position) in self.found:
                where, name = self.found[(ns, position)]
                if where is None:  # the root namespace: unnamed, as the kernel has it
                    links.append(link)
                else:
                    peer_info = PeerInfo(name, where, peer.index, peer.netnsid)
                    links.append(attrs.evolve(link, peer=peer_info))
            else:
                links.append(link)
        return attrs.evolve(state, links=tuple(links))


class _Unknown:
    pass


_UNKNOWN: object = _Unknown()
