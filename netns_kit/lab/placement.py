"""Where a lab's things live when it spans machines, and links between machines.

A lab made with ``machines=`` has :class:`~netns_kit.lab.machines.Machines`; every
builder asks its lab's :class:`Placement` which machine its steps run on
(``machine=``, or the machine of the namespace it acts in), and which executor the
object it returns acts through afterwards (that machine's).  A lab on one machine
has no machines, and every answer here is the lab's own: its steps are left as they
are, with no machine.

A link whose ends are on two machines is a VXLAN tunnel (:meth:`Placement.tunnel`):
a :class:`~netns_kit.Vxlan` at each end, the lab's next VNI, each made on its
machine's underlay device and placed in its end's namespace (or attached to its end's
bridge, which joins the two switches into one segment).
"""

from __future__ import annotations

import attrs

from netns_kit.engine.step import Step, on_machine
from netns_kit.errors import ValidationError
from netns_kit.executors import Executor
from netns_kit.lab.holdings import Holdings, LinkEnd, LinkEnds
from netns_kit.lab.machines import Machines
from netns_kit.objects.link import Bridge
from netns_kit.objects.vxlan import Vxlan, VxlanPair


@attrs.define
class Placement:
    """Which machine each step of a lab runs on (see the module).

    ``host_side`` is the lab's host-side namespace (``None``: the root namespace),
    ``executor`` the lab's own (``None``: the default one), ``machines`` the lab's
    machines (``None``: a lab on one machine).
    """

    tag: str
    host_side: str | None
    executor: Executor | None
    held: Holdings
    machines: Machines | None

    def placed(self, steps: list[Step], machine: str | None) -> list[Step]:
        """Steps on ``machine`` (as they are in a lab on one machine)."""
        return steps if machine is None or self.machines is None else on_machine(steps, machine)

    def home(self, machine: object) -> str | None:
        """A builder's ``machine=``: one of the lab's machines (the first by default)."""
        if self.machines is None:
            if machine is not None:
                raise ValidationError(
                    "machine", machine, "needs a lab on several machines (machines=)"
                )
            return None
        return self.machines.home(machine)

    def home_at(self, where: str | None, machine: object = None) -> str | None:
        """The machine of namespace ``where`` (a namespace of the lab, or the host
        side, on ``machine``).  ``machine`` must agree with a namespace's own."""
        machines = self.machines
        if machines is None or where is None or where == self.host_side:
            return self.home(machine)
        home = machines.homes[where]
        if machine is not None and machine != home:
            raise ValidationError(
                "machine", machine, f"is not where namespace {where!r} is ({home!r})"
            )
        return home

    def executor_of(self, home: str | None) -> Executor | None:
        """The executor objects on ``home`` act through after the build."""
        if home is None or self.machines is None:
            return self.executor
        return self.machines.executor_of(home)

    def by_machine(self, bridges: list[Bridge]) -> list[tuple[Executor | None, list[Bridge]]]:
        """Bridges by the executor of their machine (``None``: the lab's own runner)."""
        if self.machines is None:
            return [(None, bridges)] if bridges else []
        groups: dict[str, list[Bridge]] = {}
        for bridge in bridges:
            key = (self.held.place(bridge.namespace), bridge.name)
            groups.setdefault(self.machines.bridge_homes[key], []).append(bridge)
        return [(self.machines.executor_of(home), mine) for home, mine in groups.items()]

    def end_home(self, end: LinkEnd) -> str | None:
        """The machine a link end is on."""
        if self.machines is None:
            return None
        if end.bridge is not None:
            return self.machines.bridge_homes[
                (self.held.place(end.bridge.namespace), end.bridge.name)
            ]
        return self.machines.homes[end.endpoint.name]

    def everywhere(self, steps: list[Step]) -> list[Step]:
        """Steps for the host side: on every machine of the lab."""
        return steps if self.machines is None else self.machines.everywhere(steps)

    def tunnel(
        self,
        ends: LinkEnds,
        homes: tuple[str | None, str | None],
        mtu: int | None,
        link_local: bool,
        shape: object = None,
    ) -> tuple[VxlanPair, list[Step]]:
        """A link between two machines: a VXLAN tunnel end on each (see the module),
        and the steps that make it.

        ``mtu=None`` leaves each end the kernel's MTU: its underlay's less the
        encapsulation (or, when the underlay device is unknown, 1500 less it)."""
        machines = self.machines
        assert machines is not None and homes[0] is not None and homes[1] is not None
        placed = (homes[0], homes[1])
        if shape is not None:
            raise ValidationError(
                "rate", shape, "shapes veth links only, not a link across machines"
            )
        vni = machines.next_vni()
        near, far = machines.machines[homes[0]], machines.machines[homes[1]]
        assert near.underlay is not None and far.underlay is not None
        tunnels = (
            Vxlan(ends.names[0], vni, near.underlay, far.underlay, near.device,
                  ends.a.where, executor=near.executor),
            Vxlan(ends.names[1], vni, far.underlay, near.underlay, far.device,
                  ends.b.where, executor=far.executor),
        )  # fmt: skip
        steps: list[Step] = []
        sides = zip(tunnels, (ends.a, ends.b), ends.addresses, placed, strict=True)
        for tunnel, end, cidr, home in sides:
            made = tunnel.steps(
                tag=self.tag,
                addresses=[cidr] if cidr is not None else [],
                mtu=mtu if mtu is not None else machines.tunnel_mtu(home),
                bridge=end.bridge,
                link_local=link_local,
            )
            if link_local:
                made = self.held.prepare("ipv6", [tunnel.home], machine=home) + made
            steps += on_machine(made, home)
        return VxlanPair(tunnels[0], tunnels[1], placed), steps
