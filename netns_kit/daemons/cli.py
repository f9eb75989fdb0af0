"""The command line's view of a lab's routers: ``netns-kit exec LAB r1 -- vtysh ...``
reaches that router's own daemons, and ``netns-kit show`` adds a table of each
router's suite, protocols and neighbours, read from the daemons themselves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from netns_kit.command import in_namespace
from netns_kit.daemons import bird, frr
from netns_kit.engine.runner import Runner
from netns_kit.readback.tables import text_table
from netns_kit.record.registry import Record

_PROTOCOLS = {"ospfd": "ospf", "ospf6d": "ospf6", "bgpd": "bgp", "bfdd": "bfd", "bird": "bird"}


@attrs.frozen
class RouterDaemons:
    """A router as the lab's record tells it: its suite, directory and daemons."""

    name: str
    suite: str
    directory: str
    programs: tuple[str, ...]
    machine: str | None = None


def routers(record: Record) -> dict[str, RouterDaemons]:
    """The routers of a lab that run daemons, by name (from the record)."""
    programs: dict[str, list[str]] = {}
    machines: dict[str, str | None] = {}
    for entry in record.resources:
        if entry.kind == "daemon" and "/" in entry.name:
            router, program = entry.name.split("/", 1)
            programs.setdefault(router, []).append(program)
            machines[router] = entry.machine
    found = {}
    for entry in record.resources:
        if entry.kind != "directory":
            continue
        router = entry.name.rstrip("/").rsplit("/", 1)[-1]
        if router in programs:
            suite = "bird" if programs[router] == ["bird"] else "frr"
            found[router] = RouterDaemons(
                router, suite, entry.name, tuple(programs[router]), machines[router]
            )
    return found


def exec_argv(record: Record, namespace: str, argv: Sequence[str]) -> list[str]:
    """``vtysh``/``birdc`` pointed at the router's own daemons (their sockets are in
    its directory); any other command as it is."""
    router = routers(record).get(namespace)
    words = list(argv)
    if router is None or not words:
        return words
    if words[0] == "vtysh" and router.suite == "frr":
        return ["vtysh", "--vty_socket", router.directory, *words[1:]]
    if words[0] == "birdc" and router.suite == "bird":
        return ["birdc", "-s", f"{router.directory}/{bird.SOCKET}", *words[1:]]
    return words


def _ask(runner: Runner, router: RouterDaemons, argv: Sequence[str]) -> str:
    command = attrs.evolve(in_namespace(argv, router.name, read=True), machine=router.machine)
    return runner.run(command, check=False).stdout


def neighbours(runner: Runner, router: RouterDaemons) -> list[tuple[str, str, str]]:
    """(protocol, neighbour, state) of each of the router's sessions."""
    rows: list[tuple[str, str, str]] = []
    if router.suite == "frr":
        if "ospfd" in router.programs:
            said = _ask(
                runner, router, frr.vtysh_argv(router.directory, ["show ip ospf neighbor json"])
            )
            for rid, sessions in _json(said).get("neighbors", {}).items():
                for s in sessions:
                    rows.append(
                        ("ospf", f"{rid} ({s.get('ifaceName', '')})", str(s.get("nbrState", "")))
                    )
        if "ospf6d" in router.programs:
            ask = ["show ipv6 ospf6 neighbor json"]
            said = _ask(runner, router, frr.vtysh_argv(router.directory, ask))
            for s in _json(said).get("neighbors", []):
                who = f"{s.get('neighborId', '')} ({s.get('interfaceName', '')})"
                rows.append(("ospf6", who, str(s.get("state", ""))))
        if "bgpd" in router.programs:
            said = _ask(runner, router, frr.vtysh_argv(router.directory, ["show bgp summary json"]))
            answer = _json(said)  # one table per address family; a session is in one
            for family in ("ipv4Unicast", "ipv6Unicast"):
                for address, peer in answer.get(family, {}).get("peers", {}).items():
                    who = f"{address} ({peer['desc']})" if peer.get("desc") else address
                    rows.append(("bgp", who, str(peer.get("state", ""))))
        return rows
    said = _ask(runner, router, bird.birdc_argv(router.directory, ["show", "protocols"]))
    for line in said.splitlines()[2:]:
        words = line.split()
        if len(words) >= 4 and words[1] in ("OSPF", "BGP"):
            state = " ".join(words[5:]) if len(words) > 5 else words[3]
            rows.append((words[1].lower(), words[0], state))
    return rows


def _json(text: str) -> dict[str, Any]:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def show_text(record: Record, runner: Runner) -> str:
    """The routers table of ``netns-kit show`` ("" for a lab without daemons)."""
    found = routers(record)
    if not found:
        return ""
    rows = []
    for name, router in sorted(found.items()):
        protocols = ", ".join(
            _PROTOCOLS[p] for p in router.programs if p in _PROTOCOLS and p != "bird"
        )
        if router.suite == "bird":
            protocols = "bird"
        sessions = neighbours(runner, router) or [("", "", "")]
        for protocol, neighbour, state in sessions:
            rows.append((name, router.suite, protocols, protocol, neighbour, state))
    return text_table(("ROUTER", "SUITE", "DAEMONS", "PROTOCOL", "NEIGHBOUR", "STATE"), rows)
