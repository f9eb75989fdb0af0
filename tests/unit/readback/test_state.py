"""The ip -j readers, fed with real samples taken from this kernel (see fixtures/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netns_kit.errors import CommandError, ValidationError
from netns_kit.executors import RecordingExecutor, ScriptExecutor
from netns_kit.objects.link import Bridge
from netns_kit.objects.namespace import Namespace
from netns_kit.readback import reader as state
from netns_kit.readback.reader import AddressInfo, LinkInfo, PeerInfo, RouteInfo, Snapshot
from netns_kit.readback.snapshot import snapshot

FIXTURES = Path(__file__).parent.parent / "fixtures"
HOST, RED, BLUE = "ikh-5cfe", "ikr-5cfe", "ikb-5cfe"
SAMPLES = {HOST: "host", RED: "red", BLUE: "blue"}


def sample(name: str) -> str:
    return (FIXTURES / name).read_text()


#: The read batches recorded from the same lab, rebuilt by hand (fixtures/README.md).
READ_SAMPLES = {HOST: "rch-5cfe", RED: "rcr-5cfe", BLUE: "rcb-5cfe"}


def read_sample(ns: str) -> str:
    """A namespace's read batch output, with the recording's names swapped for ours."""
    text = sample(f"{READ_SAMPLES[ns]}.read.txt")
    for ours, recorded in READ_SAMPLES.items():
        text = text.replace(recorded, ours)
    return text


def answer_lab(ex: RecordingExecutor, namespaces: dict[str, str] = SAMPLES) -> None:
    """Answer every read of the sample lab's namespaces with the stored output."""
    for ns in namespaces:
        ex.answer(["ip", "-n", ns, "-d", "-j", "-force", "-batch", "-"], stdout=read_sample(ns))
    for ns, tag in namespaces.items():
        ex.answer(["ip", "-n", ns, "-d", "-j", "link", "show"], stdout=sample(f"{tag}.link.json"))
        ex.answer(["ip", "-n", ns, "-j", "addr", "show"], stdout=sample(f"{tag}.addr.json"))
        ex.answer(["ip", "-n", ns, "-j", "route", "show"], stdout=sample(f"{tag}.route.json"))
        ex.answer(
            ["ip", "-n", ns, "-6", "-j", "route", "show"], stdout=sample(f"{tag}.route6.json")
        )
        ex.answer(["ip", "-n", ns, "-j", "netns", "list-id"], stdout=sample(f"{tag}.list-id.json"))


@pytest.fixture
def ex() -> RecordingExecutor:
    ex = RecordingExecutor()
    answer_lab(ex)
    return ex


# -- links ---------------------------------------------------------------------------
def test_links_reads_kind_state_mtu_master_alias(ex: RecordingExecutor) -> None:
    links = {link.name: link for link in state.links(ex, HOST)}
    assert list(links) == ["lo", "v-net-0", "veth-red-br", "veth-blue-br", "pair-b", "pair-a"]
    assert links["lo"].kind == "loopback"
    assert links["v-net-0"].kind == "bridge"
    assert links["v-net-0"].master is None
    assert links["v-net-0"].state == "UP"
    assert links["v-net-0"].mac == "ca:b6:36:3a:5b:e2"
    red_br = links["veth-red-br"]
    assert (red_br.kind, red_br.master, red_br.alias, red_br.mtu) == (
        "veth",
        "v-net-0",
        "netns-kit:lab",
        1500,
    )
    assert links["veth-blue-br"].alias is None
    assert links["pair-a"].state == "DOWN"


def test_links_command_is_a_read_with_details(ex: RecordingExecutor) -> None:
    state.links(ex, BLUE)
    first = ex.calls[0]
    assert first.argv == ("ip", "-n", BLUE, "-d", "-j", "link", "show")
    assert first.read and first.namespace == BLUE
    assert all(call.read for call in ex.calls)


def test_veth_peer_in_another_namespace_is_named(ex: RecordingExecutor) -> None:
    links = {link.name: link for link in state.links(ex, HOST)}
    assert links["veth-red-br"].peer == PeerInfo("veth-red", RED, index=2, netnsid=0)
    assert links["veth-blue-br"].peer == PeerInfo("veth-blue", BLUE, index=2, netnsid=1)
    # host's list-id was read once, each peer namespace's links once
    assert ex.commands.count(("ip", "-n", HOST, "-j", "netns", "list-id")) == 1
    assert ex.commands.count(("ip", "-n", RED, "-d", "-j", "link", "show")) == 1


def test_veth_peer_between_two_lab_namespaces(ex: RecordingExecutor) -> None:
    red = {link.name: link for link in state.links(ex, RED)}
    assert red["veth-red"].peer == PeerInfo("veth-red-br", HOST, index=3, netnsid=0)
    assert red["red-blue"].peer == PeerInfo("blue-red", BLUE, index=3, netnsid=1)
    assert red["red-blue"].mtu == 1400


def test_veth_peer_in_the_same_namespace(ex: RecordingExecutor) -> None:
    links = {link.name: link for link in state.links(ex, HOST)}
    assert links["pair-a"].peer == PeerInfo("pair-b", HOST, index=None, netnsid=None)
    assert links["pair-b"].peer is not None and links["pair-b"].peer.name == "pair-a"
    assert links["v-net-0"].peer is None


def test_no_veth_across_namespaces_means_no_list_id_read() -> None:
    ex = RecordingExecutor()
    ex.answer("ip -n x -d -j link show", stdout=sample("host.link.json").replace('"veth"', '"x"'))
    state.links(ex, "x")
    assert ex.commands == [
        ("ip", "-n", "x", "-d", "-j", "link", "show"),
        ("tc", "-n", "x", "-j", "qdisc", "show"),  # each link's qdisc (its shaping)
    ]


def test_peer_in_an_unnamed_namespace_stays_unresolved() -> None:
    ex = RecordingExecutor()
    ex.answer(f"ip -n {RED} -d -j link show", stdout=sample("red.link.json"))
    ex.answer(f"ip -n {RED} -j netns list-id", stdout='[{"nsid":0},{"nsid":1,"name":"b"}]')
    ex.answer("ip -n b -d -j link show", returncode=1, stderr='Cannot open network namespace "b"')
    red = {link.name: link for link in state.links(ex, RED)}
    assert red["veth-red"].peer == PeerInfo(None, None, index=3, netnsid=0)
    # the named namespace could not be read (gone meanwhile): its name is still known
    assert red["red-blue"].peer == PeerInfo(None, "b", index=3, netnsid=1)


def test_root_namespace_reads_have_no_ip_n() -> None:
    ex = RecordingExecutor()
    ex.answer("ip -d -j link show", stdout=sample("blue.link.json"))
    ex.answer("ip -j netns list-id", stdout=f'[{{"nsid":0,"name":"{HOST}"}}]')
    ex.answer(f"ip -n {HOST} -d -j link show", stdout=sample("host.link.json"))
    links = {link.name: link for link in state.links(ex)}
    assert ex.commands[:3] == [
        ("ip", "-d", "-j", "link", "show"),
        ("tc", "-j", "qdisc", "show"),
        ("ip", "-j", "netns", "list-id"),
    ]
    assert links["veth-blue"].peer == PeerInfo("veth-blue-br", HOST, index=4, netnsid=0)


def test_empty_output_means_nothing_there() -> None:
    ex = RecordingExecutor()  # answers every read with "" like a fresh dry run
    assert state.links(ex, "red") == []
    assert state.addresses(ex, "red") == []
    assert state.routes(ex, "red") == []
    assert snapshot(ScriptExecutor(), ["red"]) == Snapshot((state.NamespaceState("red"),))


def test_output_that_is_not_json_is_a_command_error() -> None:
    ex = RecordingExecutor()
    ex.answer("ip -n red -j addr show", stdout="1: lo: <LOOPBACK>")
    with pytest.raises(CommandError, match="not JSON"):
        state.addresses(ex, "red")


def test_bad_names_are_refused_before_any_read() -> None:
    ex = RecordingExecutor()
    with pytest.raises(ValidationError, match="namespace"):
        state.links(ex, "bad name")
    with pytest.raises(ValidationError, match="bridge"):
        state.bridge_ports(ex, "-v", "red")
    with pytest.raises(ValidationError, match="namespace"):
        snapshot(ex, ["red", "a/b"])
    assert ex.commands == []


# -- bridge ports ------------------------------------------------------------------
def test_bridge_ports(ex: RecordingExecutor) -> None:
    ex.answer(f"ip -n {HOST} -d -j link show master v-net-0", stdout=sample("host.ports.json"))
    ports = state.bridge_ports(ex, "v-net-0", HOST)
    assert [p.name for p in ports] == ["veth-red-br", "veth-blue-br"]
    assert {p.master for p in ports} == {"v-net-0"}
    assert [p.peer.namespace for p in ports if p.peer] == [RED, BLUE]


def test_bridge_ports_method(ex: RecordingExecutor) -> None:
    ex.answer(f"ip -n {HOST} -d -j link show master v-net-0", stdout=sample("host.ports.json"))
    ports = Bridge("v-net-0", HOST, executor=ex).ports()
    assert [p.name for p in ports] == ["veth-red-br", "veth-blue-br"]
    assert ex.commands[0] == ("ip", "-n", HOST, "-d", "-j", "link", "show", "master", "v-net-0")


# -- addresses -------------------------------------------------------------------
def test_addresses_as_cidrs(ex: RecordingExecutor) -> None:
    found = state.addresses(ex, RED)
    assert AddressInfo("veth-red", "192.168.15.1/24", "inet", "global") in found
    assert AddressInfo("veth-red", "fd00:15::1/64", "inet6", "global") in found
    assert AddressInfo("lo", "127.0.0.1/8", "inet", "host") in found
    link_local = [a for a in found if a.scope == "link"]
    assert [a.interface for a in link_local] == ["veth-red"]
    assert link_local[0].address.startswith("fe80::")


def test_bridge_address(ex: RecordingExecutor) -> None:
    found = state.addresses(ex, HOST)
    assert [a.address for a in found if a.interface == "v-net-0" and a.family == "inet"] == [
        "192.168.15.5/24"
    ]


# -- routes ----------------------------------------------------------------------
def test_routes_both_families(ex: RecordingExecutor) -> None:
    found = state.routes(ex, RED)
    assert found[0] == RouteInfo("default", "192.168.15.5", "veth-red", "boot", "global", "inet")
    assert RouteInfo("10.20.0.0/16", "192.168.15.2", "veth-red", "boot", "global", "inet") in found
    assert RouteInfo("192.168.15.0/24", None, "veth-red", "kernel", "link", "inet") in found
    assert RouteInfo("fd00:99::/64", "fd00:15::2", "veth-red", "boot", "global", "inet6") in found
    assert [r.family for r in found] == ["inet"] * 3 + ["inet6"] * 3
    assert ex.commands == [
        ("ip", "-n", RED, "-j", "route", "show"),
        ("ip", "-n", RED, "-6", "-j", "route", "show"),
    ]


def test_host_routes_get_a_prefix_length() -> None:
    ex = RecordingExecutor()
    ex.answer("ip -n x -j route show", stdout='[{"dst":"10.8.0.7","dev":"d0","scope":"link"}]')
    ex.answer("ip -n x -6 -j route show", stdout='[{"dst":"fd00::7","dev":"d0"}]')
    assert [r.destination for r in state.routes(ex, "x")] == ["10.8.0.7/32", "fd00::7/128"]


# -- Namespace methods -----------------------------------------------------------
def test_namespace_reader_methods(ex: RecordingExecutor) -> None:
    blue = Namespace(BLUE, executor=ex)
    assert [link.name for link in blue.links()] == ["lo", "veth-blue", "blue-red"]
    assert "192.168.15.2/24" in [a.address for a in blue.addresses()]
    assert [r.destination for r in blue.routes() if r.family == "inet"] == ["192.168.15.0/24"]


# -- snapshot --------------------------------------------------------------------
def test_snapshot_reads_each_namespace_once(ex: RecordingExecutor) -> None:
    snap = snapshot(ex, [HOST, RED, BLUE, RED])
    assert [state.name for state in snap] == [HOST, RED, BLUE]
    assert len(ex.commands) == len(set(ex.commands))
    assert snap[RED].link("veth-red").peer == PeerInfo("veth-red-br", HOST, index=3, netnsid=0)
    assert snap[HOST].addresses_of("v-net-0")[0] == "192.168.15.5/24"
    assert RED in snap and "nope" not in snap
    with pytest.raises(KeyError):
        snap["nope"]


def test_snapshot_round_trips_through_json(ex: RecordingExecutor) -> None:
    snap = snapshot(ex, [HOST, RED, BLUE])
    data = json.loads(snap.to_json())
    assert data["namespaces"][1]["name"] == RED
    assert data["namespaces"][1]["links"][1]["peer"]["namespace"] == HOST
    assert Snapshot.from_json(snap.to_json()) == snap
    assert Snapshot.from_dict(snap.to_dict()) == snap


def test_snapshots_compare(ex: RecordingExecutor) -> None:
    before = snapshot(ex, [HOST, RED])
    same = snapshot(ex, [HOST, RED])
    assert before == same
    changed = RecordingExecutor()
    answer_lab(changed)
    links, addresses, _, routes6 = read_sample(RED).splitlines()
    without_routes = "\n".join([links, addresses, "[]", routes6]) + "\n"
    changed.answer(f"ip -n {RED} -d -j -force -batch -", stdout=without_routes)
    assert snapshot(changed, [HOST, RED]) != before


def test_records_are_immutable() -> None:
    link = LinkInfo("a", "veth", "UP", 1500)
    with pytest.raises(AttributeError):
        link.name = "b"  # type: ignore[misc]
