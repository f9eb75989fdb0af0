"""The lab's builders for what acts once the links are there: routes, kernel
settings, NAT out (masquerade), ports in (port forwards), and names (the hosts files).

Mixed into :class:`~netns_kit.Lab`.  A masquerade or a port forward makes its
namespace a router: the rule and the forwarding it needs are one builder, so a rule
that fails takes its forwarding back with it.
"""

from __future__ import annotations

from typing import Any

from netns_kit.engine.step import Step, on_host
from netns_kit.errors import ValidationError
from netns_kit.lab.placement import AcrossMachines
from netns_kit.objects.hostsfiles import HOSTS_DIR, HostsFiles
from netns_kit.objects.namespace import Namespace
from netns_kit.objects.nat import Masquerade, PortForward, Sysctl, overlap
from netns_kit.objects.route import Route
from netns_kit.record.journal import Journal
from netns_kit.record.registry import Registry
from netns_kit.spec import MasqueradeSpec, PortForwardSpec, RouteSpec, SysctlSpec


class RuleBuilders(AcrossMachines):
    """``route``, ``sysctl``, ``masquerade``, ``port_forward`` and ``hosts`` (mixed into
    :class:`~netns_kit.Lab`)."""

    journal: Journal
    registry: Registry

    def route(
        self,
        destination: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        namespace: Namespace | str | None = None,
    ) -> Route:
        """Add a route; ``namespace=None`` means the lab's host side."""
        where = self.held.side(namespace)
        home = self._home_at(where)
        route = Route(destination, via, dev, where, executor=self._ex_of(home))
        self._run([route.add_step()], home)
        spec_ns = None if namespace is None else where
        self.held.add(route, RouteSpec(route.destination, route.via, route.dev, spec_ns))
        return route

    def sysctl(
        self, key: str, value: str | int, namespace: Namespace | str | None = None
    ) -> Sysctl:
        """Set a kernel setting, by default on the host side.

        In the root namespace the old value is saved at the first change and restored
        once at teardown.  In the lab's own namespaces nothing needs restoring: they
        are deleted, and a setting inside one may be queued before it even exists.
        """
        where = self.held.side(namespace)
        home = self._home_at(where)
        setting = Sysctl(key, value, where, executor=self._ex_of(home))
        steps = self.held.setting_steps(setting)
        self._run(steps, home)
        self.held.saved(steps)
        spec_ns = None if namespace is None else where
        self.held.add(setting, SysctlSpec(setting.key, setting.value, spec_ns))
        return setting

    def masquerade(
        self,
        source: str,
        out_interface: str | None = None,
        *,
        namespace: Namespace | str | None = None,
    ) -> Masquerade:
        """NAT by masquerade for ``source``, with forwarding on, in ``namespace`` (the
        host side by default): the namespace becomes a NAT router."""
        where = self.held.side(namespace)
        ex = self._ex_of(self._home_at(where))
        rule = Masquerade(source, out_interface, where, self.tag, executor=ex)
        spec = MasqueradeSpec(rule.source, rule.out_interface, self.held.place(where))
        if spec in self.held.specs(MasqueradeSpec):
            # -C would skip the second -A, but its undo would delete the rule twice
            raise ValidationError("source", source, f"is already masqueraded by lab {self.name!r}")
        self._rule(rule, spec)
        return rule

    def port_forward(
        self,
        port: int | str,
        to: str,
        *,
        namespace: Namespace | str | None = None,
        in_interface: str | None = None,
        protocol: str = "tcp",
    ) -> PortForward:
        """Forward ``port`` (or a range ``"8000-8010"``) of ``namespace`` (the host side
        by default) to ``to`` (``ADDR`` or ``ADDR:PORT``), by DNAT, with forwarding on.
        See :class:`~netns_kit.objects.nat.PortForward` for ranges and UDP."""
        where = self.held.side(namespace)
        ex = self._ex_of(self._home_at(where))
        rule = PortForward(port, to, where, in_interface, protocol, self.tag, executor=ex)
        spec = rule.spec(self.held.place(where))
        for other in self.held.specs(PortForwardSpec):
            if overlap(spec, other):
                raise ValidationError(
                    "port", port, f"is already forwarded ({other.protocol} {other.port})"
                )
        self._rule(rule, spec)
        return rule

    def _rule(self, rule: Masquerade | PortForward, spec: Any) -> None:
        # forwarding and the rule are one builder: if the rule fails, forwarding is undone
        forwarding = self.held.setting_steps(rule.forwarding())
        self._run([*forwarding, rule.rule_step()], self._home_at(rule.namespace))
        self.held.saved(forwarding)
        self.held.add(rule, spec)

    def hosts(self) -> HostsFiles:
        """Name every namespace: write ``/etc/netns/<ns>/hosts`` for each, so that
        ``red.run(["ping", "-c1", "blue"])`` works (see :mod:`netns_kit.objects.hostsfiles`).

        The files hold the addresses given so far; call it again after adding more.
        They are removed at teardown; the machine's /etc/hosts is never touched.
        """
        self._run([])  # opens a new lab: the listing below needs its runner
        files = self.held.hosts_files()
        if self.machines is not None:
            return self._hosts_on_machines(files)
        listing = self.journal.runner.run(files.list_command(), check=False)
        present = files.present(listing.returncode, listing.stdout)
        # /etc/netns made by another lab that is still up: ours to remove too, once
        # empty, whichever of us goes last (asked at this lab's first hosts() only)
        shared = (
            present is not None
            and not self.held.hosts_made
            and self.registry.owner_of("file", HOSTS_DIR) not in (None, self.name)
        )
        self._run(files.steps(present, self.held.hosts_made, shared=shared))
        self.held.add(files, None)
        return files

    def _hosts_on_machines(self, files: HostsFiles) -> HostsFiles:
        """Each machine's namespaces (its host side too) get the same text: names
        of namespaces on the other machines resolve as well."""
        machines = self.machines
        assert machines is not None
        side = (self.host,) if self.host else ()
        steps: list[Step] = []
        mine: dict[str, HostsFiles] = {}
        for host in machines.names:
            here = tuple(n for n in files.namespaces if machines.homes.get(n) == host) + side
            mine[host] = HostsFiles(files.lab, here, files.lines)
            listing = self.journal.runner.executor_for(host).execute(mine[host].list_command())
            present = mine[host].present(listing.returncode, listing.stdout)
            made = machines.files_made.setdefault(host, set())
            steps += on_host(mine[host].steps(present, made), host)
        self._run(steps)
        for host, written in mine.items():
            machines.files_made[host].update(written.namespaces)
        self.held.add(files, None)
        return files
