"""The seed's two recipes on the real kernel, read back with ``ip -j``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from netns_kit import Bridge, Namespace, VethPair

from .conftest import Kernel

MakeNamespace = Callable[[str], Namespace]


def test_veth_recipe(make_namespace: MakeNamespace, kernel: Kernel, uid: str) -> None:
    """Two namespaces joined by one veth pair, made in place, pinging both ways."""
    red, blue = make_namespace("red"), make_namespace("blue")
    pair = VethPair(f"v{uid}r", f"v{uid}b", namespace=red, peer_namespace=blue).create()
    pair.end.add_address("192.168.15.1/24")
    pair.peer_end.add_address("192.168.15.2/24")
    pair.up()

    assert red.ping("192.168.15.2", count=3)
    assert blue.ping("192.168.15.1", count=3)

    for ns, mine, other, address in (
        (red, pair.name, pair.peer, "192.168.15.1/24"),
        (blue, pair.peer, pair.name, "192.168.15.2/24"),
    ):
        links = kernel.links(ns.name)
        assert mine in links, f"{mine} is not in {ns.name}"
        assert other not in links
        assert links[mine]["linkinfo"]["info_kind"] == "veth"
        # UP is the admin state, LOWER_UP the carrier (set at once); operstate follows
        # later, from the kernel's linkwatch work, so it is not what we check.
        assert {"UP", "LOWER_UP"} <= set(links[mine]["flags"])
        assert "UP" in links["lo"]["flags"]
        assert kernel.addresses(ns.name)[mine] == [address]
    root = kernel.links()
    assert pair.name not in root and pair.peer not in root


@pytest.mark.parametrize("bridge_name", ["br{uid}", "up"])
def test_bridge_recipe(
    make_namespace: MakeNamespace, kernel: Kernel, uid: str, bridge_name: str
) -> None:
    """A bridge in a throwaway host namespace, one veth from each namespace attached
    to it, and a host address on the bridge.  ``up`` is a name, not a keyword."""
    host = make_namespace("host")
    red, blue = make_namespace("red"), make_namespace("blue")
    bridge = Bridge(bridge_name.format(uid=uid), namespace=host).create()
    pairs = []
    for ns, address in ((red, "192.168.15.1/24"), (blue, "192.168.15.2/24")):
        pair = VethPair(
            f"v{uid}{ns.name[-1]}", f"p{uid}{ns.name[-1]}", namespace=ns, peer_namespace=host
        ).create()
        pair.end.add_address(address)
        bridge.attach(pair.peer)
        pair.up()
        pairs.append(pair)
    bridge.add_address("192.168.15.5/24")
    bridge.up()

    assert red.ping("192.168.15.2", count=3)
    assert blue.ping("192.168.15.1", count=3)
    assert host.ping("192.168.15.1", count=3)
    assert host.ping("192.168.15.2", count=3)

    links = kernel.links(host.name)
    assert bridge.name in links
    assert links[bridge.name]["linkinfo"]["info_kind"] == "bridge"
    assert {"UP", "LOWER_UP"} <= set(links[bridge.name]["flags"])
    assert kernel.addresses(host.name)[bridge.name] == ["192.168.15.5/24"]
    for pair in pairs:
        assert links[pair.peer]["master"] == bridge.name
        assert {"UP", "LOWER_UP"} <= set(links[pair.peer]["flags"])
        assert links[pair.peer]["linkinfo"]["info_kind"] == "veth"
    assert "bridge0" not in links  # `ip link add up type bridge` would have made bridge0
    assert [n for n, e in links.items() if e.get("linkinfo", {}).get("info_kind") == "bridge"] == [
        bridge.name
    ]
    assert kernel.addresses(red.name)[pairs[0].name] == ["192.168.15.1/24"]
    assert kernel.addresses(blue.name)[pairs[1].name] == ["192.168.15.2/24"]
    assert "bridge0" not in kernel.links()
