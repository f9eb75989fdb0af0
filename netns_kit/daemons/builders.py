"""The routing builders mixed into :class:`~netns_kit.lab.lab.Lab`.

``router``, ``ospf``, ``bgp`` and ``daemon`` say what runs where; nothing starts
until the lab needs routing: at the end of a ``batch()`` block or an ``apply()``
(the build then also waits until routing has converged), at ``converge()``, or at
the first ``vtysh``/``birdc``.  A router whose configuration changed after its
daemons started is restarted (stopped in order, its nexthops flushed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from netns_kit import validate
from netns_kit.command import Command, ip
from netns_kit.daemons import bird, converge, files, frr, resources, wiring
from netns_kit.daemons.model import Loopback, Ospf, RouterConfig, loopbacks
from netns_kit.daemons.model import asn as check_asn
from netns_kit.daemons.model import loopback as check_loopback
from netns_kit.daemons.model import suite as check_suite
from netns_kit.engine.step import Entry, Phase, Step
from netns_kit.errors import NetnsKitError, ToolMissingError, ValidationError, result_error
from netns_kit.executors import Process, quiet_thread, start_detached
from netns_kit.lab.builders import Builders
from netns_kit.objects.namespace import Namespace
from netns_kit.record.journal import shielded
from netns_kit.spec import Topology

#: How long a build waits for routing to converge before it fails.
BUILD_TIMEOUT = 60.0


def daemon_base(lab: str, state: Path, rootless: bool) -> Path:
    """Where a lab's routers keep their files: ``/run/netns-kit-<lab>.daemons`` as
    root (FRR's user must reach it, which a private state directory such as a test's
    temporary one does not allow), the lab's state directory in a rootless lab (its
    daemon, BIRD, runs as the user)."""
    if rootless or os.geteuid() != 0:
        return state / f"{lab}.daemons"
    return Path("/run") / f"netns-kit-{lab}.daemons"


@attrs.define
class Hand:
    """A hand-written configuration (``lab.daemon``)."""

    suite: str
    text: str
    daemons: tuple[str, ...]


@attrs.define
class RoutingState:
    """What the lab's routing builders were asked, and what runs."""

    routers: dict[str, Loopback] = attrs.field(factory=dict)
    suites: dict[str, str] = attrs.field(factory=dict)
    ospf: dict[str, Ospf] = attrs.field(factory=dict)
    bgp: dict[str, wiring.BgpAsk] = attrs.field(factory=dict)
    hand: dict[str, Hand] = attrs.field(factory=dict)
    running: dict[str, list[resources.Daemon]] = attrs.field(factory=dict)
    written: dict[str, Any] = attrs.field(factory=dict)
    made: set[tuple[str | None, str]] = attrs.field(factory=set)  # (machine, directory)
    pending: bool = False
    instances: int = 0


class RoutingBuilders(Builders):
    """``router``, ``ospf``, ``bgp``, ``daemon``, ``converge``, ``vtysh``, ``birdc``:
    the lab's builders, and routing (:class:`~netns_kit.Lab` is made of these)."""

    @property
    def routing(self) -> RoutingState:
        found: RoutingState | None = getattr(self, "_routing_state", None)
        if found is None:
            found = RoutingState()
            self._routing_state = found
        return found

    # -- builders -----------------------------------------------------------------------
    @validate.renamed_keywords(host="machine")
    def router(
        self,
        name: str,
        *,
        loopback: str | Sequence[str] | None = None,
        machine: str | None = None,
    ) -> Namespace:
        """A namespace that forwards (IPv4 and IPv6), with ``loopback`` on its ``lo``:
        a CIDR such as ``10.255.0.1/32`` or ``fd00:255::1/128``, or both (a list of an
        IPv4 and an IPv6 CIDR, a dual-stack router).  The IPv4 one is the router's
        id (without one: the low 32 bits of the IPv6 one); each is the address of
        the loopback-to-loopback sessions of its family."""
        given = check_loopback(loopback)
        ns = self.namespace(name, machine=machine)
        self.sysctl("net.ipv4.ip_forward", 1, namespace=ns)
        self.sysctl("net.ipv6.conf.all.forwarding", 1, namespace=ns)
        for cidr in loopbacks(given):
            if cidr is not None:
                phase = Phase.ADDRESS6 if ":" in cidr else Phase.CONFIGURE
                add = ip("address", "add", cidr, "dev", "lo", namespace=ns.name)
                self._run([Step(add, phase=phase)], self.placement.home_at(ns.name))
        self.routing.routers[ns.name] = given
        return ns

    def _router_names(self, routers: Sequence[Namespace | str] | None, field: str) -> list[str]:
        known = self.routing.routers
        if routers is None:
            return list(known)
        names = []
        for r in routers:
            name = r.name if isinstance(r, Namespace) else r
            if name not in known:
                raise ValidationError(field, name, "is not a router of this lab (lab.router)")
            names.append(name)
        return names

    def _suite_for(self, name: str, suite: str) -> None:
        chosen = check_suite(suite)
        had = self.routing.suites.get(name)
        if had is not None and had != chosen:
            raise ValidationError("suite", suite, f"router {name} already runs {had}")
        self.routing.suites[name] = chosen

    def ospf(
        self,
        routers: Sequence[Namespace | str] | None = None,
        *,
        area: str | int = "0.0.0.0",
        hello: int = 1,
        dead: int = 3,
        suite: str = "frr",
        bfd: bool = False,
    ) -> None:
        """OSPFv2 on ``routers`` (every router of the lab by default), on every link
        between them, and OSPFv3 too on a router with an IPv6 address, on its links
        that carry IPv6; links towards hosts are passive and their subnets advertised,
        and so are the loopbacks.  Fast by default: point-to-point links between two
        routers, ``hello`` 1 s / ``dead`` 3 s, SPF and LSA throttles off (FRR)."""
        self.routing.instances += 1
        settings = Ospf(area, hello, dead, bfd, self.routing.instances)
        names = self._router_names(routers, "routers")
        if not names:
            raise ValidationError("routers", routers, "no routers: make them with lab.router")
        check_suite(suite)
        for name in names:
            self._suite_for(name, suite)
            self.routing.ospf[name] = settings
        self._routing_changed()

    def bgp(
        self,
        router: Namespace | str,
        *,
        asn: int,
        neighbors: Sequence[Namespace | str],
        networks: Sequence[str] | None = None,
        suite: str = "frr",
    ) -> None:
        """BGP on ``router`` in AS ``asn``, with a session to each of ``neighbors``
        (routers; the lab finds their addresses: a shared link for eBGP, the
        loopbacks for iBGP where OSPF runs; one session per address family both
        have, each carrying its own family's routes).  ``networks`` (default: the loopback
        and the subnets towards hosts) are announced."""
        (name,) = self._router_names([router], "router")
        number = check_asn(asn)
        peers = tuple(self._router_names(neighbors, "neighbors"))
        if name in peers:
            raise ValidationError("neighbors", name, "a router cannot be its own neighbour")
        nets = None
        if networks is not None:
            if isinstance(networks, str):
                raise ValidationError("networks", networks, "must be a list of CIDRs")
            nets = tuple(str(validate.network(n, "networks")) for n in networks)
        self._suite_for(name, suite)
        self.routing.bgp[name] = wiring.BgpAsk(number, peers, nets)
        self._routing_changed()

    def daemon(
        self,
        namespace: Namespace | str,
        suite: str,
        *,
        config: str,
        daemons: Sequence[str] | None = None,
    ) -> None:
        """Run ``suite`` in ``namespace`` with a hand-written configuration: BIRD's
        ``bird.conf``, or FRR's integrated ``frr.conf`` (loaded with ``vtysh -b``;
        ``daemons`` default to those its sections need).  The lab makes the
        directories, starts and stops the daemons; converging is the caller's."""
        name = namespace.name if isinstance(namespace, Namespace) else namespace
        if name not in self.held.namespaces:
            raise ValidationError("namespace", name, "is not a namespace of this lab")
        chosen = check_suite(suite)
        if not isinstance(config, str) or not config.strip():
            raise ValidationError("config", config, "must be the configuration's text")
        if chosen == "frr":
            wanted = tuple(daemons) if daemons is not None else tuple(frr.daemons_in(config))
            for d in wanted:
                if d not in (
                    "zebra",
                    "ospfd",
                    "ospf6d",
                    "bgpd",
                    "bfdd",
                    "staticd",
                    "ripd",
                    "isisd",
                ):
                    raise ValidationError("daemons", d, "is not an FRR daemon netns_kit runs")
            if "zebra" not in wanted:
                wanted = ("zebra", *wanted)
        else:
            wanted = ("bird",)
        self._suite_for(name, chosen)
        self.routing.hand[name] = Hand(chosen, config, wanted)
        self._routing_changed()

    def _routing_changed(self) -> None:
        self.routing.pending = True

    def routing_spec(self) -> files.RoutingSpec:
        """The lab's routing as a topology file says it (for pictures and files)."""
        r = self.routing
        ospf: dict[int, tuple[Ospf, list[str]]] = {}
        for name, settings in r.ospf.items():
            ospf.setdefault(settings.instance, (settings, []))[1].append(name)
        return files.RoutingSpec(
            tuple(files.RouterSpec(n, loop) for n, loop in r.routers.items()),
            tuple(
                files.OspfSpec(tuple(names), o.area, o.hello, o.dead, r.suites[names[0]], o.bfd)
                for o, names in ospf.values()
            ),
            tuple(
                files.BgpSpec(n, b.asn, b.neighbors, b.networks, r.suites[n])
                for n, b in r.bgp.items()
            ),
        )

    # -- running ------------------------------------------------------------------------
    def routing_configs(self) -> dict[str, RouterConfig]:
        """Every generated router configuration, as the daemons will get it."""
        r = self.routing
        return wiring.configs(
            r.routers, self.held.links(), r.ospf, r.bgp, r.suites, self.ipv6_link_local
        )

    def _daemon_dir(self, router: str | None = None) -> str:
        base = daemon_base(self.name, self.registry.directory, self.sandbox is not None)
        return str(base if router is None else base / router)

    def _batched(self) -> None:
        super()._batched()
        self._routing_built()

    def _stop_services(self) -> list[BaseException]:
        return [*super()._stop_services(), *self.stop_daemons()]

    def _blueprint_namespace(self, blueprint: Topology, name: str) -> Namespace:
        routers = {r.name: r for r in blueprint.routing.routers} if blueprint.routing else {}
        if name not in routers:
            return super()._blueprint_namespace(blueprint, name)
        machine = blueprint.machine_of(name)
        return self.router(name, loopback=routers[name].loopback, machine=machine)

    def _blueprint_rest(self, blueprint: Topology) -> None:
        super()._blueprint_rest(blueprint)
        if blueprint.routing:  # the daemons start, and the batch ends once routing converged
            files.build(self, blueprint.routing)

    def _routing_built(self) -> None:
        """At the end of a build: start what changed, and wait until converged."""
        if self.routing.pending:
            self.converge(BUILD_TIMEOUT)

    def start_routing(self) -> None:
        """Start (or restart) the daemons of every router whose configuration is new."""
        r = self.routing
        if not r.pending:
            return
        generated = self.routing_configs()
        plans: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {}
        for name, config in generated.items():
            if config.suite == "frr":
                files = frr.render(config)
                plans[name] = ("frr", files, tuple(frr.daemons(config)))
            else:
                plans[name] = ("bird", {bird.CONF: bird.render(config)}, ("bird",))
        for name, hand in r.hand.items():
            file = "frr.conf" if hand.suite == "frr" else bird.CONF
            files = {file: hand.text}
            if hand.suite == "frr":  # each daemon starts empty; vtysh -b loads frr.conf
                files.update({f"{d}.conf": "" for d in hand.daemons})
            plans[name] = (hand.suite, files, hand.daemons)
        changed = {n: p for n, p in plans.items() if r.written.get(n) != p}
        self._check_suites({p[0] for p in changed.values()})
        for name in changed:
            if name in r.running:
                self._stop_router(name)
        steps: dict[str | None, list[Step]] = {}
        dirs: dict[str | None, list[tuple[str, str | None]]] = {}
        written: dict[str | None, list[tuple[str, str]]] = {}
        for name, (suite, files, _) in changed.items():
            home = self.placement.home_at(name)
            base = self._daemon_dir()
            if (home, base) not in r.made:  # the lab's own directory, on each machine
                steps.setdefault(home, []).append(resources.directory_step(base))
                r.made.add((home, base))
            path = self._daemon_dir(name)
            owner = resources.FRR_OWNER if suite == "frr" else None
            dirs.setdefault(home, []).append((path, owner))
            written.setdefault(home, []).extend(resources.file_list(path, files))
        for home in dirs:
            mine = [*steps.get(home, []), resources.write_step(dirs[home], written[home])]
            self._apply_now(mine, home)
        self._start(changed)
        for name, plan in changed.items():
            r.written[name] = plan
        r.pending = False

    def _apply_now(self, steps: list[Step], machine: str | None) -> None:
        placed = self.placement.placed(steps, machine)
        self.journal.apply(placed, rollback=True)

    def _check_suites(self, suites: set[str]) -> None:
        if "frr" in suites and self.sandbox is not None:
            raise NetnsKitError(
                "FRR cannot run in a rootless lab: its daemons drop to user 'frr', which "
                "does not exist in the sandbox's one-user namespace, and refuse to run as "
                "root; use suite='bird' (BIRD runs as the sandbox's root), or run as root"
            )
        needs = {"frr": f"{frr.BIN}/zebra", "bird": "/usr/sbin/bird"}
        runner = self.journal.runner
        for s in sorted(suites):
            path = needs[s]
            if not runner.run(Command(("test", "-x", path), read=True), check=False):
                raise ToolMissingError(path)

    def _start(self, plans: dict[str, tuple[str, dict[str, str], tuple[str, ...]]]) -> None:
        """zebra (or bird) everywhere first, then, once each zebra's socket is there,
        the protocol daemons; the PIDs and start times go into the record."""
        self._stamp(self._start_all([(n, p[0], p[2][0]) for n, p in plans.items()]))
        by_machine: dict[str | None, list[str]] = {}
        for name, (suite, _, _) in plans.items():
            if suite == "frr":
                by_machine.setdefault(self.placement.home_at(name), []).append(
                    f"{self._daemon_dir(name)}/zserv.api"
                )
        late = self._wait_everywhere(by_machine)
        if late:
            raise NetnsKitError(f"zebra did not open its socket within 10 s: {', '.join(late)}")
        later = [(n, p[0], program) for n, p in plans.items() for program in p[2][1:]]
        self._stamp(self._start_all(later))
        for name, (_, _, _) in plans.items():
            hand = self.routing.hand.get(name)
            if hand is not None and hand.suite == "frr":
                self._load_hand(name, hand)

    def _wait_everywhere(self, paths: dict[str | None, list[str]]) -> list[str]:
        """Wait for each machine's files, the machines side by side (one waiting
        process each); the paths still missing."""
        runner = self.journal.runner
        if len(paths) <= 1:
            return [p for m, ps in paths.items() for p in resources.wait_for_files(runner, ps, m)]
        with ThreadPoolExecutor(len(paths), initializer=quiet_thread) as pool:
            done = pool.map(lambda m: resources.wait_for_files(runner, paths[m], m), paths)
            return [p for late in done for p in late]

    def _start_all(
        self, todo: list[tuple[str, str, str]]
    ) -> list[tuple[str, str, tuple[Process, Entry]]]:
        """Start each (router, suite, program), in order of ``todo``, all at once: one
        launcher a machine (``start_detached``: a daemon costs a small shell's fork,
        not this large process's), output to each daemon's log.  Held Ctrl-C and
        SIGTERM wait until the record holds every started daemon's PID and start time,
        so that recovery can kill each one (and only it) whatever comes next."""
        if not todo:
            return []
        commands, logs = [], []
        for name, suite, program in todo:
            path = self._daemon_dir(name)
            argv = frr.daemon_argv(program, path) if suite == "frr" else bird.daemon_argv(path)
            commands.append(resources.start_command(name, argv, self.placement.home_at(name)))
            logs.append(self._log_of(f"{name}/{program}"))
        with shielded():
            processes = start_detached(self.ex, commands, logs)
            started = [
                (name, program, (p, resources.entry(name, program, p, c.machine)))
                for (name, _, program), p, c in zip(todo, processes, commands, strict=True)
            ]
            self.processes.extend(p for p in processes if p.machine_pid > 0)
            self.journal.remember(*(e for _, _, (p, e) in started if e.value is not None))
        return started

    def _stamp(self, started: list[tuple[str, str, tuple[Process, Entry]]]) -> None:
        """Check that the daemons still run (one read a machine) and complete the
        entries whose start time the executor did not tell (one that started them
        one by one)."""
        by_machine: dict[str | None, list[tuple[Process, Entry]]] = {}
        for name, _, pair in started:
            by_machine.setdefault(self.placement.home_at(name), []).append(pair)
        for machine, pairs in by_machine.items():
            late = [e for p, e in pairs if e.value is None and p.machine_pid > 0]
            try:
                logs = {p.machine_pid: self._log_of(e.name) for p, e in pairs}
                daemons = resources.stamp(self.ex, pairs, machine, logs)
            except NetnsKitError:
                self.journal.remember(*late)  # still recorded: stopped at close
                raise
            completed = {e.name for e in late}
            self.journal.remember(*(d.entry for d in daemons if d.entry.name in completed))
            for d in daemons:
                self.routing.running.setdefault(d.router, []).append(d)

    def _log_of(self, entry_name: str) -> str:
        """The log file of a daemon known by its entry's name (``router/program``)."""
        router, program = entry_name.split("/", 1)
        return f"{self._daemon_dir(router)}/{program}.log"

    def _load_hand(self, name: str, hand: Hand) -> None:
        path = self._daemon_dir(name)
        sockets = [f"{path}/{d}.vty" for d in hand.daemons]
        resources.wait_for_files(self.journal.runner, sockets, self.placement.home_at(name))
        load = resources.start_command(name, frr.load_argv(path), self.placement.home_at(name))
        self.journal.runner.run(load)

    #: Seconds a daemon gets to end after SIGTERM (then SIGKILL, and as long again).
    STOP_WAIT = 5.0

    def stop_daemons(self) -> list[BaseException]:
        """Stop every daemon, side by side: the protocol daemons, then zebra and bird
        (one at a time, 50 routers' daemons took minutes on a loaded machine).  What
        would not end is returned, not raised."""
        running = [d for ds in self.routing.running.values() for d in ds]
        self.routing.running.clear()
        first = [d for d in running if d.program not in ("zebra", "bird")]
        last = [d for d in running if d.program in ("zebra", "bird")]
        problems: list[BaseException] = []
        for wave in (first, last):
            if not wave:
                continue
            with ThreadPoolExecutor(min(8, len(wave)), initializer=quiet_thread) as pool:
                done = list(pool.map(self._stop_one, wave))
            problems += [p for p in done if p is not None]
        for d in running:
            if d.process in self.processes:
                self.processes.remove(d.process)
        return problems

    def _stop_one(self, daemon: resources.Daemon) -> BaseException | None:
        try:
            daemon.process.stop(self.STOP_WAIT)
        except Exception as failed:
            if daemon.process.running:
                return failed
        return None

    def stop_router(self, router: Namespace | str) -> None:
        """Stop a router's daemons now (a routing failure, for a timeline): protocol
        daemons, then zebra, then its nexthops.  Its links stay up; :meth:`start_router`
        starts it again."""
        name = self._running_router(router)
        self._stop_router(name)
        self.routing.written.pop(name, None)  # its files are written again at start

    def start_router(self, router: Namespace | str) -> None:
        """Start a router stopped by :meth:`stop_router` again (it converges by itself;
        :meth:`converge` waits for it)."""
        name = getattr(router, "name", router)
        if name not in self.routing.routers:
            raise ValidationError("router", router, "is not a router of this lab")
        self.routing.pending = True
        self.start_routing()

    def _running_router(self, router: Namespace | str) -> str:
        name = getattr(router, "name", router)
        if not isinstance(name, str) or name not in self.routing.running:
            raise ValidationError("router", router, "is not a router whose daemons run")
        return name

    def _stop_router(self, name: str) -> None:
        """Stop a router's daemons: protocol daemons, then zebra, then its nexthops."""
        daemons = self.routing.running.pop(name, [])
        for d in reversed(daemons):
            d.process.stop()
            if d.process in self.processes:
                self.processes.remove(d.process)
        self.journal.forget([d.entry for d in daemons])
        if any(d.program == "zebra" for d in daemons):
            self.journal.runner.run(
                resources.flush_nexthops(name, self.placement.home_at(name)), check=False
            )

    # -- converged ----------------------------------------------------------------------
    def expected_routes(self) -> dict[str, set[str]]:
        """Per router, the prefixes its kernel must route for the lab to be converged."""
        return wiring.expected(self.routing_configs())

    def converge(self, timeout: float = 30.0) -> float:
        """Start what is not running yet, then wait until every router's kernel table
        has a route to every loopback and advertised subnet it can reach; returns the
        seconds waited.  :class:`~netns_kit.daemons.converge.NotConvergedError` names
        the routers and the prefixes they still lack."""
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
            raise ValidationError("timeout", timeout, "must be a positive number of seconds")
        self.start_routing()
        return converge.wait(
            self.journal.runner, self.expected_routes(), self.placement.home_at, timeout
        )

    def _running_suite(self, router: Namespace | str, wanted: str) -> str:
        name = router.name if isinstance(router, Namespace) else router
        self.start_routing()
        suite = self.routing.suites.get(name)
        if suite is None or name not in self.routing.running:
            raise ValidationError("router", name, "runs no routing daemons")
        if suite != wanted:
            tool = "vtysh" if suite == "frr" else "birdc"
            raise ValidationError("router", name, f"runs {suite}: use lab.{tool}")
        return name

    def vtysh(self, router: Namespace | str, *commands: str) -> str:
        """Ask a router's FRR daemons (``vtysh -c`` for each command); their answer."""
        name = self._running_suite(router, "frr")
        argv = frr.vtysh_argv(self._daemon_dir(name), commands)
        command = resources.start_command(name, argv, self.placement.home_at(name))
        return self.journal.runner.run(attrs.evolve(command, read=True)).stdout

    def birdc(self, router: Namespace | str, *commands: str) -> str:
        """Ask a router's BIRD (``birdc -s SOCKET COMMAND``); its answer."""
        name = self._running_suite(router, "bird")
        argv = bird.birdc_argv(self._daemon_dir(name), commands)
        command = resources.start_command(name, argv, self.placement.home_at(name))
        # birdc exits 1 for answers such as "Network not found": still an answer
        done = self.journal.runner.run(attrs.evolve(command, read=True), check=False)
        if not done.stdout:
            raise result_error(done)
        return done.stdout
