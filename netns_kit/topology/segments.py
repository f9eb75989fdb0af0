"""Layer-2 segments: bridges joined by bridge-to-bridge links are one switched network.

Addresses on a segment are checked together, whichever of its bridges they are on:
each must be in a subnet of the segment (one a bridge address of it gives, or else
that of the first address on it, per IP version), and no address may be used twice.
Bridges are joined with a union-find, so a file of thousands of switches costs about
the same per link as a small one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from netns_kit import validate
from netns_kit.spec import BridgeSpec, LinkSpec

_Problem = tuple[str, str]  # (path, text)


class Segments:
    """The segments of a file's bridges (``name -> (path, spec)``), joined by ``links``."""

    def __init__(
        self, bridges: Mapping[str, tuple[str, BridgeSpec]], links: Sequence[LinkSpec]
    ) -> None:
        self.bridges = bridges
        self._parent = {name: name for name in bridges}
        self._members: dict[str, list[str]] = {name: [name] for name in bridges}
        for link in links:
            if link.a in bridges and link.b in bridges:
                self._join(link.a, link.b)
        self.problems: list[_Problem] = []
        # per segment: subnets by IP version (network, where it comes from), and addresses
        self.subnets: dict[str, dict[int, list[tuple[validate.IPNetwork, str]]]] = {}
        self.used: dict[str, dict[validate.IPAddress, str]] = {}
        self.from_bridge: set[str] = set()  # segments whose subnets bridge addresses give
        for name, (path, spec) in bridges.items():
            if spec.address is None:
                continue
            address = validate.interface(spec.address)
            root = self.root(name)
            self.from_bridge.add(root)
            nets = self.subnets.setdefault(root, {}).setdefault(address.version, [])
            nets.append((address.network, f"{path}.address"))
            self._use(root, f"{path}.address", name, address)

    def root(self, name: str) -> str:
        while self._parent[name] != name:
            self._parent[name] = self._parent[self._parent[name]]
            name = self._parent[name]
        return name

    def _join(self, a: str, b: str) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return
        if len(self._members[ra]) < len(self._members[rb]):
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._members[ra] += self._members.pop(rb)

    def _name(self, bridge: str) -> str:
        """How a message names where an address is: its bridge, and the segment's
        other bridges when it has some."""
        members = self._members[self.root(bridge)]
        if len(members) == 1:
            return f"bridge {bridge!r}"
        others = [m for m in members if m != bridge][:3]
        more = "..." if len(members) > 4 else ""
        joined = ", ".join(repr(m) for m in others)
        return f"bridge {bridge!r} (switched with {joined}{more})"

    def _use(self, root: str, path: str, bridge: str, address: validate.IPInterface) -> bool:
        used = self.used.setdefault(root, {})
        if address.ip in used:
            self.problems.append(
                (path, f"'{address}' is already used on {self._name(bridge)} by {used[address.ip]}")
            )
            return False
        used[address.ip] = path
        return True

    def attach(self, path: str, bridge: str, address: validate.IPInterface) -> _Problem | None:
        """An address on a port of ``bridge``: its problem, if it has one."""
        root = self.root(bridge)
        nets = self.subnets.setdefault(root, {}).setdefault(address.version, [])
        if not nets and root not in self.from_bridge:
            nets.append((address.network, path))  # the first address sets the subnet
        if nets and not any(address.network == net for net, _ in nets):
            net, source = nets[0]
            return (
                path,
                f"'{address}' is not in the subnet of {self._name(bridge)} ({net}, from {source})",
            )
        if not self._use(root, path, bridge, address):
            return self.problems.pop()
        return None
