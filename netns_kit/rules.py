"""The lab's builders for what acts once the links are there: NAT out (masquerade),
ports in (port forwards), and names (the hosts files).

Mixed into :class:`~netns_kit.Lab`.  A masquerade or a port forward makes its
namespace a router: the rule and the forwarding it needs are one builder, so a rule
that fails takes its forwarding back with it.
"""

from __future__ import annotations

from typing import Any

from .errors import ValidationError
from .executor import Executor
from .holdings import Holdings
from .hosts import HostsFiles
from .journal import Journal
from .namespace import Namespace
from .nat import Masquerade, PortForward, overlap
from .spec import MasqueradeSpec, PortForwardSpec
from .step import Step


class RuleBuilders:
    """``masquerade``, ``port_forward`` and ``hosts`` (mixed into :class:`~netns_kit.Lab`)."""

    name: str
    tag: str
    executor: Executor | None
    held: Holdings
    journal: Journal

    def _run(self, steps: list[Step]) -> None:
        raise NotImplementedError

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
        rule = Masquerade(source, out_interface, where, self.tag, executor=self.executor)
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
        See :class:`~netns_kit.nat.PortForward` for ranges and UDP."""
        where = self.held.side(namespace)
        rule = PortForward(
            port, to, where, in_interface, protocol, self.tag, executor=self.executor
        )
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
        self._run([*forwarding, rule.rule_step()])
        self.held.saved(forwarding)
        self.held.add(rule, spec)

    def hosts(self) -> HostsFiles:
        """Name every namespace: write ``/etc/netns/<ns>/hosts`` for each, so that
        ``red.run(["ping", "-c1", "blue"])`` works (see :mod:`netns_kit.hosts`).

        The files hold the addresses given so far; call it again after adding more.
        They are removed at teardown; the machine's /etc/hosts is never touched.
        """
        self._run([])  # opens a new lab: the listing below needs its runner
        files = self.held.hosts_files()
        listing = self.journal.runner.run(files.list_command(), check=False)
        present = files.present(listing.returncode, listing.stdout)
        self._run(files.steps(present, self.held.hosts_made))
        self.held.add(files, None)
        return files
