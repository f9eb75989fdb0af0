"""``lab.snapshot()`` of the seed's bridge lab on the real kernel, against what was built.

The lab is isolated and uniquely named (``ss-<uid>``): red and blue, each with a veth
whose other end is a port of ``v-net-0`` in the lab's host namespace.  The snapshot is
checked against what the builder calls asked for, and its link names against the
kernel's own ``ip -j`` answer, read independently.
"""

from __future__ import annotations

import json
import time

from netns_kit import Lab, Namespace
from netns_kit.readback.reader import RouteInfo, Snapshot

from .conftest import Kernel

ADDRESSES = {
    "v-net-0": "192.168.15.5/24",
    "veth-red": "192.168.15.1/24",
    "veth-blue": "192.168.15.2/24",
}


def build(lab: Lab) -> tuple[Namespace, Namespace]:
    red = lab.namespace(f"{lab.name}-red")
    blue = lab.namespace(f"{lab.name}-blue")
    bridge = lab.bridge("v-net-0", ADDRESSES["v-net-0"])
    lab.link(
        red, bridge, addresses=(ADDRESSES["veth-red"], None), names=("veth-red", "veth-red-br")
    )
    lab.link(
        blue, bridge, addresses=(ADDRESSES["veth-blue"], None), names=("veth-blue", "veth-blue-br")
    )
    return red, blue


def settled(lab: Lab) -> Snapshot:
    """A snapshot once every link but ``lo`` is UP and a second read finds no change.

    The kernel sets the operational state a moment after ``ip link set up`` (its
    linkwatch work runs later), and adds the IPv6 link-local addresses then, so a
    snapshot taken at once may still say DOWN or miss an address.  The wait is
    bounded; the caller checks the result.
    """
    previous = None
    for _ in range(50):
        snap = lab.snapshot()
        up = all(link.state == "UP" for state in snap for link in state.links if link.name != "lo")
        if up and snap == previous:
            break
        previous = snap
        time.sleep(0.1)
    return snap


def test_snapshot_matches_what_was_built(prefix: str, kernel: Kernel) -> None:
    with Lab(prefix, isolated=True) as lab:
        red, blue = build(lab)
        host = lab.host_side
        assert host == f"{prefix}-host"
        snap = settled(lab)

        assert [state.name for state in snap] == [host, red.name, blue.name]
        for state in snap:  # the same links as the kernel lists, read independently
            assert {link.name for link in state.links} == set(kernel.links(state.name))

        h = snap[host]
        assert {link.name: link.kind for link in h.links} == {
            "lo": "loopback",
            "v-net-0": "bridge",
            "veth-red-br": "veth",
            "veth-blue-br": "veth",
        }
        assert h.link("v-net-0").master is None
        assert h.link("veth-red-br").master == "v-net-0"
        assert h.link("veth-blue-br").master == "v-net-0"
        for ns, mine, port in (
            (red, "veth-red", "veth-red-br"),
            (blue, "veth-blue", "veth-blue-br"),
        ):
            link = snap[ns.name].link(mine)
            assert (link.kind, link.master) == ("veth", None)
            assert link.peer is not None
            assert (link.peer.name, link.peer.namespace) == (port, host)
            port_peer = h.link(port).peer
            assert port_peer is not None
            assert (port_peer.name, port_peer.namespace) == (mine, ns.name)
            assert {link.name for link in snap[ns.name].links} == {"lo", mine}
            assert snap[ns.name].link("lo").kind == "loopback"

        for state in snap:  # every interface the lab made is up and carries its tag
            for link in state.links:
                assert link.alias == lab.tag, (state.name, link.name)
                if link.name != "lo":
                    assert link.state == "UP", (state.name, link.name, link.state)

        for state in snap:
            inet = sorted(a.address for a in state.addresses if a.family == "inet")
            made = [ADDRESSES[link.name] for link in state.links if link.name in ADDRESSES]
            assert inet == sorted(["127.0.0.1/8", *made]), state.name
        assert h.addresses_of("v-net-0")[0] == ADDRESSES["v-net-0"]
        for ns, mine in ((red, "veth-red"), (blue, "veth-blue")):
            connected = RouteInfo("192.168.15.0/24", None, mine, "kernel", "link", "inet")
            assert [r for r in snap[ns.name].routes if r.family == "inet"] == [connected]


def test_snapshot_equality_and_json(prefix: str) -> None:
    with Lab(prefix, isolated=True) as lab:
        red, blue = build(lab)
        first = settled(lab)
        second = lab.snapshot()
        assert second == first  # nothing changed in between
        assert hash(second) == hash(first)

        data = json.loads(first.to_json())
        assert [state["name"] for state in data["namespaces"]] == [
            lab.host_side,
            red.name,
            blue.name,
        ]
        assert Snapshot.from_json(first.to_json()) == first
        assert Snapshot.from_dict(first.to_dict()) == first
        assert Snapshot.from_json(first.to_json(indent=None)) == first

        blue.run(["ip", "addr", "add", "192.168.15.22/24", "dev", "veth-blue"])
        changed = lab.snapshot()
        assert changed != first
        assert changed[lab.host_side] == first[lab.host_side]
        assert changed[red.name] == first[red.name]
        assert changed[blue.name] != first[blue.name]
        assert "192.168.15.22/24" in changed[blue.name].addresses_of("veth-blue")
        assert Snapshot.from_json(changed.to_json()) == changed


def test_snapshot_of_a_lab_with_nothing_on_the_host_side(prefix: str) -> None:
    """Not isolated and without a bridge: the root namespace is not read at all."""
    with Lab(prefix) as lab:
        red = lab.namespace(f"{prefix}-red")
        blue = lab.namespace(f"{prefix}-blue")
        lab.link(
            red, blue, addresses=("10.0.0.1/30", "10.0.0.2/30"), names=("veth-red", "veth-blue")
        )
        snap = lab.snapshot()
        assert [state.name for state in snap] == [red.name, blue.name]
        assert None not in snap
        end = snap[red.name].link("veth-red")
        assert end.peer is not None
        assert (end.peer.name, end.peer.namespace) == ("veth-blue", blue.name)
        assert "10.0.0.2/30" in snap[blue.name].addresses_of("veth-blue")
