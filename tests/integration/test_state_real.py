"""The ip -j readers on the real kernel: build a small lab by hand, read it back.

The lab is the seed's bridge lab in a throwaway host namespace, plus a direct veth
between red and blue and a few routes:

    red  veth-red 192.168.15.1/24 ---- veth-red-br --+
         red-blue (mtu 1400) ------- blue-red          +-- v-net-0 192.168.15.5/24 (host)
    blue veth-blue 192.168.15.2/24 -- veth-blue-br -+

Every name lives in namespaces made for this test (unique per run), which the
``make_namespace`` fixture deletes afterwards, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from netns_kit import Bridge, Interface, Namespace, Route, VethPair, render
from netns_kit.executors import ShellExecutor
from netns_kit.readback.reader import AddressInfo, RouteInfo, Snapshot
from netns_kit.readback.snapshot import snapshot

from .conftest import Kernel

MakeNamespace = Callable[[str], Namespace]


class Built(NamedTuple):
    host: Namespace
    red: Namespace
    blue: Namespace
    bridge: Bridge


def build(make_namespace: MakeNamespace) -> Built:
    host, red, blue = make_namespace("host"), make_namespace("red"), make_namespace("blue")
    bridge = Bridge("v-net-0", namespace=host).create()
    bridge.add_address("192.168.15.5/24").up()
    for ns, address in ((red, "192.168.15.1/24"), (blue, "192.168.15.2/24")):
        color = ns.name.rsplit("-", 1)[1]
        pair = VethPair(
            f"veth-{color}", f"veth-{color}-br", namespace=ns, peer_namespace=host
        ).create()
        pair.end.add_address(address)
        bridge.attach(pair.peer)
        pair.up()
    Interface("veth-red-br", host).set_alias("netns-kit:inspect-test")
    direct = VethPair("red-blue", "blue-red", namespace=red, peer_namespace=blue).create()
    direct.end.set_mtu(1400).up()  # blue-red stays down
    # nodad: usable at once, so that the IPv6 route below has its gateway's subnet
    red.run(["ip", "-6", "addr", "add", "fd00:15::1/64", "dev", "veth-red", "nodad"])
    Route("default", via="192.168.15.5", namespace=red).add()
    Route("10.20.0.0/16", via="192.168.15.2", dev="veth-red", namespace=red).add()
    Route("fd00:99::/64", via="fd00:15::2", dev="veth-red", namespace=red).add()
    return Built(host, red, blue, bridge)


def test_links_kinds_masters_alias_mtu_and_peers(
    make_namespace: MakeNamespace, kernel: Kernel
) -> None:
    host, red, blue, _ = build(make_namespace)
    links = {link.name: link for link in host.links()}
    assert set(links) == {"lo", "v-net-0", "veth-red-br", "veth-blue-br"}
    assert links["lo"].kind == "loopback"
    assert links["v-net-0"].kind == "bridge"
    assert links["veth-red-br"].kind == "veth"
    assert links["veth-red-br"].master == "v-net-0"
    assert links["veth-blue-br"].master == "v-net-0"
    assert links["veth-red-br"].alias == "netns-kit:inspect-test"
    assert links["veth-blue-br"].alias is None
    raw = kernel.links(host.name)
    for name, link in links.items():
        assert link.mac == raw[name]["address"]
        assert link.mtu == raw[name]["mtu"]

    peer = links["veth-red-br"].peer
    assert peer is not None
    assert (peer.name, peer.namespace) == ("veth-red", red.name)
    peer = links["veth-blue-br"].peer
    assert peer is not None
    assert (peer.name, peer.namespace) == ("veth-blue", blue.name)

    red_links = {link.name: link for link in red.links()}
    assert red_links["red-blue"].mtu == 1400
    assert red_links["red-blue"].peer is not None
    assert red_links["red-blue"].peer.name == "blue-red"
    assert red_links["red-blue"].peer.namespace == blue.name
    assert red_links["veth-red"].peer is not None
    assert red_links["veth-red"].peer.namespace == host.name
    blue_links = {link.name: link for link in blue.links()}
    assert blue_links["blue-red"].state == "DOWN"  # never brought up
    assert blue_links["blue-red"].peer is not None
    assert blue_links["blue-red"].peer.name == "red-blue"


def test_bridge_ports(make_namespace: MakeNamespace) -> None:
    lab = build(make_namespace)
    ports = {port.name: port for port in lab.bridge.ports()}
    assert set(ports) == {"veth-red-br", "veth-blue-br"}
    assert {port.master for port in ports.values()} == {"v-net-0"}
    assert ports["veth-blue-br"].peer is not None
    assert ports["veth-blue-br"].peer.namespace == lab.blue.name


def test_addresses_and_routes(make_namespace: MakeNamespace) -> None:
    host, red, blue, _ = build(make_namespace)
    found = red.addresses()
    assert AddressInfo("veth-red", "192.168.15.1/24", "inet", "global") in found
    assert AddressInfo("veth-red", "fd00:15::1/64", "inet6", "global") in found
    assert AddressInfo("lo", "127.0.0.1/8", "inet", "host") in found
    assert "192.168.15.5/24" in [a.address for a in host.addresses() if a.interface == "v-net-0"]

    routes = red.routes()
    assert RouteInfo("default", "192.168.15.5", "veth-red", "boot", "global", "inet") in routes
    assert RouteInfo("10.20.0.0/16", "192.168.15.2", "veth-red", "boot", "global", "inet") in routes
    assert RouteInfo("192.168.15.0/24", None, "veth-red", "kernel", "link", "inet") in routes
    assert RouteInfo("fd00:99::/64", "fd00:15::2", "veth-red", "boot", "global", "inet6") in routes
    assert [r.destination for r in blue.routes() if r.family == "inet"] == ["192.168.15.0/24"]


def test_snapshot_matches_what_was_built(make_namespace: MakeNamespace) -> None:
    host, red, blue, _ = build(make_namespace)
    ex = ShellExecutor()
    snap = snapshot(ex, [host.name, red.name, blue.name])
    assert [state.name for state in snap] == [host.name, red.name, blue.name]
    assert snap[host.name].link("veth-red-br").master == "v-net-0"
    assert snap[red.name].addresses_of("veth-red")[0] == "192.168.15.1/24"
    assert Snapshot.from_json(snap.to_json()) == snap
    assert snapshot(ex, [host.name, red.name, blue.name]) == snap  # nothing changed

    rows = render.table_rows(snap)
    assert any(
        (r.namespace, r.interface, r.address, r.master)
        == (red.name, "veth-red", "192.168.15.1/24", "")
        for r in rows
    )
    assert any(r.interface == "veth-blue-br" and r.master == "v-net-0" for r in rows)

    Interface("veth-blue", blue).add_address("192.168.15.22/24")
    after = snapshot(ex, [host.name, red.name, blue.name])
    assert after != snap
    assert after[host.name] == snap[host.name]
    assert "192.168.15.22/24" in after[blue.name].addresses_of("veth-blue")
