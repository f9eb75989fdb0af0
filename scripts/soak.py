#!/usr/bin/env python3
"""Soak netns_kit the way an adversarial user would, and count what breaks.

Tasks of five kinds are shuffled and run by ``--workers`` processes at once, so that
labs are built, killed, raced, fuzzed and interrupted side by side:

rounds   Random *valid* isolated labs: 1..N namespaces, a bridge or two or none, veth
         links to bridges and between namespaces (IPv4 and IPv6 addresses, or none;
         default or explicit names; MTUs), routes (default, via a peer, dev only, on
         the host side), sysctls and masquerade on the host side.  Each is built one
         of three ways: builder calls one by one, the same calls inside
         ``with lab.batch():``, or ``Lab.from_dict``.  The kernel, read with ``ip -j``
         independently of the library, must hold exactly what was asked: the
         namespaces, every interface (kind, up, alias tag, master, MTU, veth peer,
         addresses, no IPv6 link-local address where none is wanted), routes,
         sysctls and the masquerade rule.  Then the lab is closed, and every
         namespace and state file of it must be gone.
kill -9  A child process builds a random lab and is killed with SIGKILL: while its
         root ``ip -batch`` is adding the lab's namespaces (watched in /run/netns),
         while any ``ip -batch`` of it runs, at a random moment, or once the lab is
         built.  ``recover(name, state_dir=...)`` runs at once; nothing of the lab may
         be left, neither right then nor after the child's orphaned processes ended
         (this soak is their subreaper and waits for them), and ``stale_labs()`` must
         be empty.
races    Two processes open a lab of the same name at the same moment: exactly one
         wins, the other gets LabBusyError (or AlreadyExistsError).  And a process
         reopens its lab in a loop while another process calls ``stale_labs()`` in
         a loop: every LabBusyError is spurious, and no ``<name>.lock`` may appear
         while the lab is closed, nor be left at the end.
fuzz     Mutations of scripts/labs/*.toml (structure and text), garbage, deep
         nesting, huge integers, YAML tricks (aliases, tags, timestamps) through
         ``netns-kit validate`` in-process (``cli.main``), some also as a process
         (``python -m netns_kit``): every run must exit 0 or 2, with no traceback,
         within 10 s, with less than 1 MiB of output.
ctrl-c   ``python -m netns_kit --state-dir D up FILE --name sk...`` gets SIGINT at a
         random moment after it took the lab's lock, while an ``ip -batch`` runs, just
         after the lab is kept, or while it prints its table to a stdout that does not
         drain (a paused or slow terminal); sent to the process alone, or to it and
         its children (as a terminal's Ctrl-C does).  It must exit 0 with the lab
         fully up (then ``netns-kit down`` takes it away) or 130 with the lab fully
         gone, never leave half a lab, never print a traceback.  A SIGINT that only
         arrives as Python shuts down after the command finished (killed by the
         signal, nothing on stderr, the lab up) counts as exit 0.

Failures are described on stderr as they happen; stdout gets ONE line of figures.
The exit code is 1 if anything failed, 0 otherwise.  At the end everything whose
name starts with this run's prefix (``sk`` and four hex digits) is removed, with
``recover()`` and ``ip netns delete``, and the line says whether anything was left.

Safety: every lab is isolated (``isolated=True``), so the root namespace, its routes,
ip_forward and iptables are never touched; no packet is sent at all; every name starts
with the run's ``sk....`` prefix; state lives in a temporary directory; only processes
this soak started are signalled, by PID.  Needs root.

    sudo .venv/bin/python scripts/soak.py            # the long run: 2-3 minutes
    sudo .venv/bin/python scripts/soak.py --short    # for CI: about 30 s on 2 vCPUs
    sudo .venv/bin/python scripts/soak.py --workers 2 --rounds 5 --kills 10 --seed 7 -v
    sudo .venv/bin/python scripts/soak.py --rounds 0 --races 0 --reopen-tasks 0 \
        --fuzz 0 --ctrlc 0 --kills 20 --kill-at adding      # one part, one moment

Figures of each part by kind of case (how labs were built, when kill -9 and SIGINT
landed, how ``up`` ended) follow the failures on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import io
import ipaddress
import itertools
import json
import math
import multiprocessing
import os
import queue
import random
import re
import resource
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import traceback
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's netns_kit, not an installed one

import netns_kit  # noqa: E402
from netns_kit import AlreadyExistsError, Lab, LabBusyError, cli, recover, stale_labs  # noqa: E402

SOAK = Path(__file__).resolve()
LABS = REPO / "scripts" / "labs"
WAIT = 60.0  # seconds a child may take to answer; only a bound
MODES = ("imperative", "batch", "from_dict")
KILL_AT = ("adding", "adding", "batch", "random", "random", "built")  # with their weights
CTRLC_AT = ("random", "random", "batch", "kept", "table")
# CPU seconds one `validate` may take: CPU time, not wall time, so that a busy machine
# (other suites, stress) does not turn a slow parse into a "hang" (it did: a 5000-deep
# YAML took over 10 s of wall time at load 11)
CASE_TIMEOUT = 10.0
MAX_OUTPUT = 1 << 20  # bytes of output one `validate` may print

PRESETS: dict[str, dict[str, Any]] = {
    "long": {
        "rounds": 30,
        "kills": 60,
        "races": 20,
        "reopen_tasks": 4,
        "reopens": 300,
        "fuzz": 5000,
        "fuzz_processes": 40,
        "ctrlc": 60,
        "max_namespaces": 12,
        "settle": 0.5,
    },
    "short": {
        "rounds": 3,
        "kills": 16,
        "races": 6,
        "reopen_tasks": 2,
        "reopens": 150,
        "fuzz": 600,
        "fuzz_processes": 8,
        "ctrlc": 16,
        "max_namespaces": 6,
        "settle": 0.3,
    },
}


def say(*words: object) -> None:
    print(*words, flush=True)


def child_env() -> dict[str, str]:
    """The environment of every process we start: this checkout's netns_kit first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def short_trace(error: BaseException, lines: int = 6) -> str:
    text = "".join(traceback.format_exception(error)).rstrip().splitlines()
    return "\n".join(text[-lines:])


# -- the kernel, read with `ip -j`, independently of the library -------------------------
def run(argv: list[str], timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    argv = ["ip", *(["-n", ns] if ns else []), "-j", *args]
    for _ in range(5):  # other suites delete their namespaces meanwhile: ip can trip
        done = run(argv)
        if done.returncode == 0:
            return json.loads(done.stdout) if done.stdout.strip() else []
        time.sleep(0.05)
    raise RuntimeError(f"{shlex.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")


def netns_names() -> list[str]:
    return [entry["name"] for entry in ip_json("netns", "list")]


def lab_namespaces(lab: str) -> list[str]:
    return sorted(n for n in netns_names() if n.startswith(f"{lab}-"))


def lab_leftovers(lab: str, state: Path) -> list[str]:
    """Namespaces named ``<lab>-...`` and any file in the lab's (private) state dir."""
    found = [f"namespace {n}" for n in lab_namespaces(lab)]
    if state.is_dir():
        found += [f"state file {p.name}" for p in sorted(state.iterdir())]
    return found


def children_of(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of the children of ``pid``, every thread's."""
    kids = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        try:
            listed = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for kid in listed:
            try:
                raw = Path(f"/proc/{kid}/cmdline").read_bytes()
            except OSError:
                continue
            kids.append((int(kid), [a.decode(errors="replace") for a in raw.split(b"\0") if a]))
    return kids


def made_namespaces(lab: str) -> list[str]:
    """The lab's namespaces other than its host one, from /run/netns: cheap to poll."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return []
    return [n for n in names if n.startswith(f"{lab}-") and n != f"{lab}-host"]


def batches_running(pid: int) -> list[int]:
    return [
        k
        for k, argv in children_of(pid)
        if argv and Path(argv[0]).name == "ip" and "-batch" in argv
    ]


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def wait_orphans(known: set[int], timeout: float) -> tuple[list[str], list[str]]:
    """Wait for children of ours that we did not start: orphans of a killed child,
    reparented to us (a worker is a subreaper).  Their argv: ended, still running."""
    orphans = {pid: " ".join(argv) for pid, argv in children_of(os.getpid()) if pid not in known}
    pending = set(orphans)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.01)
    ended = [orphans[p] for p in orphans if p not in pending]
    return ended, [orphans[p] for p in pending]


# -- random valid labs ------------------------------------------------------------------
@dataclass
class LinkWant:
    kind: str  # veth or bridge
    master: str | None = None
    mtu: int | None = None
    v4: set[str] = field(default_factory=set)
    v6: set[str] = field(default_factory=set)
    peer: tuple[str, str] | None = None
    link_local: bool = True  # whether an IPv6 link-local address may be there


@dataclass
class NsWant:
    links: dict[str, LinkWant] = field(default_factory=dict)
    routes: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)
    sysctls: dict[str, str] = field(default_factory=dict)
    masquerades: set[tuple[str, str | None]] = field(default_factory=set)


@dataclass
class Plan:
    name: str
    topo: dict[str, Any]
    want: dict[str, NsWant]

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.topo.values() if isinstance(v, list))

    def summary(self) -> str:
        t = self.topo
        parts = [f"{len(t['namespaces'])} ns"]
        for key in ("bridges", "links", "routes", "sysctls", "masquerade"):
            if t.get(key):
                parts.append(f"{len(t[key])} {key}")
        return ", ".join(parts)


def short_name(wanted: str) -> str:
    """The documented rule: a name over 15 bytes is cut to a unique, deterministic one."""
    if len(wanted.encode()) <= 15:
        return wanted
    return f"{wanted[:10]}-{hashlib.blake2b(wanted.encode(), digest_size=2).hexdigest()}"


def make_plan(rng: random.Random, name: str, min_ns: int, max_ns: int) -> Plan:
    """A random lab that the topology rules accept, and what the kernel must then hold."""
    n = rng.randint(min_ns, max_ns)
    stem = "node-with-a-long-name-" if rng.random() < 0.2 else "n"
    spaces = [f"{name}-{stem}{i}" for i in range(n)]
    host = f"{name}-host"
    link_local = rng.random() < 0.1
    want = {ns: NsWant() for ns in (host, *spaces)}
    counter = itertools.count()

    def net4() -> ipaddress.IPv4Network:
        k = next(counter)
        return ipaddress.IPv4Network(f"10.{20 + k // 250}.{k % 250}.0/24")

    def net6() -> ipaddress.IPv6Network:
        return ipaddress.IPv6Network(f"fd00:5c:{next(counter):x}::/64")

    def mtu() -> int | None:
        return rng.choice((1280, 1400, 9000)) if rng.random() < 0.15 else None

    taken: set[tuple[str, str]] = set()
    explicit = itertools.count()
    links: list[dict[str, Any]] = []

    def add_link(
        a: str, b: str, bridge: bool, addresses: tuple[str | None, str | None]
    ) -> tuple[str, str]:
        where_b = host if bridge else b
        given = rng.random() < 0.2
        if not given:
            names = (short_name(f"veth-{a}"), short_name(f"veth-{a}-br" if bridge else f"veth-{b}"))
            if (a, names[0]) in taken or (where_b, names[1]) in taken:
                names = (short_name(f"{a}-{b}"), short_name(f"{b}-{a}"))
            given = (a, names[0]) in taken or (where_b, names[1]) in taken
        if given:
            k = next(explicit)
            names = (f"e{k}a", f"e{k}b")
        taken.update({(a, names[0]), (where_b, names[1])})
        entry: dict[str, Any] = {"a": a, "b": b}
        if addresses[1] is not None:
            entry["addresses"] = [addresses[0] or "", addresses[1]]
        elif addresses[0] is not None:
            entry["addresses"] = [addresses[0]]
        if given:
            entry["names"] = list(names)
        size = mtu()
        if size is not None:
            entry["mtu"] = size
        links.append(entry)
        ll = link_local or any(x and ":" in x for x in addresses)
        ends = ((a, names[0], addresses[0]), (where_b, names[1], addresses[1]))
        for end, (where, ifname, address) in enumerate(ends):
            other = ends[1 - end]
            want[where].links[ifname] = LinkWant(
                "veth",
                master=b if bridge and end == 1 else None,
                mtu=size,
                v4={address} if address and ":" not in address else set(),
                v6={address} if address and ":" in address else set(),
                peer=(other[0], other[1]),
                link_local=ll,
            )
        return names

    bridges: list[dict[str, Any]] = []
    segments: dict[str, list[Any]] = {}  # bridge -> [network, its address, next host]
    for bridge in rng.sample(("br0", "lan0", "v-net-0", "sw1"), rng.choice((0, 0, 1, 1, 1, 2))):
        segment = net4()
        address = f"{segment[254]}/24" if rng.random() < 0.8 else None
        bridges.append({"name": bridge, **({"address": address} if address else {})})
        taken.add((host, bridge))
        want[host].links[bridge] = LinkWant("bridge", v4={address} if address else set())
        segments[bridge] = [segment, address, 1]

    on_bridge = []
    for ns in spaces:
        for i, bridge in enumerate(segments):
            if rng.random() < (0.8 if i == 0 else 0.3):
                network, address, host_id = segments[bridge]
                mine = None
                if rng.random() < 0.85:
                    mine = f"{network[host_id]}/24"
                    segments[bridge][2] += 1
                add_link(ns, bridge, True, (mine, None))
                on_bridge.append((ns, mine, address))
    pairs = []
    for _ in range(rng.randint(0, n) if n >= 2 else 0):
        a, b = rng.sample(spaces, 2)
        link_net: ipaddress.IPv4Network | ipaddress.IPv6Network
        link_net = net6() if rng.random() < 0.15 else net4()
        if link_net.version == 4 and rng.random() < 0.3:
            link_net = ipaddress.IPv4Network(f"{link_net.network_address}/30")
        x, y = f"{link_net[1]}/{link_net.prefixlen}", f"{link_net[2]}/{link_net.prefixlen}"
        which = rng.choices(("both", "a", "b", "none"), weights=(6, 1, 1, 2))[0]
        addresses = (x if which in ("both", "a") else None, y if which in ("both", "b") else None)
        pairs.append((a, b, addresses, add_link(a, b, False, addresses)))

    routes: list[dict[str, Any]] = []
    destinations = itertools.count()

    def add_route(ns: str | None, destination: str, via: str | None, dev: str | None) -> None:
        entry = {"destination": destination}
        if ns is not None:
            entry["namespace"] = ns
        if via is not None:
            entry["via"] = via
        if dev is not None:
            entry["dev"] = dev
        routes.append(entry)
        family = 6 if ":" in (via or destination) else 4
        dst = "default" if destination == "default" else str(ipaddress.ip_network(destination))
        want[ns or host].routes.append((family, dst, via, dev))

    defaulted = set()
    for ns, mine, gateway in on_bridge:
        if mine and gateway and ns not in defaulted and rng.random() < 0.6:
            add_route(ns, "default", str(ipaddress.ip_interface(gateway).ip), None)
            defaulted.add(ns)
        elif mine and gateway and rng.random() < 0.25:
            k = next(destinations)
            add_route(None, f"172.18.{k}.0/24", str(ipaddress.ip_interface(mine).ip), None)
    for a, _, (end_a, end_b), names in pairs:
        if end_a and end_b and rng.random() < 0.35:
            k = next(destinations)
            destination = f"fd99:{k:x}::/64" if ":" in end_a else f"172.16.{k}.0/24"
            add_route(a, destination, str(ipaddress.ip_interface(end_b).ip), None)
        elif rng.random() < 0.15:
            add_route(a, f"172.17.{next(destinations)}.0/24", None, names[0])

    sysctls: list[dict[str, Any]] = []

    def add_sysctl(ns: str | None, key: str, value: int | str) -> None:
        sysctls.append({"key": key, "value": value, **({"namespace": ns} if ns else {})})
        want[ns or host].sysctls[key] = str(value)

    if rng.random() < 0.25:
        add_sysctl(None, "net.ipv4.ip_forward", rng.choice((1, "1")))
    for ns in spaces:
        if rng.random() < 0.15:
            add_sysctl(ns, "net.ipv4.conf.all.rp_filter", rng.choice((0, 2, "2")))

    masquerade: list[dict[str, Any]] = []
    addressed = [b for b, (_, address, _) in segments.items() if address]
    if addressed and rng.random() < 0.35:
        source = rng.choice(addressed)
        others = [b for b in segments if b != source]
        out = rng.choice(others) if others and rng.random() < 0.5 else None
        source_net = str(segments[source][0])
        masquerade.append({"source": source_net, **({"out_interface": out} if out else {})})
        want[host].masquerades.add((source_net, out))
        want[host].sysctls["net.ipv4.ip_forward"] = "1"

    topo: dict[str, Any] = {"name": name, "isolated": True, "namespaces": spaces}
    if link_local:
        topo["ipv6_link_local"] = True
    sections = (bridges, links, routes, sysctls, masquerade)
    for key, items in zip(
        ("bridges", "links", "routes", "sysctls", "masquerade"), sections, strict=True
    ):
        if items:
            topo[key] = items
    return Plan(name, topo, want)


def make_lab(topo: dict[str, Any], mode: str, state: str | Path) -> Lab:
    if mode == "from_dict":
        return Lab.from_dict(topo, state_dir=state)  # built when it opens
    return Lab(
        topo["name"],
        isolated=True,
        state_dir=state,
        ipv6_link_local=topo.get("ipv6_link_local", False),
    )


def build(lab: Lab, topo: dict[str, Any], mode: str, rng: random.Random) -> None:
    """The topology through the builders, one by one or in a batch (from_dict: done)."""
    if mode == "batch":
        with lab.batch():
            call_builders(lab, topo, rng)
    elif mode == "imperative":
        call_builders(lab, topo, rng)


def call_builders(lab: Lab, topo: dict[str, Any], rng: random.Random) -> None:
    places: dict[str, Any] = {}

    def ref(name: str) -> Any:  # the object or its name: both are accepted
        return places[name] if rng.random() < 0.5 else name

    for name in topo["namespaces"]:
        places[name] = lab.namespace(name)
    for bridge in topo.get("bridges", []):
        places[bridge["name"]] = lab.bridge(bridge["name"], address=bridge.get("address"))
    for link in topo.get("links", []):
        given = link.get("addresses", [])
        addresses = tuple((given[i] or None) if i < len(given) else None for i in range(2))
        lab.link(
            ref(link["a"]),
            ref(link["b"]),
            addresses=addresses,
            names=link.get("names"),
            mtu=link.get("mtu"),
        )
    for route in topo.get("routes", []):
        where = route.get("namespace")
        lab.route(
            route["destination"],
            via=route.get("via"),
            dev=route.get("dev"),
            namespace=None if where is None else ref(where),
        )
    for setting in topo.get("sysctls", []):
        where = setting.get("namespace")
        lab.sysctl(setting["key"], setting["value"], None if where is None else ref(where))
    for rule in topo.get("masquerade", []):
        lab.masquerade(rule["source"], rule.get("out_interface"))


# -- does the kernel hold exactly the plan? ---------------------------------------------
def _cidr(entry: dict[str, Any]) -> str:
    return str(ipaddress.ip_interface(f"{entry['local']}/{entry['prefixlen']}"))


def kernel_problems(plan: Plan) -> list[str]:
    tag = f"netns-kit:{plan.name}"
    present = set(lab_namespaces(plan.name))
    wanted = set(plan.want)
    problems = [f"namespace {ns} is missing" for ns in sorted(wanted - present)]
    problems += [f"namespace {ns} was not asked for" for ns in sorted(present - wanted)]
    index: dict[tuple[str, str], tuple[Any, Any]] = {}
    for ns in sorted(wanted & present):
        problems += namespace_problems(ns, plan.want[ns], tag, index)
    for ns in sorted(wanted & present):
        for ifname, link in plan.want[ns].links.items():
            if link.peer is None or (ns, ifname) not in index or link.peer not in index:
                continue
            if index[ns, ifname][1] != index[link.peer][0]:
                problems.append(f"{ns}/{ifname}: its veth peer is not {'/'.join(link.peer)}")
    return problems


def namespace_problems(
    ns: str, want: NsWant, tag: str, index: dict[tuple[str, str], tuple[Any, Any]]
) -> list[str]:
    out = []
    entries = {e["ifname"]: e for e in ip_json("-d", "addr", "show", ns=ns)}
    wanted = set(want.links) | {"lo"}
    out += [f"{ns}: interface {x} is missing" for x in sorted(wanted - set(entries))]
    out += [f"{ns}: interface {x} was not asked for" for x in sorted(set(entries) - wanted)]
    lo = entries.get("lo")
    if lo is not None and ("UP" not in lo.get("flags", []) or lo.get("ifalias") != tag):
        out.append(f"{ns}/lo: flags {lo.get('flags')}, alias {lo.get('ifalias')!r}: not up+tagged")
    for ifname, link in want.links.items():
        e = entries.get(ifname)
        if e is None:
            continue
        at = f"{ns}/{ifname}"
        index[ns, ifname] = (e.get("ifindex"), e.get("link_index"))
        kind = e.get("linkinfo", {}).get("info_kind")
        if kind != link.kind:
            out.append(f"{at}: is a {kind}, not a {link.kind}")
        if "UP" not in e.get("flags", []):
            out.append(f"{at}: is not up (flags {e.get('flags')})")
        if e.get("ifalias") != tag:
            out.append(f"{at}: alias {e.get('ifalias')!r}, not {tag!r}")
        if e.get("master") != link.master:
            out.append(f"{at}: master {e.get('master')!r}, not {link.master!r}")
        if link.mtu is not None and e.get("mtu") != link.mtu:
            out.append(f"{at}: mtu {e.get('mtu')}, not {link.mtu}")
        addrs = e.get("addr_info", [])
        v4 = {_cidr(a) for a in addrs if a.get("family") == "inet"}
        v6 = {_cidr(a) for a in addrs if a.get("family") == "inet6" and a.get("scope") != "link"}
        local6 = [
            _cidr(a) for a in addrs if a.get("family") == "inet6" and a.get("scope") == "link"
        ]
        if v4 != {str(ipaddress.ip_interface(x)) for x in link.v4}:
            out.append(f"{at}: IPv4 {sorted(v4)}, not {sorted(link.v4)}")
        if v6 != {str(ipaddress.ip_interface(x)) for x in link.v6}:
            out.append(f"{at}: IPv6 {sorted(v6)}, not {sorted(link.v6)}")
        if local6 and not link.link_local:
            out.append(f"{at}: has link-local {local6} though the link has no IPv6 address")
    out += route_problems(ns, want)
    if want.sysctls:
        keys = sorted(want.sysctls)
        paths = ["/proc/sys/" + key.replace(".", "/") for key in keys]
        done = run(["ip", "netns", "exec", ns, "cat", *paths])
        values = done.stdout.split()
        if done.returncode != 0 or len(values) != len(keys):
            out.append(f"{ns}: reading {keys} failed: {done.stderr.strip()}")
        for key, value in zip(keys, values, strict=False):
            if value != want.sysctls[key]:
                out.append(f"{ns}: {key} = {value}, not {want.sysctls[key]}")
    if want.masquerades:
        out += masquerade_problems(ns, want, tag)
    return out


def route_problems(ns: str, want: NsWant) -> list[str]:
    got = []
    for family, args in ((4, ("route", "show")), (6, ("-6", "route", "show"))):
        for r in ip_json(*args, ns=ns):
            if r.get("protocol") == "kernel":
                continue
            dst = r.get("dst", "")
            dst = dst if dst == "default" else str(ipaddress.ip_network(dst, strict=False))
            got.append((family, dst, r.get("gateway"), r.get("dev")))
    out = []
    for family, dst, via, dev in want.routes:
        match = next(
            (g for g in got if g[:3] == (family, dst, via) and (dev is None or g[3] == dev)),
            None,
        )
        if match is None:
            out.append(f"{ns}: route {dst} via {via} dev {dev} is missing (has {got})")
        else:
            got.remove(match)
    out += [f"{ns}: route {g[1]} via {g[2]} dev {g[3]} was not asked for" for g in got]
    return out


def masquerade_problems(ns: str, want: NsWant, tag: str) -> list[str]:
    done = run(["ip", "netns", "exec", ns, "iptables-save", "-t", "nat"])
    if done.returncode != 0:
        return [f"{ns}: iptables-save failed: {done.stderr.strip()}"]
    rules = set()
    for line in done.stdout.splitlines():
        if not line.startswith("-A "):
            continue
        words = shlex.split(line)

        def option(flag: str, words: list[str] = words) -> str | None:
            return words[words.index(flag) + 1] if flag in words[:-1] else None

        rules.add((words[1], option("-s"), option("-o"), option("--comment"), option("-j")))
    wanted = {
        ("POSTROUTING", str(ipaddress.ip_network(src)), out, tag, "MASQUERADE")
        for src, out in want.masquerades
    }
    if rules != wanted:
        return [f"{ns}: nat rules {sorted(rules, key=str)}, not {sorted(wanted, key=str)}"]
    return []


# -- child processes ---------------------------------------------------------------------
class Child:
    """A process we started: its stdout lines on a queue, its stderr collected."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.err = ""
        threading.Thread(target=self._read, daemon=True).start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.err = self.proc.stderr.read()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll_line(self) -> str | None:
        try:
            line = self.lines.get_nowait()
        except queue.Empty:
            return None
        if line is None:
            self.lines.put(None)
            return None
        self.seen.append(line)
        return line

    def expect(self, *words: str, timeout: float = WAIT) -> str:
        """The next line that starts with one of ``words``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SoakError(f"{self.name()} said none of {words} in {timeout:.0f} s") from None
            if line is None:
                self.lines.put(None)
                code, err = self.finish()
                raise SoakError(f"{self.name()} ended ({code}) before {words}:\n{err[-2000:]}")
            self.seen.append(line)
            if line.split()[:1] and line.split()[0] in words:
                return line

    def name(self) -> str:
        return f"child {self.pid} ({' '.join(self.argv[1:4])}...)"

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, OSError):
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def finish(self, timeout: float = WAIT) -> tuple[int, str]:
        """Close its stdin and wait; SIGKILL (by PID) only if it does not end in time."""
        with contextlib.suppress(BrokenPipeError, OSError):
            if self.proc.stdin is not None and not self.proc.stdin.closed:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._err_reader.join(timeout=5)
        return self.proc.returncode, self.err

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signum)
            self.proc.wait(timeout=WAIT)


class SoakError(Exception):
    """Something the soak itself could not do (a child that does not answer)."""


def soak_child(*args: str) -> Child:
    return Child([sys.executable, str(SOAK), "--child", *args])


def child_main(argv: list[str]) -> int:
    """``soak.py --child MODE ...``: the processes the tasks start, signal and kill."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, *rest = argv
    if mode == "build":  # build a lab, say BUILT, hold it until stdin closes
        plan_file, how, state = rest
        topo = json.loads(Path(plan_file).read_text())
        say("START", os.getpid())
        lab = make_lab(topo, how, state)
        with lab:
            build(lab, topo, how, random.Random(plan_file))
            say("BUILT")
            sys.stdin.readline()
        say("CLOSED")
    elif mode == "open":  # at GO, open the lab; say who won; close it at the next line
        name, state = rest
        say("READY")
        sys.stdin.readline()
        lab = Lab(name, isolated=True, state_dir=state)
        try:
            lab.open()
            lab.namespace(f"{name}-n0")
            say("OPENED")
        except LabBusyError as error:
            say("BUSY", str(error).replace("\n", " "))
        except AlreadyExistsError as error:
            say("EXISTS", str(error).replace("\n", " "))
        except Exception as error:
            say("ERROR", repr(error).replace("\n", " "))
        sys.stdin.readline()
        lab.close()
        say("CLOSED")
    elif mode == "stale-loop":  # stale_labs() in a loop until stdin says stop
        (state,) = rest
        stop = threading.Event()

        def stop_on_a_line() -> None:
            sys.stdin.readline()
            stop.set()

        threading.Thread(target=stop_on_a_line, daemon=True).start()
        say("READY")
        calls = errors = 0
        first = ""
        while not stop.is_set():
            try:
                stale_labs(state)
                calls += 1
            except Exception as error:
                errors += 1
                first = first or repr(error)
        say("CALLS", json.dumps({"calls": calls, "errors": errors, "first": first}))
    elif mode == "fuzz":
        fuzz_child(*rest)
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    return 0


# -- the tasks ---------------------------------------------------------------------------
@dataclass
class Task:
    kind: str
    number: int
    seed: int
    name: str
    state: str
    scratch: str
    options: dict[str, Any]


@dataclass
class Outcome:
    kind: str
    label: str
    ok: bool = True
    failures: list[str] = field(default_factory=list)
    figures: Counter[str] = field(default_factory=Counter)
    fuzz: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    tags: list[tuple[str, str]] = field(default_factory=list)  # (group, kind): the footer

    def fail(self, text: str) -> None:
        self.ok = False
        self.failures.append(text)


def init_worker() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: a killed child's orphans come here


def run_task(task: Task) -> Outcome:
    outcome = Outcome(task.kind, f"{task.kind} {task.number} {task.name}")
    Path(task.state).mkdir(parents=True, exist_ok=True)
    Path(task.scratch).mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        TASKS[task.kind](task, random.Random(task.seed), outcome)
    except Exception as error:
        outcome.fail(f"the soak could not finish this task: {short_trace(error, 12)}")
    finally:
        if task.kind != "fuzz":
            swept = sweep(task.name, Path(task.state))
            if swept and outcome.ok:
                outcome.fail(f"left after the task: {', '.join(swept)}")
    outcome.seconds = time.monotonic() - start
    return outcome


def sweep(name: str, state: Path) -> list[str]:
    """Remove what a task left: recover() its records, delete ``<name>-*`` namespaces."""
    found = []
    if state.is_dir():
        for record in sorted(state.glob("*.json")):
            with contextlib.suppress(Exception):
                recover(record.stem, state_dir=state)
    for ns in sorted(n for n in netns_names() if n.startswith(f"{name}-")):
        found.append(f"namespace {ns}")
        run(["ip", "netns", "delete", ns])
    if state.is_dir():
        for path in sorted(state.iterdir()):
            found.append(f"state file {path.name}")
            path.unlink()
    return found


def task_round(task: Task, rng: random.Random, outcome: Outcome) -> None:
    mode = rng.choice(MODES)
    plan = make_plan(rng, task.name, 1, task.options["max_namespaces"])
    outcome.label += f" ({mode}: {plan.summary()})"
    outcome.tags.append(("built", mode))
    state = Path(task.state)
    try:
        with make_lab(plan.topo, mode, state) as lab:
            build(lab, plan.topo, mode, rng)
            for problem in kernel_problems(plan):
                outcome.fail(f"built: {problem}")
            if not (state / f"{plan.name}.json").exists():
                outcome.fail("built: the lab has no record in its state dir")
    except Exception as error:
        outcome.fail(f"{short_trace(error)}\n  topology: {json.dumps(plan.topo)}")
    for thing in lab_leftovers(plan.name, state):
        outcome.fail(f"after teardown: {thing} is left")


def task_kill(task: Task, rng: random.Random, outcome: Outcome) -> None:
    when = rng.choice(task.options["kill_at"])
    batched = when in ("adding", "batch")
    mode = rng.choice(("batch", "from_dict")) if batched else rng.choice(MODES)
    top = task.options["max_namespaces"]
    low, high = {"adding": (max(20, 3 * top), max(40, 8 * top)), "batch": (top, 3 * top)}.get(
        when, (1, top)
    )
    plan = make_plan(rng, task.name, low, high)
    spaces = len(plan.topo["namespaces"])
    made = 0
    plan_file = Path(task.scratch) / "plan.json"
    plan_file.write_text(json.dumps(plan.topo))
    state = Path(task.state)
    child = soak_child("build", str(plan_file), mode, str(state))
    child.expect("START")
    built = False
    if when == "built":
        child.expect("BUILT")
        built = True
    elif when == "random":
        speed = 0.05 if mode == "imperative" else 0.006
        time.sleep(rng.uniform(0, 0.05 + speed * plan.size))
    elif when == "adding":  # while its root ip -batch is adding the lab's namespaces
        target = rng.randint(1, max(1, spaces // 2))
        deadline = time.monotonic() + WAIT
        while made < target and time.monotonic() < deadline and not built:
            made = len(made_namespaces(plan.name))
            built = child.poll_line() == "BUILT"
            time.sleep(0.0002)
    else:  # while one of its ip -batch processes runs
        deadline = time.monotonic() + WAIT
        while not batches_running(child.pid) and time.monotonic() < deadline:
            if child.poll_line() == "BUILT":
                built = True
                break
            time.sleep(0.0005)
    in_batch = bool(batches_running(child.pid))
    made = len(made_namespaces(plan.name))
    os.kill(child.pid, signal.SIGKILL)
    child.proc.wait(timeout=WAIT)
    alive = [" ".join(argv) for _, argv in children_of(os.getpid()) if argv]  # not zombies
    while (line := child.poll_line()) is not None:
        built = built or line == "BUILT"
    opened = (state / f"{plan.name}.json").exists()
    phase = (
        "built" if built else "in ip -batch" if in_batch else "building" if opened else "opening"
    )
    if in_batch and 0 < made < spaces:
        phase = "adding namespaces"
    outcome.label += f" ({mode}: {plan.summary()}; killed {phase}, {made} of {spaces} made)"
    outcome.tags.append(("killed", phase))

    try:
        recover(plan.name, state_dir=state)
    except Exception as error:
        outcome.fail(f"recover() failed: {short_trace(error)}")
    first = lab_leftovers(plan.name, state)
    _, running = wait_orphans(set(), timeout=15)
    time.sleep(task.options["settle"])
    second = lab_leftovers(plan.name, state)
    stale = [r.name for r in stale_labs(state)]
    orphans = f" (the killed child's {alive} still ran when it died)" if alive else ""
    if first:
        outcome.fail(f"right after recover(): left {', '.join(first)}{orphans}")
    late = [x for x in second if x not in first]
    if late:
        outcome.fail(f"appeared after recover() returned: {', '.join(late)}{orphans}")
    if running:
        outcome.fail(f"orphans of the killed child still run after 15 s: {running}")
    if stale:
        outcome.fail(f"stale_labs() still lists {stale}")
    child.finish(timeout=5)


def task_race(task: Task, rng: random.Random, outcome: Outcome) -> None:
    state = Path(task.state)
    kids = [soak_child("open", task.name, str(state)) for _ in range(2)]
    try:
        for kid in kids:
            kid.expect("READY")
        for kid in kids:
            kid.send("GO")
        said = [kid.expect("OPENED", "BUSY", "EXISTS", "ERROR") for kid in kids]
        winners = [s for s in said if s.startswith("OPENED")]
        losers = [s for s in said if s.split()[0] in ("BUSY", "EXISTS")]
        if len(winners) == 1 and len(losers) == 1:
            outcome.figures["one winner"] += 1
            outcome.figures[losers[0].split()[0].lower()] += 1
        else:
            outcome.fail(f"two processes opened lab {task.name} at once: they said {said}")
        if winners and not lab_namespaces(task.name):
            outcome.fail("the winner's lab is not there")
        for kid in kids:
            kid.send("DONE")
        for kid in kids:
            kid.expect("CLOSED")
            code, err = kid.finish()
            if code != 0:
                outcome.fail(f"{kid.name()} exited {code}:\n{err[-2000:]}")
    finally:
        for kid in kids:
            kid.kill()
    for thing in lab_leftovers(task.name, state):
        outcome.fail(f"after both closed: {thing} is left")


def task_reopen(task: Task, rng: random.Random, outcome: Outcome) -> None:
    """Reopen a lab in a loop here while other processes call stale_labs() in a loop.

    Nothing else opens this lab, so every LabBusyError is spurious.  And while the lab
    is closed nobody may make its ``<name>.lock``: half the time the loop waits 2 ms
    after closing and looks (a stale_labs() call that locks to test liveness makes
    the file a moment after the lab removed it); the other half it reopens at once,
    which is when such a call, holding that lock, makes the reopen fail.
    """
    state = Path(task.state)
    companions = [  # other labs open in the same state dir, as on a busy machine
        Lab(f"{task.name}-z{i}", isolated=True, state_dir=state)
        for i in range(task.options["companions"])
    ]
    others = [soak_child("stale-loop", str(state)) for _ in range(task.options["stale_loops"])]
    busy = stray = 0
    first = ""
    reports = []
    try:
        for lab in companions:
            lab.open()
        for other in others:
            other.expect("READY")
        lock = state / f"{task.name}.lock"
        for _ in range(task.options["reopens"]):
            if rng.random() < 0.5:
                time.sleep(0.002)
                stray += lock.exists()
            try:
                with Lab(task.name, isolated=True, state_dir=state):
                    pass
            except LabBusyError as error:
                busy += 1
                first = first or str(error)
            except Exception as error:
                outcome.fail(f"reopening failed: {short_trace(error)}")
        for other in others:
            other.send("STOP")
        for other in others:
            reports.append(json.loads(other.expect("CALLS").split(" ", 1)[1]))
            other.finish()
    finally:
        for other in others:
            other.kill()
        for lab in companions:
            lab.close()
    locks = sorted(p.name for p in state.glob("*.lock"))  # the companions are closed too
    stray += len(locks)
    calls = sum(r["calls"] for r in reports)
    outcome.figures["reopens"] += task.options["reopens"]
    outcome.figures["spurious busy"] += busy
    outcome.figures["stray locks"] += stray
    outcome.figures["stale_labs calls"] += calls
    outcome.label += f" ({task.options['reopens']} reopens against {calls} stale_labs() calls)"
    if busy:
        outcome.fail(f"{busy} spurious LabBusyError, the first: {first}")
    if stray:
        outcome.fail(
            f"{stray} times a {task.name}.lock was there while the lab was closed "
            f"({len(locks)} at the end)"
        )
    for report in reports:
        if report["errors"]:
            outcome.fail(f"stale_labs() raised {report['errors']} times: {report['first']}")
    for path in state.glob("*.lock"):  # counted: do not count them again in the sweep
        path.unlink()


def task_ctrlc(task: Task, rng: random.Random, outcome: Outcome) -> None:
    plan = make_plan(rng, task.name, 1, task.options["max_namespaces"])
    state = Path(task.state)
    path = Path(task.scratch) / f"{task.name}.toml"
    path.write_text(to_toml({**plan.topo, "name": f"{task.name}f"}))  # --name renames it
    when = rng.choice(task.options["ctrlc_at"])
    how = rng.choice(("pid", "terminal"))
    argv = [sys.executable, "-m", "netns_kit", "--state-dir", str(state), "up", str(path)]
    stdout = Stalled() if when == "table" else None
    env = {**child_env(), "PYTHONUNBUFFERED": "1"} if stdout else child_env()
    proc = subprocess.Popen(
        [*argv, "--name", task.name],
        stdout=stdout.write_end if stdout else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=task.scratch,
    )
    if stdout:
        stdout.started()
    lock, record = state / f"{task.name}.lock", state / f"{task.name}.json"
    fire_at = None
    phase = "after it ended"
    deadline = time.monotonic() + WAIT
    while proc.poll() is None and time.monotonic() < deadline:
        now = time.monotonic()
        if fire_at is None and when == "random" and lock.exists():
            fire_at = now + rng.uniform(0, 0.05 + 0.005 * plan.size)
        if fire_at is None and when in ("kept", "table") and read_state(record) == "kept":
            # kept: keep() returns, the table, the exit; table: blocked writing it (seen
            # in /proc, x86-64; elsewhere 0.2 s is plenty to get there)
            fire_at = now + (rng.uniform(0, 0.01) if when == "kept" else 0.2)
        fire = (
            (fire_at is not None and now >= fire_at)
            or (when == "batch" and batches_running(proc.pid))
            or (when == "table" and writing_stdout(proc.pid))
        )
        if fire:
            phase = (read_state(record) or "opening") + (
                " in ip -batch" if batches_running(proc.pid) else ""
            )
            if when == "table":
                phase += " printing its table"
            interrupt(proc.pid, how)
            break
        time.sleep(0.0005)
    if stdout:
        stdout.drain()
    try:
        out, err = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=WAIT)
        outcome.fail(f"`netns-kit up` did not end {WAIT:.0f} s after SIGINT")
    if stdout:
        out = stdout.text()
    wait_orphans(set(), timeout=15)
    code = proc.returncode
    outcome.label += f" ({plan.summary()}; SIGINT to {how} at {when}: {phase}; exit {code})"
    outcome.tags.append(("SIGINT at", when))

    present = lab_namespaces(task.name)
    files = sorted(p.name for p in state.iterdir()) if state.is_dir() else []
    kept = read_state(record) == "kept"
    problems = kernel_problems(plan) if kept else [*present, *files]
    if not present and not files:
        result = "gone"
    elif kept and not problems:
        result = "up"
    else:
        result = "half-built"
        outcome.fail(f"half a lab is left: record {read_state(record)}, {problems[:8]}")
    done = f"Tear it down with: netns-kit down {task.name}" in out  # its last line
    if code == -signal.SIGINT and done and not err.strip():
        # SIGINT after the command had finished, as Python shut down (its SIGINT
        # handler is gone by then): what any Python program does; the lab is kept
        outcome.tags.append(("ended", "SIGINT after it was done"))
        code = 0
    outcome.tags.append(("ended", f"exit {code} with the lab {result}"))
    if "Traceback (most recent call last)" in err:
        ignored = re.search(r"Exception ignored in: (.*)", err)
        what = (
            f"a traceback: the KeyboardInterrupt was raised and lost in {ignored[1]}"
            if ignored and "KeyboardInterrupt" in err
            else "a traceback"
        )
        outcome.fail(f"{what}:\n{err.strip()[-3000:]}")
    if code not in (0, 130):
        outcome.fail(f"exit code {code}, not 0 or 130: {err.strip()[-1500:]}")
    elif code == 0 and result != "up":
        outcome.fail(f"exit 0 but the lab is {result}")
    elif code == 130 and result == "up":
        outcome.fail("exit 130 (interrupted) but the lab is up and kept")
    if result == "up":
        said_out, said_err = io.StringIO(), io.StringIO()
        down = ["--state-dir", str(state), "down", task.name]
        if cli.main(down, stdout=said_out, stderr=said_err) != 0:
            outcome.fail(f"`netns-kit down` failed: {said_err.getvalue().strip()}")
        for thing in lab_leftovers(task.name, state):
            outcome.fail(f"after `netns-kit down`: {thing} is left")


class Stalled:
    """A stdout pipe that is full before the child starts: its first write blocks, as
    on a terminal that is paused (Ctrl-S) or slow, until :meth:`drain` reads it."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        fcntl.fcntl(self.write_end, 1031, 4096)  # F_SETPIPE_SZ: one page
        self.padding = fcntl.fcntl(self.write_end, 1032)  # F_GETPIPE_SZ
        os.write(self.write_end, b"\0" * self.padding)
        self.data = b""
        self.reader: threading.Thread | None = None

    def started(self) -> None:
        os.close(self.write_end)  # the child holds it now

    def drain(self) -> None:
        def read() -> None:
            chunks = []
            while chunk := os.read(self.read_end, 65536):
                chunks.append(chunk)
            self.data = b"".join(chunks)[self.padding :]
            os.close(self.read_end)

        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()

    def text(self) -> str:
        if self.reader is not None:
            self.reader.join(timeout=WAIT)
        return self.data.decode(errors="replace")


def writing_stdout(pid: int) -> bool:
    """Whether ``pid`` is blocked in write(2) on its stdout."""
    try:
        call = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return call[:2] == ["1", "0x1"]  # x86-64: write, fd 1


def read_state(record: Path) -> str | None:
    try:
        return str(json.loads(record.read_text()).get("state"))
    except (OSError, ValueError):
        return None


def interrupt(pid: int, how: str) -> None:
    """SIGINT to the process; as a terminal does, also to its children (by PID)."""
    kids = [k for k, _ in children_of(pid)] if how == "terminal" else []
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    for kid in kids:
        if parent_of(kid) == pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(kid, signal.SIGINT)


# -- fuzzing `netns-kit validate` -------------------------------------------------------------
class Raw(str):
    """Text spliced into a file as it is (huge integers, deep nesting, dates)."""


HOSTILE_STRINGS = (
    "",
    " ",
    "a" * 80,
    "-x",
    "all",
    "default",
    "x/y",
    "caf\u00e9",
    "\u0000",
    "\n",
    "#",
    "'",
    '"',
    "\\",
    "%",
    "lo",
    "veth-red",
    "red",
    "v-net-0",
    " red",
    "x" * 16,
    "x" * 65,
    "10.0.0.1",
    "10.0.0.1/24",
    "10.0.0.0/24",
    "10.0.0.255/24",
    "192.168.15.300/24",
    "::1/129",
    "fe80::1%eth0/64",
    "fe80::1%eth0",
    "1e400",
    "0x10",
    "net.ipv4.ip_forward",
    "../../etc/passwd",
    "net..ipv4",
    "\ud800",
    "\u202e",
    "x" * 100_000,
)
TOKENS: tuple[str, ...] = (
    "[",
    "]",
    "[[",
    "]]",
    "=",
    '"',
    "'",
    "{",
    "}",
    ",",
    "\n",
    "#",
    ".",
    "0",
    "-",
    "true",
)
TOKENS += ('"""', "\\", "\x00", " = [", "links", "name", "99999999999999999999999", "inf")


def huge_int(rng: random.Random) -> Raw:
    digits = rng.randint(4301, 6000) if rng.random() < 0.6 else rng.randint(20, 300)
    sign = "-" if rng.random() < 0.2 else ""
    return Raw(sign + str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=digits - 1)))


def deep(rng: random.Random, yaml: bool) -> Raw:
    depth = rng.choice((50, 400, 1200, 5000))
    if rng.random() < 0.5:
        return Raw("[" * depth + "]" * depth)
    opener = "{a: " if yaml else "{a = "
    return Raw(opener * depth + "1" + "}" * depth)


def random_value(rng: random.Random, yaml: bool, data: dict[str, Any]) -> tuple[Any, str]:
    pick = rng.randrange(15)
    if pick == 0:
        digits = huge_int(rng)
        return digits, f"<integer of {len(digits.lstrip('-'))} digits>"
    if pick == 1:
        nested = deep(rng, yaml)
        return (
            nested,
            f"<{'array' if nested[0] == '[' else 'table'} nested {nested.count(nested[0])} deep>",
        )
    if pick == 2:
        number = rng.choice((math.inf, -math.inf, math.nan, 1e308, -0.0, 1.5))
        return number, repr(number)
    if pick == 3:
        return rng.random() < 0.5, "a boolean"
    if pick == 4:
        integer = rng.choice((0, -1, 1, 67, 68, 65535, 65536, 2**63, -(2**63) - 1, 2**64))
        return integer, repr(integer)
    if pick == 5:
        text = rng.choice(HOSTILE_STRINGS)
        return text, repr(text[:40])
    if pick == 6:
        texts = rng.sample(HOSTILE_STRINGS, rng.randint(1, 4))
        return texts, "a list of odd strings"
    if pick == 7:
        empty: list[Any] | dict[str, Any] = rng.choice(([], {}))
        return empty, repr(empty)
    if pick == 8:
        return {rng.choice(HOSTILE_STRINGS[:30]) or "k": 1, "name": "x"}, "an odd table"
    if pick == 9:
        stamps = ("2001-12-14t21:59:43.10-05:00", "2002-12-14") if yaml else ()
        v = Raw(rng.choice(("1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", *stamps)))
        return v, f"a date {v}"
    if pick == 10:
        return [1, "a", [2], {}, True, 1.5], "a mixed list"
    if pick == 11:
        return [{"a": "red", "b": "blue"}] * rng.randint(2, 50), "repeated tables"
    if pick == 12:
        return (None, "null") if yaml else ("", "an empty string")
    if pick == 13:
        names = data.get("namespaces")
        names = names if isinstance(names, list) and names else ["red"]
        return rng.choice(names), "a namespace's name"
    return rng.randint(-1000, 100_000), "a small integer"


def mutate(rng: random.Random, data: dict[str, Any], yaml: bool) -> str:
    """Change one random place of ``data`` in place; say what was done."""
    node: Any = data
    path = ""
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            if isinstance(node, dict):
                node["x"] = 1
            else:
                node.append(1)
            return f"{path or 'top'}: filled"
        key = rng.choice(keys)
        here = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        child = node[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.65:
            node, path = child, here
            continue
        break
    op = rng.choices(("replace", "delete", "add", "duplicate"), weights=(6, 2, 1, 1))[0]
    if op == "replace":
        node[key], said = random_value(rng, yaml, data)
        return f"{here} = {said}"
    if op == "delete":
        del node[key]
        return f"{here} deleted"
    if op == "add":
        value, said = random_value(rng, yaml, data)
        if isinstance(node, dict):
            new = rng.choice(("colour", "Name", "addresses", "isolated", "links", "mtu"))
            node[new] = value
            return f"{path or 'top'}.{new} = {said} added"
        node.insert(rng.randint(0, len(node)), value)
        return f"{path}: {said} inserted"
    if isinstance(node, list):
        node.extend([node[key]] * rng.randint(1, 3))
    return f"{here} duplicated"


def _scalar(value: Any, yaml: bool) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "null" if yaml else '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _int_text(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan" if yaml else "nan"
        if math.isinf(value):
            return ("-" if value < 0 else "") + (".inf" if yaml else "inf")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v, yaml) for v in value) + "]"
    if isinstance(value, dict):
        sep = ": " if yaml else " = "
        return "{" + ", ".join(f"{_key(k)}{sep}{_scalar(v, yaml)}" for k, v in value.items()) + "}"
    return json.dumps(str(value))


def _key(key: Any) -> str:
    text = _int_text(key) if isinstance(key, int) and not isinstance(key, bool) else str(key)
    return text if text and all(c.isalnum() or c in "_-" for c in text) else json.dumps(text)


def _int_text(value: int) -> str:
    """Any integer in digits, huge ones too: the fuzz writes numbers longer than the
    4,300 digits ``str()`` allows, to see that the library refuses them well."""
    try:
        return str(value)
    except ValueError:
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            return str(value)
        finally:
            sys.set_int_max_str_digits(limit)


def to_toml(data: dict[str, Any]) -> str:
    """A dict as TOML: scalars first, then arrays of tables as [[key]] blocks."""
    lines, tables = [], []
    for key, value in data.items():
        is_tables = (
            isinstance(value, list)
            and value
            and all(isinstance(v, dict) and not isinstance(v, Raw) for v in value)
        )
        if is_tables:
            tables.append((key, value))
        else:
            lines.append(f"{_key(key)} = {_scalar(value, False)}")
    for key, items in tables:
        for item in items:
            lines.append(f"\n[[{_key(key)}]]")
            lines += [f"{_key(k)} = {_scalar(v, False)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def to_yaml(data: Any) -> str:
    return _scalar(data, True) + "\n"  # flow style: JSON-like, and YAML


def mutate_text(rng: random.Random, text: bytes) -> tuple[bytes, str]:
    data = bytearray(text)
    said = []
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(data))
        op = rng.randrange(6)
        if op == 0:
            token = rng.choice(TOKENS)
            data[pos:pos] = token.encode()
            said.append(f"inserted {token!r} at {pos}")
        elif op == 1:
            end = min(len(data), pos + rng.randint(1, 40))
            said.append(f"deleted bytes {pos}-{end}")
            del data[pos:end]
        elif op == 2 and data:
            pos = min(pos, len(data) - 1)
            data[pos] = rng.randrange(256)
            said.append(f"byte {pos} = {data[pos]:#x}")
        elif op == 3:
            lines = data.split(b"\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            data = bytearray(b"\n".join(lines))
            said.append(f"line {k + 1} duplicated")
        elif op == 4:
            lines = data.split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
            said.append(f"lines {i + 1} and {j + 1} swapped")
        else:
            del data[pos:]
            said.append(f"cut at {pos}")
    return bytes(data), ", ".join(said)


def alias_bomb(depth: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, depth):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "name: x\n" + "\n".join(lines) + f"\nnamespaces: [*a{depth - 1}]\n"


HOSTILE_YAML = (
    ("an object tag", "name: !!python/object/apply:os.system ['true']\n"),
    ("a binary", "name: !!binary aGVsbG8=\n"),
    ("a set", "name: x\nnamespaces: !!set {a, b}\n"),
    ("a timestamp name", "name: 2001-12-14t21:59:43.10-05:00\n"),
    ("a complex key", "? [a, b]\n: c\nname: x\n"),
    ("a merge key", "base: &b {a: red}\nname: x\nlinks: [{<<: *b, b: blue}]\n"),
    ("an undefined alias", "name: *nothing\n"),
    ("two documents", "name: x\n---\nname: y\n"),
    ("sexagesimal and octal", "name: x\nnamespaces: [1:20, 0o17, 0x1f, yes, no, ~]\n"),
    ("a tab indent", "name: x\nlinks:\n\t- a: red\n"),
    ("duplicate keys", "name: x\nname: y\nnamespaces: [red]\nnamespaces: [blue]\n"),
    ("integer keys", "1: 2\nname: x\nlinks: [{1: 2}]\n"),
    ("a top-level list", "- name: x\n"),
    ("a top-level string", "just a string\n"),
    ("block nesting", "name: x\nnamespaces:\n" + "".join("  " * i + "- \n" for i in range(900))),
)


def hostile_case(rng: random.Random, folder: Path, i: int) -> tuple[Path, str]:
    pick = rng.randrange(13)
    base = folder / f"case{i}"
    if pick == 0:
        depth = rng.randint(3, 6)
        path = base.with_suffix(".yaml")
        path.write_text(alias_bomb(depth))
        return path, f"a YAML alias bomb {depth} levels deep (9^{depth} strings)"
    if pick in (1, 2):
        said, text = rng.choice(HOSTILE_YAML)
        path = base.with_suffix(rng.choice((".yaml", ".yml")))
        path.write_text(text)
        return path, f"YAML with {said}"
    if pick == 3:
        path = base.with_suffix(".toml")
        path.mkdir()
        return path, "a directory named *.toml"
    if pick == 4:
        return base.with_suffix(".toml"), "a missing file"
    if pick == 5:
        path = base.with_suffix(rng.choice((".json", ".txt", "", ".TOML", ".Yaml")))
        path.write_text('name = "x"\n')
        return path, f"a file named {path.name}"
    if pick == 6:
        path = base.with_suffix(".toml")
        path.write_bytes(rng.choice((b"\xef\xbb\xbfname = 'x'\n", b"\x00" * 100, b"\xff\xfe")))
        return path, "a BOM, NULs or UTF-16"
    if pick == 7:
        path = base.with_suffix(".toml")
        depth = rng.choice((500, 3000))
        path.write_text("[" + ".".join(["a"] * depth) + "]\nb = 1\n")
        return path, f"a table header {depth} keys deep"
    if pick == 8:
        path = base.with_suffix(".toml")
        key = rng.choice(("name", "isolated", "mtu", "namespaces"))
        path.write_text(f'name = "x"\nnamespaces = ["a", "b"]\n{key} = {huge_int(rng)}\n')
        return path, f"{key} = <a huge integer>"
    if pick == 9:
        path = base.with_suffix(".yaml")
        path.write_text(
            f"name: x\nnamespaces: [a, b]\nlinks: [{{a: a, b: b, mtu: {huge_int(rng)}}}]\n"
        )
        return path, "YAML: links[0].mtu = <a huge integer>"
    if pick == 10:
        path = base.with_suffix(rng.choice((".toml", ".yaml")))
        nest = deep(rng, path.suffix == ".yaml")
        sep = ": " if path.suffix == ".yaml" else " = "
        path.write_text(f"name{sep}{nest}\n")
        return (
            path,
            f"name = <{'arrays' if nest[0] == '[' else 'tables'} {nest.count(nest[0])} deep>",
        )
    if pick == 11:
        path = base.with_suffix(".toml")
        path.write_text('name = "' + "x" * rng.choice((59, 65, 10_000, 1_000_000)) + '"\n')
        return path, "a very long name"
    path = base.with_suffix(".toml")
    path.write_text(
        'name = "x"\nisolated = true\nnamespaces = ["x-host", "a", "a"]\n'
        '[[links]]\na = "a"\nb = "a"\n'
    )
    return path, "the host namespace's name, a namespace twice, a link to itself"


def fuzz_case(
    rng: random.Random, bases: dict[str, bytes], folder: Path, i: int
) -> tuple[Path, str]:
    kind = rng.choices(("structure", "yaml", "text", "garbage", "hostile"), (40, 15, 20, 10, 15))[0]
    name = rng.choice(sorted(bases))
    if kind in ("structure", "yaml"):
        data = tomllib.loads(bases[name].decode())
        yaml = kind == "yaml"
        changes = [mutate(rng, data, yaml) for _ in range(rng.choice((1, 1, 2, 3)))]
        path = folder / f"case{i}{rng.choice(('.yaml', '.yml')) if yaml else '.toml'}"
        path.write_text(to_yaml(data) if yaml else to_toml(data), errors="surrogatepass")
        return path, f"{name} as {path.suffix[1:]}, changed: {'; '.join(changes)}"
    if kind == "text":
        text, said = mutate_text(rng, bases[name])
        path = folder / f"case{i}.toml"
        path.write_bytes(text)
        return path, f"{name}, {said}"
    if kind == "garbage":
        path = folder / f"case{i}{rng.choice(('.toml', '.yaml'))}"
        how = rng.randrange(3)
        if how == 0:
            path.write_bytes(rng.randbytes(rng.randint(0, 2000)))
            return path, "random bytes"
        if how == 1:
            alphabet = "abcxyz019 =[]{}\"',.#\n-:*&!|>"
            path.write_text("".join(rng.choices(alphabet, k=rng.randint(1, 3000))))
            return path, "random characters"
        path.write_text("".join(rng.choices(TOKENS, k=rng.randint(1, 400))))
        return path, "a soup of tokens"
    return hostile_case(rng, folder, i)


class _CaseTimeout(BaseException):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _CaseTimeout


def _make_case(seed: str, i: int, bases: dict[str, bytes], case_dir: Path) -> tuple[Path, str]:
    """Case ``i``; a mutation too deep for the soak's own (recursive) writer is drawn
    again, twice at most: that is the writer's limit, not the library's."""
    for attempt in range(3):
        rng = random.Random(f"{seed}-{i}" if attempt == 0 else f"{seed}-{i}-{attempt}")
        try:
            return fuzz_case(rng, bases, case_dir, i)
        except RecursionError:
            if attempt == 2:
                raise
    raise AssertionError("not reached")


def fuzz_child(seed: str, start: str, count: str, every: str, folder: str, state: str) -> None:
    """Run fuzz cases in-process, one JSON line each (so a crash names its case)."""
    limit = 4 << 30  # a runaway case gets MemoryError, not the machine's OOM killer
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_alarm)  # ITIMER_PROF: this process's CPU time
    bases = {p.name: p.read_bytes() for p in sorted(LABS.glob("*.toml"))}
    here = Path(folder)
    for i in range(int(start), int(start) + int(count)):
        case_dir = here / f"c{i}"
        case_dir.mkdir()
        try:
            path, desc = _make_case(seed, i, bases, case_dir)
        except Exception as error:  # the soak's own bug: say so, go on
            say(json.dumps({"i": i, "desc": "?", "soak": short_trace(error)}))
            continue
        say(json.dumps({"i": i, "desc": desc, "start": True}))
        result: dict[str, Any] = {"i": i, "desc": desc}
        out, err = io.StringIO(), io.StringIO()
        began = time.monotonic()
        signal.setitimer(signal.ITIMER_PROF, CASE_TIMEOUT)
        try:
            result["rc"] = cli.main(
                ["--state-dir", state, "validate", str(path)], stdout=out, stderr=err
            )
        except _CaseTimeout:
            result["hang"] = True
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            frame = traceback.extract_tb(error.__traceback__)[-1]
            result["exc"] = f"{type(error).__name__}: {str(error)[:300]}"
            result["where"] = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        result["seconds"] = round(time.monotonic() - began, 3)
        result["size"] = len(out.getvalue()) + len(err.getvalue())
        result["tb_printed"] = "Traceback (most recent call last)" in err.getvalue()
        result["said"] = err.getvalue()[:300]
        if int(every) and i % int(every) == 0:
            argv = [sys.executable, "-m", "netns_kit", "--state-dir", state, "validate", str(path)]
            try:
                done = subprocess.run(argv, capture_output=True, timeout=WAIT, env=child_env())
                said = done.stderr.decode(errors="replace")
                result["process"] = {
                    "rc": done.returncode,
                    "traceback": "Traceback (most recent call last)" in said,
                    "tail": said.strip().splitlines()[-1][:300] if said.strip() else "",
                }
            except subprocess.TimeoutExpired:
                result["process"] = {"rc": None, "traceback": False, "tail": "timed out"}
        say(json.dumps(result))
        shutil.rmtree(case_dir, ignore_errors=True)


def task_fuzz(task: Task, rng: random.Random, outcome: Outcome) -> None:
    opts = task.options
    args = (str(task.seed), str(opts["start"]), str(opts["count"]), str(opts["every"]))
    child = soak_child("fuzz", *args, task.scratch, task.state)
    outcome.label += f" (cases {opts['start']}-{opts['start'] + opts['count'] - 1})"
    current = None
    deadline = time.monotonic() + opts["count"] * 2 * CASE_TIMEOUT + WAIT
    while True:
        try:
            line = child.lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            child.kill()
            problem = {"signature": "the fuzz process hung", "case": current}
            outcome.fuzz.append(problem)
            outcome.figures["hangs"] += 1
            break
        if line is None:
            break
        case = json.loads(line)
        if case.get("start"):
            current = case
            continue
        current = None
        if "soak" in case:
            outcome.fuzz.append(
                {
                    "signature": "the soak could not make a case",
                    "case": case["i"],
                    "said": case["soak"],
                }
            )
            continue
        outcome.figures["cases"] += 1
        judge_fuzz(case, outcome)
    code, err = child.finish()
    if code != 0:
        outcome.figures["crashes"] += 1
        outcome.fuzz.append(
            {"signature": f"the fuzz process died ({code})", "case": current, "said": err[-1500:]}
        )
    outcome.ok = not outcome.fuzz


def judge_fuzz(case: dict[str, Any], outcome: Outcome) -> None:
    process = case.get("process") or {}
    if process:
        outcome.figures["as a process"] += 1
    problems = []
    if case.get("exc"):
        problems.append(("tracebacks", f"{case['exc'].split(':')[0]} at {case['where']}"))
    elif case.get("tb_printed"):
        problems.append(("tracebacks", "a traceback printed to stderr"))
    if process.get("traceback"):
        problems.append(("tracebacks", f"as a process: {process['tail'][:80]}"))
    if case.get("hang"):
        problems.append(("hangs", f"validate took over {CASE_TIMEOUT:.0f} s of CPU"))
    if "rc" in case and case["rc"] not in (0, 2):
        problems.append(("bad exit codes", f"exit code {case['rc']}"))
    if process and not process.get("traceback") and process.get("rc") not in (0, 2):
        problems.append(("bad exit codes", f"as a process: exit code {process.get('rc')}"))
    if case.get("size", 0) > MAX_OUTPUT:
        problems.append(("oversized outputs", "over 1 MiB of output"))
    for counter in {counter for counter, _ in problems}:
        outcome.figures[counter] += 1
    for counter, signature in problems:
        outcome.fuzz.append(
            {
                "counter": counter,
                "signature": signature,
                "case": case["i"],
                "desc": case["desc"],
                "said": case.get("exc") or process.get("tail") or case.get("said", ""),
                "size": case.get("size", 0),
                "seconds": case.get("seconds"),
            }
        )


TASKS: dict[str, Callable[[Task, random.Random, Outcome], None]] = {
    "round": task_round,
    "kill": task_kill,
    "race": task_race,
    "reopen": task_reopen,
    "fuzz": task_fuzz,
    "ctrlc": task_ctrlc,
}


# -- the run -----------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Without --short the run is the long one; any flag given overrides the preset.",
    )
    add = parser.add_argument
    add("--short", action="store_true", help="the CI preset: finishes well under a minute")
    add("--workers", type=int, default=4, help="parallel worker processes (4)")
    add("--rounds", type=int, help="random valid labs per worker (30; short 3)")
    add("--kills", type=int, help="kill -9 of a child building a lab (60; short 16)")
    add("--races", type=int, help="two processes opening one lab name at once (20; short 6)")
    add("--reopen-tasks", type=int, help="reopen-vs-stale_labs() loops (4; short 2)")
    add("--reopens", type=int, help="reopens per loop (300; short 150)")
    add("--stale-loops", type=int, default=1, help="processes calling stale_labs() per loop (1)")
    add("--companions", type=int, default=0, help="other labs open during those loops (0)")
    add("--fuzz", type=int, help="fuzzed topology files (5000; short 600)")
    add("--fuzz-processes", type=int, help="of those, also run as a process (40; short 8)")
    add("--ctrlc", type=int, help="Ctrl-C into `netns-kit up` (60; short 16)")
    add(
        "--kill-at",
        choices=("any", *sorted(set(KILL_AT))),
        default="any",
        help="when kill -9 lands: while the root ip -batch adds namespaces, in any ip -batch, "
        "at a random moment, once built (any: all of them)",
    )
    add(
        "--ctrlc-at",
        choices=("any", *sorted(set(CTRLC_AT))),
        default="any",
        help="when SIGINT lands: at a random moment, in an ip -batch, once the lab is kept, "
        "while `up` prints its table to a stalled terminal",
    )
    add("--max-namespaces", type=int, help="namespaces in a random lab, at most (12; short 6)")
    add("--settle", type=float, help="seconds to wait before checking again after kill -9")
    add("--seed", type=int, help="seed for the random labs and the fuzz cases")
    add("--tmp-dir", help="where state and scratch go (default: a new temporary directory)")
    add("--save-fuzz", metavar="DIR", help="copy one file per fuzz failure kind here")
    add("-v", "--verbose", action="store_true", help="describe every task on stderr")
    args = parser.parse_args(argv)
    for key, value in PRESETS["short" if args.short else "long"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def plan_tasks(args: argparse.Namespace, run_id: str, seed: int, base: Path) -> list[Task]:
    rng = random.Random(seed)
    tasks: list[Task] = []
    common = {
        "max_namespaces": args.max_namespaces,
        "settle": args.settle,
        "kill_at": KILL_AT if args.kill_at == "any" else (args.kill_at,),
        "ctrlc_at": CTRLC_AT if args.ctrlc_at == "any" else (args.ctrlc_at,),
    }

    def add(kind: str, letter: str, count: int, **options: Any) -> None:
        for number in range(count):
            name = f"{run_id}{letter}{number:03d}"
            tasks.append(
                Task(
                    kind,
                    number,
                    rng.randrange(2**32),
                    name,
                    str(base / "state" / name),
                    str(base / "scratch" / name),
                    {**common, **options},
                )
            )

    add("round", "r", args.workers * args.rounds)
    add("kill", "k", args.kills)
    add("race", "x", args.races)
    add(
        "reopen",
        "o",
        args.reopen_tasks,
        reopens=args.reopens,
        companions=args.companions,
        stale_loops=args.stale_loops,
    )
    add("ctrlc", "c", args.ctrlc)
    chunks = min(args.workers, max(1, math.ceil(args.fuzz / 100))) if args.fuzz else 0
    every = max(1, args.fuzz // args.fuzz_processes) if args.fuzz_processes else 0
    for chunk in range(chunks):
        start = args.fuzz * chunk // chunks
        count = args.fuzz * (chunk + 1) // chunks - start
        name = f"{run_id}f{chunk:03d}"
        options = {**common, "start": start, "count": count, "every": every}
        where = (str(base / "state" / name), str(base / "scratch" / name))
        tasks.append(Task("fuzz", chunk, seed, name, *where, options))  # the run's seed
    rng.shuffle(tasks)
    # long tasks first, so that no worker starts one when the others are done
    tasks.sort(key=lambda t: t.kind not in ("fuzz", "reopen"))
    return tasks


def final_sweep(run_id: str, base: Path) -> tuple[list[str], list[str]]:
    """Everything of this run still there; then remove it, and say what resisted."""

    def look() -> list[str]:
        found = [f"namespace {n}" for n in netns_names() if n.startswith(run_id)]
        for link in ip_json("link", "show"):
            if link["ifname"].startswith(run_id) or str(link.get("ifalias", "")).startswith(
                f"netns-kit:{run_id}"
            ):
                found.append(f"root link {link['ifname']}")
        saved = run(["iptables-save"]).stdout if shutil.which("iptables-save") else ""
        found += [f"root rule {x}" for x in saved.splitlines() if f"netns-kit:{run_id}" in x]
        for directory in (base / "state", base / "stray-state"):
            if directory.is_dir():
                found += [f"state file {p.relative_to(base)}" for p in directory.rglob("*.*")]
        return found

    left = look()
    for directory in sorted((base / "state").glob("*")):
        for record in sorted(directory.glob("*.json")):
            with contextlib.suppress(Exception):
                recover(record.stem, state_dir=directory)
    for ns in (n for n in netns_names() if n.startswith(run_id)):
        run(["ip", "netns", "delete", ns])
    for link in ip_json("link", "show"):
        if link["ifname"].startswith(run_id):
            run(["ip", "link", "delete", "dev", link["ifname"]])
    for directory in (base / "state", base / "stray-state"):
        for path in directory.rglob("*.*") if directory.is_dir() else ():
            if path.is_file():
                path.unlink()
    return left, [x for x in look() if not x.startswith("state file")]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.geteuid() != 0 or shutil.which("ip") is None:
        print("soak: needs root and iproute2: it builds namespaces", file=sys.stderr)
        return 2
    run_id = f"sk{secrets.token_hex(2)}"
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    base = Path(args.tmp_dir or tempfile.mkdtemp(prefix="netns-kit-soak-"))
    base.mkdir(parents=True, exist_ok=True)
    os.environ["NETNS_KIT_STATE_DIR"] = str(base / "stray-state")  # a safety net: unused
    tasks = plan_tasks(args, run_id, seed, base)
    print(
        f"soak: netns_kit {netns_kit.__version__} from {Path(netns_kit.__file__).parent}, "
        f"prefix {run_id}, seed {seed}, {len(tasks)} tasks on {args.workers} workers, in {base}",
        file=sys.stderr,
    )
    began = time.monotonic()
    outcomes: list[Outcome] = []
    interrupted = False
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(args.workers, mp_context=context, initializer=init_worker) as pool:
            futures = {pool.submit(run_task, task): task for task in tasks}
            for future in as_completed(futures):
                task = futures[future]
                try:
                    outcome = future.result()
                except Exception as error:
                    outcome = Outcome(task.kind, f"{task.kind} {task.number} {task.name}")
                    outcome.fail(f"the worker failed: {short_trace(error)}")
                outcomes.append(outcome)
                report(outcome, args.verbose)
    except KeyboardInterrupt:
        interrupted = True
        print("soak: interrupted; cleaning up", file=sys.stderr)
    fuzz_failures = report_fuzz(outcomes, args.save_fuzz, seed)
    left, resisted = final_sweep(run_id, base)
    line = summary(args, outcomes, left, resisted)
    if left:
        print(f"FAIL left at the end (now removed): {', '.join(left)}", file=sys.stderr)
    if resisted:
        print(f"FAIL STILL THERE after cleaning up: {', '.join(resisted)}", file=sys.stderr)
    for figures in footer(outcomes):
        print(figures, file=sys.stderr)
    print(f"soak: {time.monotonic() - began:.1f} s", file=sys.stderr)
    print(f"interrupted: {line}" if interrupted else line, flush=True)
    if not args.tmp_dir:
        shutil.rmtree(base, ignore_errors=True)
    failed = any(not o.ok for o in outcomes) or fuzz_failures or left or resisted
    return 130 if interrupted else 1 if failed else 0


def report(outcome: Outcome, verbose: bool) -> None:
    if outcome.kind == "fuzz":
        if verbose:
            print(f"ok   {outcome.label} ({outcome.seconds:.1f} s)", file=sys.stderr)
        return
    if outcome.ok:
        if verbose:
            print(f"ok   {outcome.label} ({outcome.seconds:.1f} s)", file=sys.stderr)
        return
    print(f"FAIL {outcome.label} ({outcome.seconds:.1f} s):", file=sys.stderr)
    for failure in outcome.failures:
        print("     - " + failure.replace("\n", "\n       "), file=sys.stderr)


def report_fuzz(outcomes: list[Outcome], save: str | None, seed: int) -> int:
    """One paragraph per kind of fuzz failure, with its count and a first example."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for outcome in outcomes:
        for problem in outcome.fuzz:
            seen.setdefault(problem["signature"], []).append(problem)
    for signature, problems in sorted(seen.items(), key=lambda kv: -len(kv[1])):
        first = min(problems, key=lambda p: p.get("case") or 0)
        print(
            f"FAIL fuzz: {len(problems)} case(s): {signature}; e.g. case {first.get('case')}: "
            f"{first.get('desc')}\n       {str(first.get('said', '')).strip()[:300]}",
            file=sys.stderr,
        )
        if save:  # the case again, from its seed and number
            folder = Path(save) / f"case{first['case']}"
            folder.mkdir(parents=True, exist_ok=True)
            bases = {p.name: p.read_bytes() for p in sorted(LABS.glob("*.toml"))}
            path, _ = _make_case(str(seed), first["case"], bases, folder)
            print(f"       saved as {path}", file=sys.stderr)
    return sum(len(p) for p in seen.values())


def footer(outcomes: list[Outcome]) -> list[str]:
    """Per part, how many cases of each kind ran, and how many of those failed."""
    lines = []
    names = {"round": "rounds", "kill": "kill -9", "ctrlc": "ctrl-c"}
    for kind, title in names.items():
        ran: dict[str, Counter[str]] = {}
        failed: Counter[tuple[str, str]] = Counter()
        for outcome in (o for o in outcomes if o.kind == kind):
            for group, tag in outcome.tags:
                ran.setdefault(group, Counter())[tag] += 1
                failed[group, tag] += not outcome.ok
        for group, counts in ran.items():
            parts = [
                f"{tag} {n}" + (f" ({failed[group, tag]} failed)" if failed[group, tag] else "")
                for tag, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            ]
            lines.append(f"soak: {title}, {group}: {', '.join(parts)}")
    return lines


def summary(
    args: argparse.Namespace, outcomes: list[Outcome], left: list[str], resisted: list[str]
) -> str:
    def of(kind: str) -> list[Outcome]:
        return [o for o in outcomes if o.kind == kind]

    def tally(kind: str) -> str:
        done = of(kind)
        return f"{sum(o.ok for o in done)}/{len(done)}"

    figures: Counter[str] = Counter()
    for outcome in outcomes:
        if outcome.kind in ("reopen", "fuzz"):
            figures.update(outcome.figures)
    races = of("race")
    fuzz = f"fuzz {figures['cases']}: {figures['tracebacks']} tracebacks"
    for extra in ("bad exit codes", "hangs", "oversized outputs", "crashes"):
        if figures[extra]:
            fuzz += f", {figures[extra]} {extra}"
    if resisted:
        end = f"STILL LEFT: {', '.join(resisted)}"
    elif left:
        end = f"left: {', '.join(left)} (removed)"
    else:
        end = "nothing left"
    return (
        f"{args.workers} workers x {args.rounds} rounds: {tally('round')} clean; "
        f"kill -9 {tally('kill')} recovered; "
        f"races {sum(o.figures['one winner'] for o in races)}/{len(races)} one winner, "
        f"{figures['spurious busy']} spurious busy in {figures['reopens']} reopens, "
        f"{figures['stray locks']} stray locks; "
        f"{fuzz}; ctrl-c {tally('ctrlc')} clean; {end}"
    )


if __name__ == "__main__":
    sys.exit(main())
