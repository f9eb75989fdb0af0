"""What the checks know of each namespace: its interfaces, addresses and subnets."""

from __future__ import annotations

import attrs

from netns_kit import validate
from netns_kit.topology.suggest import Names, short_list


@attrs.define
class End:
    """One interface the topology makes: where it is, its name, its address."""

    namespace: str | None
    name: str
    address: validate.IPInterface | None
    path: str


class Place:
    """The interfaces of one namespace, indexed for the checks of routes through it.

    Whether a gateway is in a connected subnet is asked once per route; scanning
    every interface each time was quadratic in a hub with thousands of links.  The
    subnets are kept as (version, prefix length, network bits), so that the question
    costs one set lookup per distinct prefix length in the namespace.
    """

    def __init__(self) -> None:
        self.ends: dict[str, End] = {}  # by interface name
        self.own: set[validate.IPAddress] = set()  # the interfaces' addresses
        self.networks: set[tuple[int, int, int]] = set()
        self.prefixes: set[tuple[int, int]] = set()  # (version, prefix length)
        # What the messages show, made once: a namespace may have thousands of
        # interfaces and as many routes wrong.
        self._names: Names | None = None
        self._subnets: list[str] | None = None

    def add(self, end: End) -> None:
        self.ends[end.name] = end
        self._names = self._subnets = None
        if end.address is not None:
            network = end.address.network
            self.own.add(end.address.ip)
            self.networks.add(network_key(network.version, network.prefixlen, end.address.ip))
            self.prefixes.add((network.version, network.prefixlen))

    def connects(self, via: validate.IPAddress) -> bool:
        """Whether ``via`` is in the subnet of one of the interfaces."""
        return any(
            network_key(version, prefixlen, via) in self.networks
            for version, prefixlen in self.prefixes
            if version == via.version
        )

    def subnets(self) -> list[str]:
        if self._subnets is None:
            self._subnets = sorted(
                {str(end.address.network) for end in self.ends.values() if end.address is not None}
            )
        return self._subnets

    def have(self) -> str:
        """The interface names, for "(it has: ...)"."""
        return short_list(self.ends) or "none"

    def names(self) -> Names:
        if self._names is None:
            self._names = Names(self.ends)
        return self._names


def network_key(version: int, prefixlen: int, address: validate.IPAddress) -> tuple[int, int, int]:
    bits = 32 if version == 4 else 128
    return version, prefixlen, int(address) >> (bits - prefixlen)
