#!/usr/bin/env python3
"""Benchmark: build and tear down the seed's bridge lab at N namespaces, five ways, and
a tree of switches in namespaces (``netns_kit-tree``).

Each lab is the seed's bridge recipe scaled to N namespaces, inside an isolated host
namespace: the host namespace holds bridge ``br0`` with 10.77.0.1/16; namespace ``i``
holds ``eth0`` with 10.77.x.y/16 (x.y = i + 2), a veth to ``v<i>``, a port of
``br0``; every link and ``lo`` are up.  Methods:

  seed-script            one ``ip`` process per command through plain subprocess,
                         veths created on the host side and then moved (the seed's
                         recipe), teardown one ``ip netns delete`` per namespace
  netns_kit-per-command  Lab builders, unbatched (one process per command)
  netns_kit              Lab.from_topology(...).open(): the declarative fast path
  netns_kit-rootless     the same, rootless=True: in a sandbox of its own (a user
                         namespace), every process through nsenter; its setup
                         includes starting the sandbox, its teardown ends it.  Run
                         as root it takes the same path but keeps root's
                         credentials; run the bench as a normal user with
                         --methods netns_kit-rootless for the unprivileged figure
  netns_kit-progress     netns_kit with a progress hook (the status line of
                         `netns-kit up`, written to a buffer): its cost is the
                         difference from netns_kit
  netns_kit-shaped       the same, every link shaped (rate 100mbit both ways: tbf,
                         a `tc -n NS -batch -` per namespace and one on the host side)
  pyroute2               netlink, no fork per namespace: the process's own thread
                         enters each new namespace (netns.setns(fork=False)) to make
                         it and open a socket there, veth peers made in place
  netns_kit-tree         another lab: N namespaces as a tree of switches (bridges
                         inside namespaces, switch-to-switch links), 4 children per
                         switch, leaves as hosts; see NetnsKitTree
  netns_kit-segments     the scale example (scripts/scale_tree.py): routed segments of
                         at most 2,000 namespaces, each a tree of switches (48 hosts
                         per edge switch), joined by a router; the last host pings
                         the first; for 5,000 and 10,000 namespaces (one switched
                         network that big is refused: docs/scale.md)
  netns_kit-segments-ip  the same, with every namespace's batch run by `ip` (the
                         shell executor's rtnetlink path off): its A/B
  netns_kit-2machines    the bridge lab spread over 2 fake machines (namespaces with
                         their own sshd, reached over ssh; netns_kit.testing.fakemachines): half
                         the namespaces on each, on a bridge on each machine, the two
                         bridges joined by VXLAN; the fake machines start and stop
                         untimed.  They share this machine's CPUs: what it measures
                         is the cost of ssh and of building from a distance
  netns_kit-1machine     the same lab on 1 fake machine, over ssh: the one-machine figure
                         for netns_kit-2machines (netns_kit is the same lab built here)

For the netns_kit methods each run also reports the wall time of each build phase
(namespaces, settings, links, configure, addresses6, filter; ``PhaseClock``), and
the report prints their medians under the method's line, so that a regression names
its phase; teardown is its own column.

Every (method, N, repeat) runs in a child process of its own, so peak RSS
(``ru_maxrss``) is that method's alone; methods are interleaved within each repeat.
A run pings the first namespace from the last after setup (no reply: the run fails),
then tears down; teardown ends when the lab's names are free again (no namespace with
the lab's prefix, host namespace gone), and anything left makes the run fail.

All traffic stays inside the lab's namespaces; the root namespace only ever sees the
lab's uniquely named namespaces come and go.  Ctrl-C tears down what is up.

    sudo .venv/bin/python scripts/bench.py                       # 10,50,200,400 x 5
    sudo .venv/bin/python scripts/bench.py --sizes 200 --repeat 3 --methods seed-script,pyroute2
    sudo .venv/bin/python scripts/bench.py --json bench.json
    sudo .venv/bin/python scripts/bench.py --sizes 100,200 --methods netns_kit-tree
    .venv/bin/python scripts/bench.py --plan-only                # no root needed
    .venv/bin/python scripts/bench.py --methods netns_kit-rootless   # no root needed

Checking a lab (issue 13), in the same run: ``--extras`` adds, to each netns_kit run,

  snapshot      ``lab.snapshot()``, median of ``--extra-repeat``: against the setup time
                (target: at most half of it)
  reachability  ``lab.reachability()``, all pairs, median of ``--extra-repeat``, on a
                machine with its neighbour limits as found (the check raises and puts
                them back itself); at N <= ``--reach-max`` only
  pingall       the baseline: ``ip netns exec SRC ping -c1 -W1 DST`` timed on
                ``--ping-sample`` random pairs, one after another, scaled to all pairs
                (target: reachability at least 50x faster, and under 3 s at N=200)

    sudo .venv/bin/python scripts/bench.py --sizes 200,1000 --methods netns_kit \
        --extras snapshot,reachability,pingall --repeat 3

pyroute2 comes with the ``bench`` extra: ``pip install -e .[bench]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

NETNS_DIR = "/run/netns"
BRIDGE = "br0"
NS_IF = "eth0"
HOST_CIDR = "10.77.0.1/16"
METHODS = (
    "seed-script",
    "netns_kit-per-command",
    "netns_kit",
    "netns_kit-shaped",
    "netns_kit-progress",
    "netns_kit-rootless",
    "pyroute2",
    "netns_kit-tree",
    "netns_kit-segments",
    "netns_kit-segments-ip",
    "netns_kit-2machines",
    "netns_kit-1machine",
)
#: Children per switch in the netns_kit-tree lab.
TREE_FANOUT = 4
#: The rate every link of the shaped lab gets (a rate alone: tbf, which this kernel has).
SHAPED_RATE = "100mbit"
EXTRAS = ("snapshot", "reachability", "pingall")
LIMITS = [f"net.ipv{v}.neigh.default.gc_thresh{i}" for v in (4, 6) for i in (1, 2, 3)]
NOT_AVAILABLE = "not available yet"


def address(i: int) -> str:
    """Namespace i's address in 10.77.0.0/16 (10.77.0.1 is the host side's)."""
    h = i + 2
    if h > 0xFFFE:
        raise ValueError("at most 65533 namespaces fit in 10.77.0.0/16")
    return f"10.77.{h >> 8}.{h & 255}/16"


def host_end(i: int) -> str:
    return f"v{i}"


class NotAvailable(Exception):
    """The method's API is not there (yet): reported, not counted as a failure."""


# -- the root namespace's view: only names with our prefix are ever touched --------------
def lab_namespaces(lab: str) -> list[str]:
    """Namespaces that belong to ``lab`` (``<lab>-...``): what must be gone after it."""
    try:
        entries = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith(f"{lab}-"))


def sweep(prefix: str) -> list[str]:
    """Delete every namespace named ``<prefix>-...`` (ours only); returns what it found."""
    names = lab_namespaces(prefix)
    if names:
        hosts = [n for n in names if n.endswith("-host")]
        lines = [f"netns delete {n}\n" for n in names if n not in hosts]
        lines += [f"netns delete {n}\n" for n in hosts]
        subprocess.run(
            ["ip", "-force", "-batch", "-"], input="".join(lines), capture_output=True, text=True
        )
    return names


def wait_free(lab: str, timeout: float = 10.0) -> list[str]:
    """Wait until no namespace of ``lab`` exists; returns what is still there."""
    deadline = time.monotonic() + timeout
    left = lab_namespaces(lab)
    while left and time.monotonic() < deadline:
        time.sleep(0.001)
        left = lab_namespaces(lab)
    return left


def run(argv: Sequence[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stderr.strip()}")


def ping(namespace: str, target: str, attempts: int = 3) -> bool:
    """One echo from ``namespace`` to ``target`` (a lab address), up to ``attempts``."""
    for _ in range(attempts):
        done = subprocess.run(
            ["ip", "netns", "exec", namespace, "ping", "-n", "-q", "-c", "1", "-W", "2", target],
            capture_output=True,
        )
        if done.returncode == 0:
            return True
    return False


# -- methods ------------------------------------------------------------------------------
class Method:
    """One way to build and tear down the lab ``lab`` with ``n`` namespaces."""

    def __init__(self, lab: str, n: int, state_dir: str) -> None:
        self.lab = lab
        self.n = n
        self.state_dir = state_dir
        self.host = f"{lab}-host"
        self.namespaces = [f"{lab}-{i}" for i in range(n)]

    def prepare(self) -> None:
        """Imports and checks, untimed.  Raise NotAvailable when the API is missing."""

    def setup(self) -> None:
        raise NotImplementedError

    def teardown(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Best effort after a failure; the caller sweeps the namespaces afterwards."""

    def finish(self) -> None:
        """Untimed, after teardown and its check (or after a failure): what prepare made."""

    def ping(self, target: str) -> bool:
        """From the last namespace to ``target``, after setup."""
        return ping(self.namespaces[-1], target)


class SeedScript(Method):
    """The seed's recipe, one process per command, create-then-move."""

    def setup(self) -> None:
        host = ("ip", "-n", self.host)
        run(("ip", "netns", "add", self.host))
        run((*host, "link", "set", "dev", "lo", "up"))
        run((*host, "link", "add", "name", BRIDGE, "type", "bridge"))
        run((*host, "addr", "add", HOST_CIDR, "dev", BRIDGE))
        run((*host, "link", "set", "dev", BRIDGE, "up"))
        for i, ns in enumerate(self.namespaces):
            inner, outer = f"e{i}", host_end(i)
            run(("ip", "netns", "add", ns))
            run((*host, "link", "add", "name", outer, "type", "veth", "peer", "name", inner))
            run((*host, "link", "set", "dev", inner, "netns", ns))
            run((*host, "link", "set", "dev", outer, "master", BRIDGE))
            run((*host, "link", "set", "dev", outer, "up"))
            run(("ip", "-n", ns, "addr", "add", address(i), "dev", inner))
            run(("ip", "-n", ns, "link", "set", "dev", inner, "up"))
            run(("ip", "-n", ns, "link", "set", "dev", "lo", "up"))

    def teardown(self) -> None:
        for ns in self.namespaces:
            run(("ip", "netns", "delete", ns))
        run(("ip", "netns", "delete", self.host))


def _import_lab() -> Any:
    try:
        import netns_kit
    except ImportError as error:
        raise NotAvailable(f"netns_kit does not import: {error}") from None
    lab = getattr(netns_kit, "Lab", None)
    if lab is None:
        raise NotAvailable("netns_kit.Lab is missing")
    return lab


class _NetnsKitMethod(Method):
    """What both netns_kit methods share: the Lab, and closing it."""

    def prepare(self) -> None:
        self.Lab = _import_lab()
        self.lab_obj: Any = None

    def teardown(self) -> None:
        self.lab_obj.close()

    def abort(self) -> None:
        if self.lab_obj is not None:
            with contextlib.suppress(Exception):
                self.lab_obj.close()


class NetnsKitPerCommand(_NetnsKitMethod):
    """The imperative builders, outside ``batch()``: every command its own process."""

    def setup(self) -> None:
        self.lab_obj = self.Lab(self.lab, isolated=True, state_dir=self.state_dir)
        self.lab_obj.open()
        self.lab_obj.bridge(BRIDGE, address=HOST_CIDR)
        for i, name in enumerate(self.namespaces):
            ns = self.lab_obj.namespace(name)
            self.lab_obj.link(ns, BRIDGE, addresses=(address(i), None), names=(NS_IF, host_end(i)))


class NetnsKit(_NetnsKitMethod):
    """The declarative fast path: a Topology, applied when the lab opens."""

    def topology(self) -> Any:
        from netns_kit import spec

        return spec.Topology(
            name=self.lab,
            isolated=True,
            namespaces=tuple(self.namespaces),
            bridges=(spec.BridgeSpec(BRIDGE, HOST_CIDR),),
            links=tuple(
                spec.LinkSpec(ns, BRIDGE, names=(NS_IF, host_end(i)), addresses=(address(i), None))
                for i, ns in enumerate(self.namespaces)
            ),
        )

    def setup(self) -> None:
        self.lab_obj = self.Lab.from_topology(self.topology(), state_dir=self.state_dir)
        self.lab_obj.open()


class NetnsKitProgress(NetnsKit):
    """netns_kit with progress reported as ``netns-kit up`` does on a terminal: the
    status line, written to a buffer (its cost without the terminal's)."""

    def setup(self) -> None:
        from netns_kit.engine.progress import TerminalLine

        line = TerminalLine(io.StringIO())
        self.lab_obj = self.Lab.from_topology(
            self.topology(), state_dir=self.state_dir, progress=line
        )
        self.lab_obj.open()


class NetnsKitTree(_NetnsKitMethod):
    """Not the bridge lab: a tree of N namespaces, switches inside namespaces (issue 11).

    Namespace ``i``'s parent is ``(i - 1) // TREE_FANOUT``, so namespace 0 is the root.
    A namespace with children is a switch: it holds bridge ``b<i>`` with its address
    ``address(i)``, joined to its parent's bridge by a switch-to-switch link (``up`` in
    it, ``d<i>`` in the parent).  A leaf is a host: ``eth0`` with ``address(i)``, on its
    parent's bridge as ``d<i>``.  The whole tree is one switched network, so the last
    namespace (a host) pings the first (the root switch) across every level.  Built
    from a Topology in one batch, like ``netns_kit``.
    """

    def topology(self) -> Any:
        from netns_kit import spec

        n = len(self.namespaces)
        switch = [TREE_FANOUT * i + 1 < n for i in range(n)]
        bridges = [
            spec.BridgeSpec(f"b{i}", address(i), namespace=ns)
            for i, ns in enumerate(self.namespaces)
            if switch[i]
        ]
        links = []
        for i in range(1, n):
            parent = f"b{(i - 1) // TREE_FANOUT}"
            if switch[i]:
                links.append(spec.LinkSpec(f"b{i}", parent, names=("up", f"d{i}")))
            else:
                ns = self.namespaces[i]
                names, addresses = ("eth0", f"d{i}"), (address(i), None)
                links.append(spec.LinkSpec(ns, parent, names=names, addresses=addresses))
        return spec.Topology(
            name=self.lab,
            isolated=True,
            namespaces=tuple(self.namespaces),
            bridges=tuple(bridges),
            links=tuple(links),
        )

    def setup(self) -> None:
        self.lab_obj = self.Lab.from_topology(self.topology(), state_dir=self.state_dir)
        self.lab_obj.open()


class NetnsKitSegments(_NetnsKitMethod):
    """The scale example: scripts/scale_tree.py's routed segments of switch trees."""

    def prepare(self) -> None:
        super().prepare()
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import scale_tree

        self.data = scale_tree.topology(self.n, name=self.lab, prefix=f"{self.lab}-")
        hosts = [ns for ns in self.data["namespaces"] if ns.startswith(f"{self.lab}-h")]
        self.first, self.last = hosts[0], hosts[-1]
        self.namespaces = list(self.data["namespaces"])

    def setup(self) -> None:
        self.lab_obj = self.Lab.from_dict(self.data, state_dir=self.state_dir)
        self.lab_obj.open()

    def ping(self, target: str) -> bool:
        """From the last host to the first (``target`` is the bridge lab's)."""
        first = next(
            link["addresses"][0].split("/")[0]
            for link in self.data["links"]
            if link["a"] == self.first
        )
        return ping(self.last, first)


class NetnsKitSegmentsIp(NetnsKitSegments):
    """The scale example with the shell executor's rtnetlink path off: every
    namespace's batch starts ``ip``, as before that path existed."""

    def prepare(self) -> None:
        super().prepare()
        from netns_kit import ShellExecutor

        ShellExecutor.NETLINK = False


class NetnsKitRootless(NetnsKit):
    """The declarative path in a rootless sandbox; its namespaces exist only there."""

    def setup(self) -> None:
        self.lab_obj = self.Lab.from_topology(
            self.topology(), state_dir=self.state_dir, rootless=True
        )
        self.lab_obj.open()

    def ping(self, target: str) -> bool:
        return any(self.lab_obj[self.namespaces[-1]].ping(target, timeout=2) for _ in range(3))

    def teardown(self) -> None:
        holder = self.lab_obj.sandbox.pid
        self.lab_obj.close()  # ends the sandbox: the kernel frees everything in it
        if os.path.exists(f"/proc/{holder}"):
            raise RuntimeError(f"the sandbox's holder {holder} outlived the lab")


class NetnsKitShaped(NetnsKit):
    """The declarative fast path with every link shaped (a tbf on each end)."""

    def topology(self) -> Any:
        import attrs

        from netns_kit import Shape

        plain = super().topology()
        shape = Shape.of(rate=SHAPED_RATE)
        links = tuple(attrs.evolve(link, shape=shape) for link in plain.links)
        return attrs.evolve(plain, links=links)


class NetnsKitMachines(_NetnsKitMethod):
    """The bridge lab over fake machines (netns_kit.testing.fakemachines): namespace ``i``
    on machine ``i * machines // n``, each on its machine's bridge (``br0`` on the first, with the
    lab's host address; ``br1``... on the others), the bridges joined by VXLAN to the
    first's.  Built in one batch, like ``netns_kit``."""

    MACHINES = 2

    def prepare(self) -> None:
        super().prepare()
        from netns_kit import FakeMachines

        self.fake: Any = None
        self.fake = FakeMachines(self.MACHINES, name=f"{self.lab}fh").start()
        self.executors = {f"h{i}": m.executor() for i, m in enumerate(self.fake)}

    def setup(self) -> None:
        names = list(self.executors)
        underlay = {name: m.address for name, m in zip(names, self.fake, strict=True)}
        self.lab_obj = self.Lab(
            self.lab,
            machines=self.executors,
            underlay=underlay,
            isolated=True,
            state_dir=self.state_dir,
        )
        self.lab_obj.open()
        with self.lab_obj.batch():
            bridges = [
                self.lab_obj.bridge(f"br{k}", HOST_CIDR if k == 0 else None, machine=name)
                for k, name in enumerate(names)
            ]
            for i, ns in enumerate(self.namespaces):
                k = i * len(names) // self.n
                made = self.lab_obj.namespace(ns, machine=names[k])
                ends = (NS_IF, host_end(i))
                self.lab_obj.link(made, bridges[k], addresses=(address(i), None), names=ends)
            for bridge in bridges[1:]:
                self.lab_obj.link(bridges[0], bridge)

    def ping(self, target: str) -> bool:
        return any(self.lab_obj[self.namespaces[-1]].ping(target, timeout=2) for _ in range(3))

    def teardown(self) -> None:
        self.lab_obj.close()
        from netns_kit import list_namespaces

        for name, ex in self.executors.items():
            left = list_namespaces(ex)
            if left:
                raise RuntimeError(f"machine {name} still has {len(left)} namespace(s)")

    def finish(self) -> None:
        if self.fake is not None:
            self.fake.close()


class NetnsKitOneMachine(NetnsKitMachines):
    """The same lab on one fake machine, over ssh."""

    MACHINES = 1


class Pyroute2(Method):
    """pyroute2's fastest path we found: no process at all.

    ``netns.setns(name, O_CREAT | O_EXCL, fork=False)`` makes the namespace from this
    very thread (unshare + bind mount) and enters it; an IPRoute opened there keeps a
    netlink socket in it after ``popns()``.  The veth is made from inside the namespace
    with its peer placed directly in the host namespace.  ``IPRoute(netns=...)`` and
    ``netns.create`` fork a helper process per namespace and are slower.
    """

    def prepare(self) -> None:
        try:
            from pyroute2 import IPRoute, netns
        except ImportError:
            raise NotAvailable("pyroute2 is not installed (pip install -e .[bench])") from None
        self.IPRoute = IPRoute
        self.netns = netns
        self.made: list[str] = []
        self.sockets: list[Any] = []

    def _enter_new(self, name: str) -> Any:
        """Make namespace ``name`` and return an IPRoute whose socket lives in it."""
        netns = self.netns
        netns.pushns()
        try:
            netns.setns(name, flags=os.O_CREAT | os.O_EXCL, fork=False)
            self.made.append(name)
            ipr = self.IPRoute(groups=0)  # no multicast: nothing to read but answers
            self.sockets.append(ipr)
            return ipr
        finally:
            netns.popns()

    def setup(self) -> None:
        host = self._enter_new(self.host)
        host.link("set", index=1, state="up")  # lo is ifindex 1 in every namespace
        host.link("add", ifname=BRIDGE, kind="bridge")
        bridge = host.link_lookup(ifname=BRIDGE)[0]
        address_, prefix = HOST_CIDR.split("/")
        host.addr("add", index=bridge, address=address_, prefixlen=int(prefix))
        host.link("set", index=bridge, state="up")
        for i, name in enumerate(self.namespaces):
            ns = self._enter_new(name)
            ns.link(
                "add",
                ifname=NS_IF,
                kind="veth",
                state="up",
                peer={"ifname": host_end(i), "net_ns_fd": self.host},
            )
            eth0 = ns.link_lookup(ifname=NS_IF)[0]
            cidr, prefix = address(i).split("/")
            ns.addr("add", index=eth0, address=cidr, prefixlen=int(prefix))
            ns.link("set", index=1, state="up")
            host.link("set", ifname=host_end(i), master=bridge, state="up")  # by name
            ns.close()
            self.sockets.remove(ns)

    def _close_sockets(self) -> None:
        for ipr in self.sockets:
            with contextlib.suppress(Exception):
                ipr.close()
        self.sockets.clear()

    def teardown(self) -> None:
        self._close_sockets()
        hosts = [n for n in self.made if n == self.host]
        for name in [n for n in self.made if n != self.host] + hosts:
            self.netns.remove(name)
        self.made.clear()

    def abort(self) -> None:
        self._close_sockets()


METHOD_CLASSES: dict[str, Callable[[str, int, str], Method]] = {
    "seed-script": SeedScript,
    "netns_kit-per-command": NetnsKitPerCommand,
    "netns_kit": NetnsKit,
    "netns_kit-progress": NetnsKitProgress,
    "netns_kit-rootless": NetnsKitRootless,
    "netns_kit-shaped": NetnsKitShaped,
    "pyroute2": Pyroute2,
    "netns_kit-tree": NetnsKitTree,
    "netns_kit-segments": NetnsKitSegments,
    "netns_kit-segments-ip": NetnsKitSegmentsIp,
    "netns_kit-2machines": NetnsKitMachines,
    "netns_kit-1machine": NetnsKitOneMachine,
}


# -- one run, in a child process ------------------------------------------------------------
def cpu_seconds() -> float:
    """CPU time (user + system) of this process and the children it waited for: a
    fairer A/B than wall time on a machine other work loads."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mb() -> float | None:
    """The process's own peak RSS (VmHWM): unlike ru_maxrss, never the parent's."""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def neighbour_limits() -> dict[str, str]:
    """The machine's neighbour-table limits (a check must find and leave them so)."""
    found = {}
    for key in LIMITS:
        with contextlib.suppress(OSError), open("/proc/sys/" + key.replace(".", "/")) as value:
            found[key] = value.read().strip()
    return found


def extras(impl: Method, options: argparse.Namespace, out: dict[str, Any]) -> None:
    """The checking measurements (see the module docstring) on a built netns_kit lab."""
    lab = getattr(impl, "lab_obj", None)
    wanted = set(options.extras)
    if lab is None or not wanted:
        return
    repeat = max(1, options.extra_repeat)
    if "snapshot" in wanted:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            lab.snapshot()
            times.append(time.perf_counter() - started)
        out["snapshot_s"] = statistics.median(times)
    if impl.n > options.reach_max:
        return
    if "reachability" in wanted:
        before = neighbour_limits()
        times, answered, pairs, notes = [], [], 0, []
        for _ in range(repeat):
            started = time.perf_counter()
            result = lab.reachability()
            times.append(time.perf_counter() - started)
            answered.append(result.answered)
            pairs, notes = len(result), list(result.notes)
        out.update(
            reachability_s=statistics.median(times),
            reachability_pairs=pairs,
            reachability_answered=min(answered),
            reachability_method=result.method,
            reachability_notes=notes,
            limits_put_back=neighbour_limits() == before,
        )
        if min(answered) != pairs:
            out["error"] = f"reachability: {min(answered)}/{pairs} pairs answered"
        elif not out["limits_put_back"]:
            out["error"] = "reachability: the neighbour limits were not put back"
    if "pingall" in wanted:
        out.update(pingall(impl.namespaces, options.ping_sample))


def pingall(namespaces: Sequence[str], sample: int) -> dict[str, Any]:
    """A sequential pingall's cost: ``sample`` random pairs, scaled to all pairs."""
    number = {ns: i for i, ns in enumerate(namespaces)}
    pairs = len(namespaces) * (len(namespaces) - 1)
    chosen: set[tuple[str, str]] = set()
    while len(chosen) < min(sample, pairs):
        a, b = random.sample(list(namespaces), 2)
        chosen.add((a, b))
    answered = 0
    started = time.perf_counter()
    for source, target in chosen:
        dst = address(number[target]).split("/")[0]
        argv = ["ip", "netns", "exec", source, "ping", "-c1", "-W1", dst]
        answered += subprocess.run(argv, capture_output=True).returncode == 0
    took = time.perf_counter() - started
    return {
        "pingall_sample": len(chosen),
        "pingall_answered": answered,
        "pingall_sample_s": took,
        "pingall_scaled_s": took / len(chosen) * pairs,
    }


#: The names of a lab build's phases in the report (netns_kit.engine.step.Phase).
PHASE_NAMES = {
    "NAMESPACE": "namespaces",
    "SETTINGS": "settings",
    "CREATE": "links",
    "CONFIGURE": "configure",
    "ADDRESS6": "addresses6",
    "FILTER": "filter",
}


class PhaseClock:
    """Wall time of each phase of a netns_kit build (issue 23), so that the next
    regression names its phase.

    It wraps the runner, in this child process only: ``run_steps`` remembers each
    step's phase and ``_wave`` adds each wave's time to the phase of its commands.
    Waves of one phase run one after another, so the sums are that phase's time.
    Reading the kernel, planning and Python's own work fall in ``setup - sum``.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        try:
            from netns_kit.engine.runner import Runner
        except ImportError:
            return
        clock = self
        run_steps, wave = Runner.run_steps, Runner._wave
        phases: list[list[str]] = []

        def timed_steps(runner: Any, steps: Sequence[Any]) -> Any:
            phases.append([PHASE_NAMES.get(s.phase.name, s.phase.name) for s in steps])
            try:
                return run_steps(runner, steps)
            finally:
                phases.pop()

        def timed_wave(runner: Any, host: Any, lanes: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return wave(runner, host, lanes, *args, **kwargs)
            finally:
                if phases and lanes and lanes[0]:
                    name = phases[-1][lanes[0][0].indexes[0]]
                    took = time.perf_counter() - started
                    clock.seconds[name] = clock.seconds.get(name, 0.0) + took

        Runner.run_steps = timed_steps  # type: ignore[method-assign, assignment]
        Runner._wave = timed_wave  # type: ignore[method-assign, assignment]


def child(
    method: str, n: int, lab: str, state_dir: str, options: argparse.Namespace | None = None
) -> dict[str, Any]:
    """Build, ping, tear down and check once; always leaves nothing with ``lab``'s prefix."""
    out: dict[str, Any] = {"method": method, "n": n, "lab": lab, "status": "failed"}
    impl = METHOD_CLASSES[method](lab, n, state_dir)
    try:
        try:
            impl.prepare()
        except NotAvailable as missing:
            out.update(status=NOT_AVAILABLE, error=str(missing))
            return out
        return _timed(impl, out, lab, method, options)
    finally:
        with contextlib.suppress(Exception):
            impl.finish()
        leftover = sweep(lab)
        if leftover and out["status"] == "ok":
            out.update(status="failed", error=f"left {len(leftover)} namespace(s)")


def _timed(
    impl: Method,
    out: dict[str, Any],
    lab: str,
    method: str,
    options: argparse.Namespace | None,
) -> dict[str, Any]:
    clock = PhaseClock() if method.startswith("netns_kit") else None
    try:
        started, cpu = time.perf_counter(), cpu_seconds()
        impl.setup()
        out["setup_s"] = time.perf_counter() - started
        out["setup_cpu_s"] = round(cpu_seconds() - cpu, 3)
        if clock is not None and clock.seconds:
            out["phases"] = {k: round(v, 3) for k, v in clock.seconds.items()}
        first = address(0).split("/")[0]
        started = time.perf_counter()
        reached = impl.ping(first)
        out["ping_s"] = time.perf_counter() - started
        if options is not None and reached and method == "netns_kit":
            extras(impl, options, out)
        started = time.perf_counter()
        impl.teardown()
        left = wait_free(lab)
        out["teardown_s"] = time.perf_counter() - started
        if out.get("error"):
            pass  # an extra measurement failed
        elif not reached:
            out["error"] = f"ping from {impl.namespaces[-1]} to {first} got no reply"
        elif left:
            out["error"] = f"teardown left {len(left)} namespace(s), e.g. {left[0]}"
        else:
            out["status"] = "ok"
    except BaseException as error:  # report it, clean up, and let Ctrl-C end the child
        out["error"] = f"{type(error).__name__}: {error}".strip()
        impl.abort()
        if not isinstance(error, Exception):
            raise
    finally:
        leftover = sweep(lab)
        if leftover and out["status"] == "ok":
            out.update(status="failed", error=f"left {len(leftover)} namespace(s)")
        out["peak_rss_mb"] = round(peak_rss_mb(), 1)
        out["vm_hwm_mb"] = vm_hwm_mb()
    return out


# -- the parent: schedule, collect, report ----------------------------------------------------
def run_child(
    method: str,
    n: int,
    lab: str,
    state_dir: str,
    timeout: float,
    options: argparse.Namespace | None = None,
) -> dict[str, Any]:
    argv = [sys.executable, os.path.abspath(__file__), "--child", method, str(n), lab, state_dir]
    if options is not None and options.extras:
        argv += ["--extras", ",".join(options.extras), "--extra-repeat", str(options.extra_repeat)]
        argv += ["--reach-max", str(options.reach_max), "--ping-sample", str(options.ping_sample)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # our own child, by its handle
        proc.communicate()
        return {"method": method, "n": n, "lab": lab, "status": "failed", "error": "timed out"}
    except KeyboardInterrupt:
        # The child got the same SIGINT and is tearing its lab down: give it time.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=60)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        raise
    lines = stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = stderr.strip().splitlines()[-3:]
        result = {"method": method, "n": n, "lab": lab, "status": "failed"}
        result["error"] = f"child exited {proc.returncode}: {' | '.join(tail)}"
    return result


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    runs: list[dict[str, Any]], methods: Sequence[str], sizes: Sequence[int]
) -> dict[str, Any]:
    table = []
    cells: dict[tuple[str, int], dict[str, Any]] = {}
    for method in methods:
        for n in sizes:
            mine = [r for r in runs if r["method"] == method and r["n"] == n]
            ok = [r for r in mine if r["status"] == "ok"]
            unavailable = mine and all(r["status"] == NOT_AVAILABLE for r in mine)
            cell = {
                "method": method,
                "n": n,
                "runs": len(mine),
                "ok": len(ok),
                "failed": sum(1 for r in mine if r["status"] == "failed"),
                "status": NOT_AVAILABLE if unavailable else ("ok" if ok else "failed"),
                "setup_s": median([r["setup_s"] for r in ok]),
                "teardown_s": median([r["teardown_s"] for r in ok]),
                "setup_cpu_s": median([r["setup_cpu_s"] for r in ok if "setup_cpu_s" in r]),
                "snapshot_s": median([r["snapshot_s"] for r in ok if "snapshot_s" in r]),
                "reachability_s": median(
                    [r["reachability_s"] for r in ok if "reachability_s" in r]
                ),
                "pingall_scaled_s": median(
                    [r["pingall_scaled_s"] for r in ok if "pingall_scaled_s" in r]
                ),
                "phases": {
                    name: median([r["phases"][name] for r in ok if name in r.get("phases", {})])
                    for name in PHASE_NAMES.values()
                    if any(name in r.get("phases", {}) for r in ok)
                },
                "peak_rss_mb": max((r["peak_rss_mb"] for r in ok), default=None),
                "vm_hwm_mb": max((r.get("vm_hwm_mb") or 0 for r in ok), default=None),
                "errors": sorted({r["error"] for r in mine if r.get("error")})[:3],
            }
            cells[(method, n)] = cell
            table.append(cell)

    def ratio(top: str, bottom: str, n: int) -> float | None:
        a, b = cells.get((top, n), {}).get("setup_s"), cells.get((bottom, n), {}).get("setup_s")
        return a / b if a and b else None

    ratios = {
        f"{top}/{bottom}": {str(n): ratio(top, bottom, n) for n in sizes}
        for top, bottom in (
            ("seed-script", "netns_kit"),
            ("netns_kit", "pyroute2"),
            ("netns_kit-rootless", "netns_kit"),
            ("netns_kit-shaped", "netns_kit"),
            ("netns_kit-2machines", "netns_kit-1machine"),
            ("netns_kit-2machines", "netns_kit"),
        )
    }
    growth: dict[str, Any] = {}
    pair = (200, 400) if {200, 400} <= set(sizes) else tuple(sorted(sizes)[-2:])
    if len(pair) == 2:
        for method in methods:
            a = cells.get((method, pair[0]), {}).get("setup_s")
            b = cells.get((method, pair[1]), {}).get("setup_s")
            growth[method] = b / a if a and b else None
    return {"table": table, "ratios": ratios, "growth": {"sizes": list(pair), **growth}}


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(summary: dict[str, Any], sizes: Sequence[int]) -> None:
    print()
    print(f"{'method':24}{'N':>6}{'setup s':>10}{'teardown s':>12}{'peak RSS MB':>13}  runs")
    for cell in summary["table"]:
        if cell["status"] == NOT_AVAILABLE:
            note = NOT_AVAILABLE
        elif not cell["runs"]:
            note = "not run"
        else:
            note = f"{cell['ok']}/{cell['runs']} ok"
            if cell["failed"]:
                note += f"  ({'; '.join(cell['errors'])})"
        print(
            f"{cell['method']:24}{cell['n']:>6}{fmt(cell['setup_s'], '.3f'):>10}"
            f"{fmt(cell['teardown_s'], '.3f'):>12}{fmt(cell['peak_rss_mb'], '.1f'):>13}  {note}"
        )
        if cell.get("setup_cpu_s") is not None:
            print(f"{'':30}setup CPU (this process and its children): {cell['setup_cpu_s']:.3f} s")
        if cell.get("phases"):
            said = "  ".join(f"{k} {v:.3f}" for k, v in cell["phases"].items() if v is not None)
            print(f"{'':30}phases (s): {said}")
    print(f"\n{'setup ratio (medians)':30}" + "".join(f"{'N=' + str(n):>10}" for n in sizes))
    for name, per_n in summary["ratios"].items():
        print(f"{name:30}" + "".join(f"{fmt(per_n[str(n)], '.2f'):>10}" for n in sizes))
    checked = [c for c in summary["table"] if c.get("snapshot_s") or c.get("reachability_s")]
    if checked:
        print(
            "\nchecking (medians; targets: snapshot <= setup/2, reachability >= 50x pingall"
            " and < 3 s at N=200)"
        )
        print(
            f"{'method':24}{'N':>6}{'setup':>8}{'snapshot':>10}{'snap/setup':>12}"
            f"{'reach':>8}{'pingall':>9}{'speedup':>9}"
        )
        for cell in checked:
            snap, setup = cell.get("snapshot_s"), cell.get("setup_s")
            reach, base = cell.get("reachability_s"), cell.get("pingall_scaled_s")
            print(
                f"{cell['method']:24}{cell['n']:>6}{fmt(setup, '.3f'):>8}{fmt(snap, '.3f'):>10}"
                f"{fmt(snap / setup if snap and setup else None, '.2f'):>12}"
                f"{fmt(reach, '.3f'):>8}{fmt(base, '.1f'):>9}"
                f"{fmt(base / reach if base and reach else None, '.0f'):>9}"
            )
    growth = dict(summary["growth"])
    pair = growth.pop("sizes")
    if len(pair) == 2:
        print(f"\ngrowth setup({pair[1]}) / setup({pair[0]})")
        for method, value in growth.items():
            print(f"  {method:24}{fmt(value, '.2f')}")


def settle(n: int, extra: float = 0.0) -> None:
    """Let the kernel finish freeing the last lab's namespaces so that work is not
    billed to the next run.

    The kernel frees deleted namespaces in the background, one at a time (about
    5 ms each here: most of a minute after a 10,000-namespace teardown), and no
    file counts them (the slab counters keep freed objects cached per CPU).  So wait
    until the machine is idle (bounded), as it was before the run.

    ``extra`` waits longer: when /run/netns is on a disk filesystem such as ext4
    rather than tmpfs, creating a namespace's mount-point file gets slower for ~30 s
    after many were deleted (ext4's inode allocator skips recently deleted inodes),
    which inflates the next run, the more so the bigger N was.
    """
    deadline = time.monotonic() + 5 + 0.01 * n
    while time.monotonic() < deadline and busy_share(1.0) > IDLE_BELOW:
        pass
    time.sleep(0.2 + extra)


#: The machine counts as idle when less than this share of its CPU time is busy.
IDLE_BELOW = 0.15


def busy_share(window: float) -> float:
    """The share of all CPUs' time spent busy over the next ``window`` seconds,
    from /proc/stat (0.0 when it cannot be read)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        time.sleep(window)
        return 0.0
    spent = total1 - total0
    return 0.0 if spent <= 0 else 1.0 - (idle1 - idle0) / spent


def netns_fstype() -> str:
    """The filesystem /run/netns lives on (tmpfs on most machines)."""
    best, fstype = "", "unknown"
    with contextlib.suppress(OSError), open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1]
            covers = NETNS_DIR.startswith(point.rstrip("/") + "/") or point == NETNS_DIR
            if covers and len(point) > len(best):
                best, fstype = point, fields[2]
    return fstype


def bench(args: argparse.Namespace) -> int:
    if os.geteuid() != 0 and args.methods != ["netns_kit-rootless"]:
        print(
            "bench.py builds namespaces: run it as root "
            "(or use --plan-only, or --methods netns_kit-rootless)",
            file=sys.stderr,
        )
        return 2
    if shutil.which("ip") is None or shutil.which("ping") is None:
        print("bench.py needs iproute2 (ip) and ping", file=sys.stderr)
        return 2
    run_id = args.prefix + secrets.token_hex(3)
    state_dir = tempfile.mkdtemp(prefix="netns-kit-bench-")
    runs: list[dict[str, Any]] = []
    interrupted = False
    count = 0
    print(f"run {run_id}: sizes {args.sizes}, {args.repeat} repeat(s), methods {args.methods}")
    fstype = netns_fstype()
    if fstype != "tmpfs" and not args.settle:
        print(
            f"note: {NETNS_DIR} is on {fstype}, not tmpfs: namespace creation slows down"
            " for ~30 s after many deletions; --settle 35 gives steadier growth figures"
        )
    try:
        for rep in range(args.repeat):
            for n in args.sizes:
                shift = rep % len(args.methods)
                for method in args.methods[shift:] + args.methods[:shift]:
                    count += 1
                    lab = f"{run_id}-{count}"
                    budget = 120 + 0.25 * n + (120 if args.extras else 0)
                    result = run_child(method, n, lab, state_dir, timeout=budget, options=args)
                    left = sweep(lab)
                    if left and result["status"] == "ok":
                        result.update(status="failed", error=f"left {len(left)} namespace(s)")
                    runs.append(result)
                    if result["status"] == "ok":
                        line = f"setup {result['setup_s']:.3f} s"
                        line += f", teardown {result['teardown_s']:.3f} s"
                    else:
                        line = f"{result['status']}: {result.get('error', '')}"
                    print(f"  [{rep + 1}/{args.repeat}] {method:24} N={n:<5} {line}", flush=True)
                    if result["status"] != NOT_AVAILABLE:
                        settle(n, args.settle)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: cleaning up", file=sys.stderr)
    finally:
        left = sweep(run_id)
        if left:
            print(f"swept {len(left)} leftover namespace(s) of run {run_id}", file=sys.stderr)
        shutil.rmtree(state_dir, ignore_errors=True)
    summary = summarize(runs, args.methods, args.sizes)
    print_report(summary, args.sizes)
    if args.json:
        document = {
            "run": run_id,
            "sizes": args.sizes,
            "repeat": args.repeat,
            "methods": args.methods,
            "interrupted": interrupted,
            "machine": {
                "kernel": platform.release(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "iproute2": _ip_version(),
                "netns_fstype": fstype,
                "neighbour_limits": neighbour_limits(),
            },
            "settle_s": args.settle,
            "load_average_at_end": os.getloadavg(),
            **summary,
            "runs": runs,
        }
        with open(args.json, "w") as f:
            json.dump(document, f, indent=1)
        print(f"\nwrote {args.json}")
    failed = any(r["status"] == "failed" for r in runs)
    return 130 if interrupted else (1 if failed else 0)


def _ip_version() -> str:
    done = subprocess.run(["ip", "-V"], capture_output=True, text=True)
    return done.stdout.strip()


# -- planning only -----------------------------------------------------------------------------
def plan_only(args: argparse.Namespace) -> int:
    """Time planning a big topology with a RecordingExecutor: no process, no root."""
    try:
        from netns_kit import Lab, RecordingExecutor
    except ImportError as error:
        print(f"--plan-only: {NOT_AVAILABLE} ({error})", file=sys.stderr)
        return 2
    n = args.plan_size
    times: list[float] = []
    commands = runs = 0
    with tempfile.TemporaryDirectory(prefix="netns-kit-bench-") as state_dir:
        for rep in range(args.repeat):
            method = NetnsKit(f"nkbplan{rep}", n, state_dir)
            ex = RecordingExecutor()
            started = time.perf_counter()
            topology = method.topology()
            lab = Lab.from_topology(topology, executor=ex, state_dir=state_dir)
            lab.open()
            times.append(time.perf_counter() - started)
            commands = len(ex.commands)
            runs = len(ex.runs)
            lab.close()
    result = {
        "plan_size": n,
        "repeat": args.repeat,
        "median_s": statistics.median(times),
        "commands": commands,
        "process_runs": runs,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(
        f"planning a {n}-namespace topology (RecordingExecutor, no processes): "
        f"median {result['median_s']:.3f} s over {args.repeat}, {commands} commands "
        f"in {runs} process run(s), peak RSS {result['peak_rss_mb']} MB"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


# -- command line ---------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    sizes = [int(x) for x in text.split(",") if x.strip()]
    if not sizes or any(not 1 <= n <= 65000 for n in sizes):
        raise argparse.ArgumentTypeError("sizes are namespace counts between 1 and 65000")
    return sizes


def _methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"unknown method(s) {unknown}; choose from {METHODS}")
    return methods


def _extras(text: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in EXTRAS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown extra(s) {unknown}; choose from {EXTRAS}")
    return chosen


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build and tear down the seed's bridge lab at N namespaces, five ways.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"methods: {', '.join(METHODS)}",
    )
    parser.add_argument("--sizes", type=_sizes, default=[10, 50, 200, 400])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--methods", type=_methods, default=list(METHODS))
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="extra pause between runs (35 when /run/netns is not on tmpfs, for growth)",
    )
    parser.add_argument(
        "--prefix",
        default="nkb",
        help="the start of every name a run makes (default nkb): give each user of a "
        "shared machine their own",
    )
    parser.add_argument(
        "--plan-only", action="store_true", help="time planning only (RecordingExecutor)"
    )
    parser.add_argument("--plan-size", type=int, default=1000, help="namespaces for --plan-only")
    parser.add_argument(
        "--extras",
        type=_extras,
        default=[],
        help=f"also time, in netns_kit runs: {', '.join(EXTRAS)} (see the docstring)",
    )
    parser.add_argument("--extra-repeat", type=int, default=3, help="runs per extra (median)")
    parser.add_argument(
        "--reach-max", type=int, default=200, help="largest N to check reachability and pingall at"
    )
    parser.add_argument(
        "--ping-sample", type=int, default=400, help="pairs the pingall baseline times"
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("METHOD", "N", "LAB", "STATE_DIR"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        method, n, lab, state_dir = args.child
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        print(json.dumps(child(method, int(n), lab, state_dir, args)), flush=True)
        return 0
    if args.plan_only:
        return plan_only(args)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
