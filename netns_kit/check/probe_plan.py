"""Planning a reachability check: who probes what, in which worker, in which round.

Pure: a :class:`~netns_kit.readback.reader.Snapshot` of the lab goes in, probe jobs come out.

* Targets are the global addresses (IPv4 and IPv6) of the lab's namespaces; loopback
  and link-local addresses are left out (every namespace has them; a link-local
  address needs an interface to go with it).  By default every namespace probes
  every address of every *other* namespace.
* Each source namespace becomes one :class:`~netns_kit.executors.probes.ProbeJob`, and each
  job goes whole to one worker (:func:`lanes`): a namespace's probes leave from one
  thread, and the workers get about the same number of packets to send.
* Introductions (see :mod:`netns_kit.executors.probes`) are planned for the pairs that share
  an Ethernet segment, read from the snapshot: the two ends of one veth, or two
  veths whose peers are ports of the same bridge.  Both sides introduce themselves,
  so that neither broadcasts.  A pair on different segments (through a router) gets
  none: the router's neighbours are few and learnt the usual way.
* The kernel's neighbour table is shared by every namespace (DESIGN.md), so an
  all-pairs check needs about one entry per probed pair in each direction.
  :func:`neighbour_entries` counts them, and :func:`rounds` splits the sources so
  that no round needs more than a budget.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections.abc import Collection, Iterable, Mapping, Sequence

from netns_kit.check.result import Target
from netns_kit.errors import ValidationError
from netns_kit.executors.probes import Introduction, ProbeJob
from netns_kit.readback.reader import LinkInfo, NamespaceState, Snapshot

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ProbePair = tuple[str, Target]
Segment = tuple[str, str | None, str]


def targets_of(snapshot: Snapshot, namespaces: Iterable[str]) -> list[Target]:
    """Every global address of ``namespaces``, in the snapshot's order."""
    wanted = set(namespaces)
    found = []
    for state in snapshot:
        if state.name is None or state.name not in wanted:
            continue
        for address in state.addresses:
            if address.scope != "global" or address.family not in ("inet", "inet6"):
                continue
            plain = address.address.split("/", 1)[0]
            if ipaddress.ip_address(plain).is_loopback:
                continue
            found.append(Target(state.name, plain, address.interface))
    return found


def choose(
    value: object,
    field: str,
    namespaces: Sequence[str],
    addresses: Collection[str] | None = None,
    *,
    any_address: bool = False,
) -> list[str]:
    """What a ``sources``/``targets`` argument means: namespace names (or Namespace
    objects), or, for targets, addresses of the lab (``addresses``; ``any_address``
    takes any IP address, before the lab's are known); ``None`` means every namespace.

    Anything else is a :class:`ValidationError`, before anything is sent.
    """
    if value is None:
        return list(namespaces)
    items = [value] if isinstance(value, str) or not isinstance(value, Iterable) else value
    chosen: list[str] = []
    for item in items:
        name = getattr(item, "name", item)
        if isinstance(name, str) and name in namespaces:
            chosen.append(name)
            continue
        plain = _address(name) if addresses is not None or any_address else None
        if plain is not None and (any_address or (addresses and plain in addresses)):
            chosen.append(plain)
            continue
        what = (
            "a namespace or an address" if addresses is not None or any_address else "a namespace"
        )
        raise ValidationError(field, item, f"is not {what} of this lab")
    if not chosen:
        raise ValidationError(field, value, "names nothing to probe")
    return list(dict.fromkeys(chosen))


def _address(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return str(ipaddress.ip_address(value.split("/", 1)[0]))
    except ValueError:
        return None


def pairs(
    sources: Sequence[str],
    targets: Sequence[Target],
    chosen: Sequence[str] | None = None,
    families: Mapping[str, Collection[int]] | None = None,
) -> list[ProbePair]:
    """Every (source, target) to probe: never a namespace's own addresses, and only
    over the IP versions the source has a global address of (``families``, when
    given: a namespace without IPv6 cannot be expected to reach an IPv6 address).

    ``chosen`` narrows the targets to these namespaces and addresses.
    """
    keep = None if chosen is None else set(chosen)
    picked = [t for t in targets if keep is None or t.namespace in keep or t.address in keep]
    return [
        (source, t)
        for source in sources
        for t in picked
        if t.namespace != source and (families is None or t.family in families.get(source, ()))
    ]


def families_of(targets: Iterable[Target]) -> dict[str, set[int]]:
    """The IP versions each namespace has a global address of."""
    out: dict[str, set[int]] = {}
    for target in targets:
        out.setdefault(target.namespace, set()).add(target.family)
    return out


# -- segments and introductions ------------------------------------------------------------
def segments(snapshot: Snapshot) -> dict[tuple[str | None, str], Segment]:
    """``(namespace, interface) -> segment`` for the interfaces whose segment is known."""
    states = {state.name: state for state in snapshot}
    found: dict[tuple[str | None, str], Segment] = {}
    for state in snapshot:
        for link in state.links:
            segment = _segment(state, link, states)
            if segment is not None:
                found[(state.name, link.name)] = segment
            # a port knows its far end even where the far end cannot name it back
            # (a lab namespace's veth whose peer is a port in the root namespace)
            peer = link.peer
            if link.master is None or peer is None or peer.name is None:
                continue
            if peer.namespace != state.name:
                found.setdefault((peer.namespace, peer.name), ("bridge", state.name, link.master))
    return found


def _segment(
    state: NamespaceState, link: LinkInfo, states: Mapping[str | None, NamespaceState]
) -> Segment | None:
    if link.kind == "bridge":
        return ("bridge", state.name, link.name)
    peer = link.peer
    if link.kind != "veth" or peer is None or peer.name is None:
        return None
    where = states.get(peer.namespace) if peer.namespace is not None else None
    if where is not None:
        far = next((x for x in where.links if x.name == peer.name), None)
        if far is not None and far.master is not None:
            return ("bridge", peer.namespace, far.master)
    ends = sorted([(state.name or "", link.name), (peer.namespace or "", peer.name)])
    return ("veth", f"{ends[0][0]}/{ends[0][1]}", f"{ends[1][0]}/{ends[1][1]}")


Networks = dict[tuple[str | None, str], list[tuple[IPNetwork, str]]]


def _networks(snapshot: Snapshot) -> Networks:
    """``(namespace, interface) -> [(network, plain address)]`` of global addresses."""
    out: Networks = {}
    for state in snapshot:
        for address in state.addresses:
            if address.scope == "global" and address.family in ("inet", "inet6"):
                network = ipaddress.ip_interface(address.address).network
                plain = address.address.split("/", 1)[0]
                out.setdefault((state.name, address.interface), []).append((network, plain))
    return out


@functools.lru_cache(maxsize=65536)
def _ip(address: str) -> IPAddress:
    return ipaddress.ip_address(address)


def _local(networks: Networks, namespace: str, interface: str, peer: str) -> str | None:
    """This namespace's address on ``interface`` in the same network as ``peer``."""
    target = _ip(peer)
    for network, plain in networks.get((namespace, interface), ()):
        if network.version == target.version and target in network:
            return plain
    return None


def introductions(
    snapshot: Snapshot, probe_pairs: Iterable[ProbePair]
) -> dict[str, list[Introduction]]:
    """Per namespace, the introductions that spare the planned pairs a broadcast."""
    states = {state.name: state for state in snapshot}
    links = {(s.name, link.name): link for s in snapshot for link in s.links}
    where = segments(snapshot)
    networks = _networks(snapshot)
    out: dict[str, dict[tuple[str, str], Introduction]] = {}
    for source, target in probe_pairs:
        here = states.get(source)
        far = links.get((target.namespace, target.interface or ""))
        segment = where.get((target.namespace, target.interface or ""))
        if here is None or far is None or far.mac is None or segment is None:
            continue
        for link in here.links:
            if link.mac is None or where.get((source, link.name)) != segment:
                continue
            mine = _local(networks, source, link.name, target.address)
            if mine is None:
                continue
            ours = out.setdefault(source, {})
            if (link.name, target.address) not in ours:
                ours[(link.name, target.address)] = Introduction(
                    link.name, link.mac, mine, far.mac, target.address
                )
            theirs = out.setdefault(target.namespace, {})
            if (far.name, mine) not in theirs:
                theirs[(far.name, mine)] = Introduction(
                    far.name, far.mac, target.address, link.mac, mine
                )
            break
    return {ns: list(found.values()) for ns, found in out.items()}


# -- jobs, workers, rounds ---------------------------------------------------------------
def jobs(
    probe_pairs: Sequence[ProbePair], introduced: Mapping[str, Sequence[Introduction]]
) -> list[ProbeJob]:
    """One job per namespace that probes or introduces itself, in first-seen order."""
    addresses: dict[str, list[str]] = {}
    for source, target in probe_pairs:
        addresses.setdefault(source, []).append(target.address)
    for namespace in introduced:
        addresses.setdefault(namespace, [])
    return [ProbeJob(ns, found, introduced.get(ns, ())) for ns, found in addresses.items()]


def lanes(planned: Sequence[ProbeJob], workers: int) -> list[list[ProbeJob]]:
    """The jobs shared out among ``workers``, each job whole to one worker.

    Longest first, each to the worker with the least to send so far; each worker
    keeps its jobs in the order given.
    """
    count = max(1, min(workers, len(planned)))
    load = [0] * count
    given: list[list[int]] = [[] for _ in range(count)]
    order = sorted(
        range(len(planned)), key=lambda i: -(planned[i].probes + len(planned[i].introductions))
    )
    for index in order:
        worker = load.index(min(load))
        given[worker].append(index)
        load[worker] += planned[index].probes + len(planned[index].introductions)
    return [[planned[i] for i in sorted(mine)] for mine in given if mine]


def neighbour_entries(probe_pairs: Iterable[ProbePair]) -> dict[int, int]:
    """Neighbour entries the pairs may need, per IP version: one in each direction
    for every pair of namespaces that exchange probes (an upper bound: a pair that
    goes through a router needs only the router's)."""
    seen: dict[int, set[tuple[str, str]]] = {4: set(), 6: set()}
    for source, target in probe_pairs:
        seen[target.family].add((source, target.namespace))
        seen[target.family].add((target.namespace, source))
    return {family: len(entries) for family, entries in seen.items()}


def rounds(probe_pairs: Sequence[ProbePair], budget: int) -> list[list[ProbePair]]:
    """The pairs split into rounds that each need at most ``budget`` neighbour entries
    of either IP version (:func:`neighbour_entries`).

    A round is a block of sources times target namespaces, shaped so that the check
    flushes least: it flushes the neighbour tables of a round's namespaces before the
    next round, and near-square blocks need far fewer flushes than rows of one source
    each (measured, 100 namespaces paced to the default limits: 100 rows took 21 s).
    """
    if not probe_pairs:
        return []
    sources = list(dict.fromkeys(source for source, _ in probe_pairs))
    targets = list(dict.fromkeys(t.namespace for _, t in probe_pairs))
    if neighbour_entries_max(probe_pairs) <= budget:
        return [list(probe_pairs)]
    side_sources, side_targets = _block(len(sources), len(targets), budget)
    row = {name: i // side_sources for i, name in enumerate(sources)}
    column = {name: i // side_targets for i, name in enumerate(targets)}
    blocks: dict[tuple[int, int], list[ProbePair]] = {}
    for pair in probe_pairs:
        blocks.setdefault((row[pair[0]], column[pair[1].namespace]), []).append(pair)
    return [blocks[key] for key in sorted(blocks)]


#: What a round costs, in flushes: starting it, and each namespace flushed after it.
ROUND_COST, FLUSH_COST = 12.0, 1.0


def _block(sources: int, targets: int, budget: int) -> tuple[int, int]:
    """Sources by target namespaces per round, within ``budget`` (2 entries a pair),
    with the least flushing: rounds times (a round's start + its namespaces)."""
    best: tuple[float, int, int] | None = None
    for across in range(1, sources + 1):
        down = min(targets, max(1, budget // (2 * across)))
        rounds = math.ceil(sources / across) * math.ceil(targets / down)
        cost = rounds * (ROUND_COST + FLUSH_COST * (across + down))
        if best is None or cost < best[0]:
            best = (cost, across, down)
        if 2 * across * down > budget and across > 1:
            break
    assert best is not None
    return best[1], best[2]


def neighbour_entries_max(probe_pairs: Iterable[ProbePair]) -> int:
    """The larger of :func:`neighbour_entries`' two counts."""
    return max(neighbour_entries(probe_pairs).values())


def namespaces_of(probe_pairs: Iterable[ProbePair]) -> list[str]:
    """Every namespace a round touches: its sources and its targets' namespaces."""
    out: dict[str, None] = {}
    for source, target in probe_pairs:
        out[source] = None
        out[target.namespace] = None
    return list(out)
