"""Link shaping with a fake executor: units, the exact argv of every form, the kernel
check, the rollback, reading qdiscs back, topology files and pictures.  No root."""

from __future__ import annotations

import json
import pickle
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from narrow import veth

from netns_kit import (
    KernelFeatureMissingError,
    Lab,
    NetnsKitError,
    QdiscInfo,
    RecordingExecutor,
    ScriptExecutor,
    Shape,
    ValidationError,
    VethPair,
    render,
    units,
)
from netns_kit.engine.runner import Runner
from netns_kit.errors import CommandError, command_error
from netns_kit.objects import shaping
from netns_kit.readback.reader import LinkInfo, NamespaceState, Snapshot
from netns_kit.readback.snapshot import snapshot
from netns_kit.spec import LinkSpec, Topology
from netns_kit.topology import TopologyError, from_dict, to_dict

from ..conftest import lines, make_lab

FIXTURES = Path(__file__).parent.parent / "fixtures"
UNKNOWN = "Error: Specified qdisc kind is unknown.\n"
TBF_PROBE = "unshare --net tc qdisc add dev lo root tbf rate 1mbit burst 3028 latency 50ms"
NETEM_PROBE = "unshare --net tc qdisc add dev lo root netem delay 1ms"


def no_netem(ex: RecordingExecutor) -> None:
    """The fake kernel answers like the test machine's: tbf yes, netem no."""
    ex.answer(shlex.split(NETEM_PROBE), stderr=UNKNOWN, returncode=2)
    ex.answer(["tc", "-n", "red", "qdisc", "replace", "dev", "veth-red", "root", "netem"],
              stderr=UNKNOWN, returncode=2)  # fmt: skip


def pair_lab(ex: RecordingExecutor, state: Path) -> Lab:
    lab = make_lab(ex, state)
    lab.namespace("red")
    lab.namespace("blue")
    return lab


def since(ex: RecordingExecutor, start: int) -> list[str]:
    return lines(ex.commands[start:])


# -- units ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "bits"),
    [
        ("10mbit", 10_000_000),
        ("10Mbit", 10_000_000),  # tc's own spelling, case does not matter
        ("1.5gbit", 1_500_000_000),
        (" 20kbit ", 20_000),
        ("1kibit", 1024),
        ("2mibit", 2 * 1024**2),
        ("1mbps", 8_000_000),  # tc's bps are bytes per second
        ("100bit", 100),
        (5_000_000, 5_000_000),  # a number is bits per second
        (2.5e6, 2_500_000),
        ("1tbit", 10**12),
    ],
)
def test_rate_units(given: object, bits: int) -> None:
    assert units.rate(given) == bits


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("fast", "is not a rate"),
        ("10", "has no unit"),
        ("10xbit", "unknown unit 'xbit'"),
        ("10%", "unknown unit '%'"),
        ("-1mbit", "is not a rate"),
        (-5, "is negative"),
        (0, "between 8bit"),
        ("7bit", "between 8bit"),
        ("2tbit", "between 8bit"),
        (True, "is not a rate"),
        (float("nan"), "is not a rate"),
        (float("inf"), "is not a rate"),
        (None, "is not a rate"),
        (["10mbit"], "is not a rate"),
    ],
)
def test_bad_rates(given: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)) as raised:
        units.rate(given)
    assert raised.value.field == "rate"


@pytest.mark.parametrize(
    ("given", "us"),
    [
        ("20ms", 20_000),
        ("1.5s", 1_500_000),
        ("500us", 500),
        ("2msec", 2000),
        ("3secs", 3_000_000),
        (0.02, 20_000),  # a number is seconds
        (1, 1_000_000),
        ("0ms", 0),
        (0, 0),
    ],
)
def test_time_units(given: object, us: int) -> None:
    assert units.duration(given) == us


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("20", "has no unit"),  # tc would read microseconds
        ("-10ms", "is not a time"),
        (-0.01, "is negative"),
        ("2h", "unknown unit 'h'"),
        (3601, "longer than an hour"),
        ("0.1us", "shorter than a microsecond"),
        ("soon", "is not a time"),
        (False, "is not a time"),
    ],
)
def test_bad_times(given: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)):
        units.duration(given, "delay")


@pytest.mark.parametrize(("given", "value"), [(1, 1.0), (0.5, 0.5), ("1%", 1.0), ("2.5", 2.5)])
def test_percent(given: object, value: float) -> None:
    assert units.percent(given) == value


@pytest.mark.parametrize("given", [101, -1, "101%", "1%%", "lots", "1 percent", True])
def test_bad_percent(given: object) -> None:
    with pytest.raises(ValidationError) as raised:
        units.percent(given)
    assert raised.value.field == "loss"


@pytest.mark.parametrize(
    ("bits", "text"),
    [(10_000_000, "10mbit"), (1_500_000, "1500kbit"), (10**9, "1gbit"), (123, "123bit")],
)
def test_rate_text(bits: int, text: str) -> None:
    assert units.rate_text(bits) == text
    assert units.rate(text) == bits  # what it writes, it reads back


@pytest.mark.parametrize(
    ("us", "text"), [(20_000, "20ms"), (1_000_000, "1s"), (1500, "1500us"), (0, "0ms")]
)
def test_time_text(us: int, text: str) -> None:
    assert units.duration_text(us) == text
    assert units.duration(text) == us


# -- the Shape value ----------------------------------------------------------------------
def test_a_rate_alone_is_tbf_with_its_burst() -> None:
    shape = Shape.of(rate="20mbit")
    assert shape == Shape(rate=20_000_000)
    assert shape.kind == "tbf"
    # 20 mbit: 2500 bytes a millisecond, less than two full frames
    assert shape.qdisc_args() == (
        "tbf", "rate", "20mbit", "burst", "3028", "latency", "50ms",
    )  # fmt: skip
    assert shaping.burst(10**9) == 125_000  # 1 gbit: a millisecond of traffic
    assert shaping.burst(10**6, mtu=9000) == 2 * 9014  # two jumbo frames
    assert shape.label == "20mbit"


def test_delay_jitter_loss_and_rate_are_netem() -> None:
    shape = Shape.of(rate="10mbit", delay="20ms", jitter=0.005, loss="1%")
    assert shape == Shape(10_000_000, 20_000, 5_000, 1.0)
    assert shape.kind == "netem"
    assert shape.qdisc_args() == (
        "netem", "delay", "20ms", "5ms", "loss", "1%", "rate", "10mbit",
    )  # fmt: skip
    assert shape.label == "10mbit 20ms±5ms 1%"
    assert shape.settings() == {"rate": "10mbit", "delay": "20ms", "jitter": "5ms", "loss": 1.0}
    assert Shape.of(**shape.settings()) == shape  # the settings give the same shape
    assert Shape.of(loss=0.5).qdisc_args() == ("netem", "loss", "0.5%")  # type: ignore[union-attr]
    assert Shape.of(delay="10ms").qdisc_args() == ("netem", "delay", "10ms")  # type: ignore[union-attr]


def test_nothing_given_is_no_shape() -> None:
    assert Shape.of() is None
    assert shaping.given() == (None, "both")


@pytest.mark.parametrize(
    ("options", "field", "reason"),
    [
        ({"jitter": "5ms"}, "jitter", "needs a delay"),
        ({"delay": "5ms", "jitter": "10ms"}, "jitter", "larger than the delay"),
        ({"direction": "a->b"}, "direction", "nothing shapes the link"),
        ({"rate": "1mbit", "direction": "up"}, "direction", "is not 'both'"),
        ({"rate": "1mbit", "direction": None}, "direction", "is not 'both'"),
        ({"delay": -0.5}, "delay", "negative"),
        ({"loss": 150}, "loss", "from 0 to 100"),
        ({"rate": "fast"}, "rate", "is not a rate"),
    ],
)
def test_impossible_shapings(options: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(reason)) as raised:
        shaping.given(**options)
    assert raised.value.field == field


# -- building a shaped link: exact argv ---------------------------------------------------
def test_link_with_a_rate_probes_then_shapes_both_ends(ex: RecordingExecutor, state: Path) -> None:
    with pair_lab(ex, state) as lab:
        start, runs = len(ex.commands), len(ex.runs)
        pair = veth(
            lab.link("red", "blue", addresses=("10.0.0.1/24", "10.0.0.2/24"), rate="10mbit")
        )
        assert since(ex, start) == [
            TBF_PROBE,  # first: does the kernel have tbf?
            "ip link add name veth-red netns red type veth peer name veth-blue netns blue",
            "ip -n red link set dev veth-red alias netns-kit:t",
            "ip -n red addr add 10.0.0.1/24 dev veth-red",
            "ip -n red link set dev veth-red addrgenmode none",
            "ip -n red link set dev veth-red up",
            "tc -n red qdisc replace dev veth-red root tbf rate 10mbit burst 3028 latency 50ms",
            "ip -n blue link set dev veth-blue alias netns-kit:t",
            "ip -n blue addr add 10.0.0.2/24 dev veth-blue",
            "ip -n blue link set dev veth-blue addrgenmode none",
            "ip -n blue link set dev veth-blue up",
            "tc -n blue qdisc replace dev veth-blue root tbf rate 10mbit burst 3028 latency 50ms",
        ]
        # tc rides a batch of its own per namespace: `tc -n NS -batch -`
        assert [shlex.join(r.argv) for r in ex.runs[runs:]] == [
            TBF_PROBE,
            "ip -batch -",
            "ip -n red -batch -",
            "tc -n red -batch -",
            "ip -n blue -batch -",
            "tc -n blue -batch -",
        ]
        assert (pair.shaping, pair.direction) == (Shape(rate=10_000_000), "both")
        spec = lab.topology().links[0]
        assert (spec.shape, spec.direction) == (Shape(rate=10_000_000), "both")
        # the probe is asked once per executor
        start = len(ex.commands)
        lab.namespace("green")
        lab.link("red", "green", rate="1mbit")
        assert TBF_PROBE not in since(ex, start)
        # the qdiscs go with the links: teardown has nothing of tc
        assert not any(c.argv[0] == "tc" for c in lab.teardown_commands())


def test_netem_argv_and_mtu_sized_burst(ex: RecordingExecutor, state: Path) -> None:
    with pair_lab(ex, state) as lab:
        start = len(ex.commands)
        lab.link("red", "blue", delay="20ms", jitter="5ms", loss=1, rate="10mbit")
        assert since(ex, start)[0] == NETEM_PROBE
        assert [c for c in since(ex, start) if c.startswith("tc")] == [
            "tc -n red qdisc replace dev veth-red root netem delay 20ms 5ms loss 1% rate 10mbit",
            "tc -n blue qdisc replace dev veth-blue root netem delay 20ms 5ms loss 1% rate 10mbit",
        ]
        start = len(ex.commands)
        lab.namespace("green")
        lab.link("red", "green", rate="1mbit", mtu=9000)
        assert [c for c in since(ex, start) if c.startswith("tc")] == [
            "tc -n red qdisc replace dev red-green root tbf rate 1mbit burst 18028 latency 50ms",
            "tc -n green qdisc replace dev green-red root tbf rate 1mbit burst 18028 latency 50ms",
        ]


@pytest.mark.parametrize(
    ("a", "b", "direction", "shaped"),
    [
        ("red", "br0", "a->b", "tc -n red qdisc replace dev veth-red root"),
        ("red", "br0", "b->a", "tc qdisc replace dev veth-red-br root"),
        # the bridge given first: a->b is still bridge -> red, the bridge port's egress
        ("br0", "red", "a->b", "tc qdisc replace dev veth-red-br root"),
        ("br0", "red", "b->a", "tc -n red qdisc replace dev veth-red root"),
    ],
)
def test_one_way_shaping_to_a_bridge(
    a: str, b: str, direction: str, shaped: str, ex: RecordingExecutor, state: Path
) -> None:
    with pair_lab(ex, state) as lab:
        lab.bridge("br0")
        start = len(ex.commands)
        pair = veth(lab.link(a, b, rate="5mbit", direction=direction))
        tc = [c for c in since(ex, start) if c.startswith("tc")]
        assert tc == [f"{shaped} tbf rate 5mbit burst 3028 latency 50ms"]
        # the pair's own words: a is its first end, red's
        assert pair.direction == ("a->b" if shaped.startswith("tc -n red") else "b->a")


def test_missing_netem_changes_nothing(ex: RecordingExecutor, state: Path) -> None:
    no_netem(ex)
    with pair_lab(ex, state) as lab:
        start, held = len(ex.commands), len(lab.resources)
        with pytest.raises(KernelFeatureMissingError) as raised:
            lab.link("red", "blue", delay="10ms")
        assert since(ex, start) == [NETEM_PROBE]  # only the question was asked
        assert len(lab.resources) == held
        error = raised.value
        assert isinstance(error, NetnsKitError) and isinstance(error, CommandError)
        assert error.module == "sch_netem"
        assert "modprobe sch_netem" in str(error) and "CONFIG_NET_SCH_NETEM" in str(error)
        assert "Specified qdisc kind is unknown" in str(error)
        # and again: a missing feature is asked about each time, never cached
        with pytest.raises(KernelFeatureMissingError):
            lab.link("red", "blue", loss=1)
        assert since(ex, start) == [NETEM_PROBE, NETEM_PROBE]


def test_missing_netem_in_a_batch_runs_nothing(ex: RecordingExecutor, state: Path) -> None:
    no_netem(ex)
    with pair_lab(ex, state) as lab:
        start = len(ex.commands)
        with pytest.raises(KernelFeatureMissingError), lab.batch():
            lab.namespace("green")
            lab.link("red", "green", delay="10ms")
        assert since(ex, start) == [NETEM_PROBE]


def test_a_qdisc_the_probe_missed_rolls_the_link_back(ex: RecordingExecutor, state: Path) -> None:
    """The probe could not tell (it proves nothing when it cannot run); tc's own
    answer is mapped to the same error, and the half-made link is deleted."""
    ex.answer(shlex.split(NETEM_PROBE), stderr="unshare: unshare failed: Operation not permitted",
              returncode=1)  # fmt: skip
    no_netem_tc = ["tc", "-n", "red", "qdisc", "replace", "dev", "veth-red", "root", "netem"]
    ex.answer(no_netem_tc, stderr=UNKNOWN, returncode=2)
    with pair_lab(ex, state) as lab:
        start = len(ex.commands)
        with pytest.raises(KernelFeatureMissingError, match="sch_netem"):
            lab.link("red", "blue", delay="10ms")
        assert since(ex, start)[-1] == "ip -n red link delete dev veth-red"  # rolled back
        assert lab.topology().links == ()


# -- changing it while the lab runs --------------------------------------------------------
def test_shape_replaces_and_unshape_deletes(ex: RecordingExecutor, state: Path) -> None:
    with pair_lab(ex, state) as lab:
        pair = veth(lab.link("red", "blue", rate="20mbit"))
        start = len(ex.commands)
        pair.shape(rate="5mbit")
        assert since(ex, start) == [
            "tc -n red qdisc replace dev veth-red root tbf rate 5mbit burst 3028 latency 50ms",
            "tc -n blue qdisc replace dev veth-blue root tbf rate 5mbit burst 3028 latency 50ms",
        ]
        start = len(ex.commands)
        pair.shape(rate="5mbit", direction="a->b")  # blue's end no longer shaped
        assert since(ex, start) == ["tc -n blue qdisc del dev veth-blue root"]
        assert (pair.shaping, pair.direction) == (Shape(rate=5_000_000), "a->b")
        assert lab.topology().links[0].direction == "a->b"  # pictures follow
        start = len(ex.commands)
        pair.unshape()
        assert since(ex, start) == ["tc -n red qdisc del dev veth-red root"]
        assert pair.shaping is None and lab.topology().links[0].shape is None
        start = len(ex.commands)
        pair.unshape()  # nothing shaped: nothing to do
        assert since(ex, start) == []


def test_shape_without_settings_is_refused(ex: RecordingExecutor) -> None:
    pair = VethPair("a", "b", "red", "blue", executor=ex)
    with pytest.raises(ValidationError, match="unshape"):
        pair.shape()
    with pytest.raises(ValidationError, match="nothing shapes"):
        pair.shape(direction="b->a")
    assert ex.commands == []


def test_a_failed_change_puts_the_first_end_back(ex: RecordingExecutor) -> None:
    pair = VethPair("a", "b", "red", "blue", executor=ex)
    pair.shape(rate="20mbit")
    start = len(ex.commands)
    ex.fail_at(start + 1, stderr="RTNETLINK answers: No buffer space available")
    with pytest.raises(CommandError, match="No buffer space"):
        pair.shape(rate="5mbit")
    assert since(ex, start) == [
        "tc -n red qdisc replace dev a root tbf rate 5mbit burst 3028 latency 50ms",
        "tc -n blue qdisc replace dev b root tbf rate 5mbit burst 3028 latency 50ms",
        "tc -n red qdisc replace dev a root tbf rate 20mbit burst 3028 latency 50ms",  # back
    ]
    assert pair.shaping == Shape(rate=20_000_000)  # as it still is


def test_a_failed_first_shaping_removes_what_it_added(ex: RecordingExecutor) -> None:
    pair = VethPair("a", "b", "red", "blue", executor=ex)
    ex.fail_at(2, stderr="Cannot find device")  # [0] is the probe, [1] red's end
    with pytest.raises(CommandError):
        pair.shape(loss=5)
    assert lines(ex.commands) == [
        NETEM_PROBE,
        "tc -n red qdisc replace dev a root netem loss 5%",
        "tc -n blue qdisc replace dev b root netem loss 5%",
        "tc -n red qdisc del dev a root",
    ]
    assert pair.shaping is None


def test_shape_in_a_dry_run_writes_tc_lines() -> None:
    dry = ScriptExecutor()
    VethPair("a", "b", "red", "blue", executor=dry).shape(rate="1gbit", direction="b->a")
    assert dry.script().splitlines()[2:] == [
        "tc -n blue qdisc replace dev b root tbf rate 1gbit burst 125000 latency 50ms"
    ]  # the probe is a read: a dry run answers it like a machine that has tbf


# -- faults ---------------------------------------------------------------------------------
ROUTES = '[{"dst":"10.9.0.0/16","gateway":"10.0.0.2","dev":"a","flags":[]},' \
    '{"dst":"10.0.0.0/24","dev":"a","protocol":"kernel","scope":"link"}]'  # fmt: skip
ROUTES6 = '[{"dst":"fd00:9::/64","gateway":"fd00::2","dev":"a","metric":1024},' \
    '{"dst":"fe80::/64","dev":"a","protocol":"kernel"}]'  # fmt: skip
ADDRS = (
    '[{"ifname":"a","addr_info":[{"family":"inet","local":"10.0.0.1","prefixlen":24},'
    '{"family":"inet6","local":"fd00::1","prefixlen":64,"scope":"global"},'
    '{"family":"inet6","local":"fe80::1","prefixlen":64,"scope":"link"}]}]'
)


def test_down_and_up_put_back_what_the_kernel_removed(ex: RecordingExecutor) -> None:
    ex.answer("ip -n red -j addr show", stdout=ADDRS)
    ex.answer("ip -n red -j route show", stdout=ROUTES)
    ex.answer("ip -n red -6 -j route show", stdout=ROUTES6)
    pair = VethPair("a", "b", "red", "blue", executor=ex)
    pair.down("a")
    assert lines(ex.commands)[-1] == "ip -n red link set dev a down"
    start = len(ex.commands)
    pair.down("a")  # already down: what it lost is not read again (it is gone now)
    assert since(ex, start) == ["ip -n red link set dev a down"]
    start = len(ex.commands)
    pair.up("a")
    assert since(ex, start) == [
        "ip -n red link set dev a up",
        "ip -n red addr add fd00::1/64 dev a nodad",
        "ip -n red route replace 10.9.0.0/16 via 10.0.0.2 dev a",
        "ip -n red -6 route replace fd00:9::/64 via fd00::2 dev a",
    ]
    start = len(ex.commands)
    pair.up("a")
    assert since(ex, start) == ["ip -n red link set dev a up"]  # put back once


def test_down_both_ends_and_by_name(ex: RecordingExecutor) -> None:
    pair = VethPair("a", "b", "red", "blue", executor=ex)
    pair.down()
    assert [c for c in lines(ex.commands) if "link set" in c] == [
        "ip -n red link set dev a down",
        "ip -n blue link set dev b down",
    ]
    start = len(ex.commands)
    pair.up("b")
    assert since(ex, start) == ["ip -n blue link set dev b up"]
    with pytest.raises(ValidationError, match="is not 'both'"):
        pair.down("c")


# -- reading it back ------------------------------------------------------------------------
def test_parse_real_tbf() -> None:
    qdiscs = shaping.parse_qdiscs(json.loads((FIXTURES / "red.qdisc.json").read_text()))
    assert qdiscs == {  # noqueue (lo's) is no shaping; tc rounds the burst
        "x0": QdiscInfo("tbf", rate=20_000_000, burst=3027, latency=50_000)
    }
    assert qdiscs["x0"].shape == Shape(rate=20_000_000)
    assert qdiscs["x0"].label == "20mbit"


def test_parse_netem_from_iproute2s_source() -> None:
    qdiscs = shaping.parse_qdiscs(json.loads((FIXTURES / "netem.qdisc.json").read_text()))
    info = qdiscs["veth-red"]
    assert info == QdiscInfo(
        "netem", rate=10_000_000, delay=20_000, jitter=5_000, loss=1.0, limit=1000
    )
    assert info.shape == Shape.of(rate="10mbit", delay="20ms", jitter="5ms", loss=1)
    assert info.label == "10mbit 20ms±5ms 1%"
    assert shaping.parse_qdisc({"kind": "htb", "options": {"r2q": 10}}).label == "htb"


def test_links_carry_their_qdisc_and_snapshots_keep_it(ex: RecordingExecutor) -> None:
    link_entry = (
        '[{"ifindex":2,"ifname":"x0","flags":["UP"],"mtu":1500,"operstate":"UP",'
        '"qdisc":"tbf","linkinfo":{"info_kind":"veth"}}]'
    )
    ex.answer("ip -n red -d -j link show", stdout=link_entry)
    # a snapshot reads links, addresses and routes in one batch; ip names the link's
    # root qdisc (tbf, not noqueue), so tc is asked for its details
    ex.answer("ip -n red -d -j -force -batch -", stdout=f"{link_entry}\n[]\n[]\n[]\n")
    ex.answer("tc -n red -j qdisc show", stdout=(FIXTURES / "red.qdisc.json").read_text())

    snap = snapshot(ex, ["red"])
    assert ("tc", "-n", "red", "-j", "qdisc", "show") in ex.commands
    link = snap["red"].link("x0")
    assert link.qdisc == QdiscInfo("tbf", rate=20_000_000, burst=3027, latency=50_000)
    again = Snapshot.from_json(snap.to_json())
    assert again == snap and again["red"].link("x0").qdisc == link.qdisc
    assert render.table_rows(snap)[0].shaping == "20mbit"


def test_topology_of_a_running_lab_names_each_links_shaping() -> None:
    from netns_kit.readback.reader import PeerInfo
    from netns_kit.topology.observed import topology_of

    tbf = QdiscInfo("tbf", rate=5_000_000)
    red = NamespaceState(
        "red", (LinkInfo("a", "veth", "UP", 1500, peer=PeerInfo("b", "blue", 2, 0), qdisc=tbf),)
    )
    blue = NamespaceState(
        "blue", (LinkInfo("b", "veth", "UP", 1500, peer=PeerInfo("a", "red", 2, 0)),)
    )
    topo = topology_of(Snapshot((red, blue)), name="t", isolated=True, host_side="t-host")
    assert [(link.shape, link.direction) for link in topo.links] == [
        (Shape(rate=5_000_000), "a->b")
    ]
    assert shaping.link_shaping(tbf, tbf) == (Shape(rate=5_000_000), "both")
    assert shaping.link_shaping(None, tbf) == (Shape(rate=5_000_000), "b->a")
    assert shaping.link_shaping(None, QdiscInfo("htb")) == (None, "both")


# -- errors ---------------------------------------------------------------------------------
def test_unknown_qdisc_maps_to_kernel_feature_missing() -> None:
    argv = ("tc", "-n", "red", "qdisc", "replace", "dev", "x", "root", "netem", "delay", "1ms")
    error = command_error(argv, 2, "", UNKNOWN, module="sch_netem")
    assert isinstance(error, KernelFeatureMissingError)
    assert (error.kind, error.module) == ("netem", "sch_netem")
    assert "modprobe sch_netem" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.module == "sch_netem"


def test_a_shaping_command_says_which_module_it_needs() -> None:
    """The error names the module the command asked for when it was built: nothing
    reads it back from argv."""
    netem = shaping.shape_command("x", "red", Shape(delay=1000))
    assert netem.needs == "sch_netem"
    assert shaping.shape_command("x", "red", Shape(rate=1_000_000)).needs == "sch_tbf"
    assert shaping.shape_command("x", "red", None).needs is None
    ex = RecordingExecutor()
    ex.answer(("tc", "-n", "red", "qdisc", "replace"), stderr=UNKNOWN, returncode=2)
    with pytest.raises(KernelFeatureMissingError, match="sch_netem"):
        Runner(ex).run(netem)


def test_without_a_module_the_error_still_says_what_is_missing() -> None:
    error = command_error(("tc", "qdisc", "add"), 2, "", UNKNOWN)
    assert isinstance(error, KernelFeatureMissingError) and error.module is None
    assert "lacks the qdisc kind" in str(error)


# -- topology files -------------------------------------------------------------------------
def test_a_file_shapes_links() -> None:
    topo = from_dict(
        {
            "name": "t",
            "namespaces": ["red", "blue", "green"],
            "links": [
                {"a": "red", "b": "blue", "rate": "10mbit", "delay": "20ms", "loss": 1},
                {"a": "red", "b": "green", "rate": 1_000_000, "direction": "b->a"},
            ],
        }
    )
    first, second = topo.links
    assert (first.shape, first.direction) == (Shape(10_000_000, 20_000, None, 1.0), "both")
    assert (second.shape, second.direction) == (Shape(rate=1_000_000), "b->a")
    assert to_dict(topo)["links"] == [
        {"a": "red", "b": "blue", "rate": "10mbit", "delay": "20ms", "loss": 1.0},
        {"a": "red", "b": "green", "rate": "1mbit", "direction": "b->a"},
    ]
    assert from_dict(to_dict(topo)) == topo


def test_a_file_with_bad_shaping_lists_every_problem() -> None:
    links = [
        {"a": "red", "b": "blue", "rate": "fast", "delay": -1, "loss": 101, "direction": "up"},
        {"a": "red", "b": "blue", "names": ["p", "q"], "jitter": "5ms"},
        {"a": "red", "b": "blue", "names": ["r", "s"], "delay": "1ms", "jitter": "2ms"},
        {"a": "red", "b": "blue", "names": ["t", "u"], "direction": "a->b"},
        {"a": "red", "b": "blue", "names": ["v", "w"], "rate": "1mbit", "rates": "2mbit"},
    ]
    with pytest.raises(TopologyError) as raised:
        from_dict({"name": "t", "namespaces": ["red", "blue"], "links": links})
    assert raised.value.problems == [
        "links[4].rates: unknown key (did you mean 'rate'?)",
        "links[0].rate: 'fast' is not a rate: a number of bits per second or a string "
        "like '10mbit'",
        "links[0].delay: -1 is negative",
        "links[0].loss: 101 is not a percentage from 0 to 100",
        "links[0].direction: 'up' is not 'both', 'a->b' or 'b->a'",
        "links[1].jitter: '5ms' needs a delay: netem varies the delay",
        "links[2].jitter: '2ms' is larger than the delay (1ms): some packets would need a "
        "negative delay",
        "links[3].direction: 'a->b' is given, but nothing shapes the link (give rate, delay, "
        "jitter or loss)",
    ]


def test_a_shaped_topology_builds_in_batches(ex: RecordingExecutor, state: Path) -> None:
    topo = Topology(
        "t",
        isolated=True,
        namespaces=("red", "blue"),
        links=(LinkSpec("red", "blue", shape=Shape(rate=10**7), direction="a->b"),),
    )
    with Lab.from_topology(topo, executor=ex, state_dir=state) as lab:
        assert "tc -n red qdisc replace dev veth-red root tbf rate 10mbit burst 3028 latency "\
            "50ms" in lines(ex.commands)  # fmt: skip
        assert not any(c.startswith("tc -n blue") for c in lines(ex.commands))
        assert lab.topology().links[0].direction == "a->b"


# -- pictures and tables ----------------------------------------------------------------------
def shaped_topology() -> Topology:
    return Topology(
        "t",
        namespaces=("red", "blue"),
        bridges=(),
        links=(
            LinkSpec(
                "red", "blue", ("a", "b"), shape=Shape.of(rate="10mbit", delay="20ms", loss=1)
            ),
        ),
    )


def test_pictures_label_a_shaped_link() -> None:
    topo = shaped_topology()
    assert '"a -- b<br/>10mbit 20ms 1%"' in render.to_mermaid(topo)
    assert 'label="10mbit 20ms 1%"' in render.to_dot(topo)
    svg = render.to_svg(topo)
    ET.fromstring(svg)
    assert ">a: 10mbit 20ms 1%</text>" in svg
    one_way = Topology(
        "t",
        namespaces=("red", "blue"),
        links=(LinkSpec("red", "blue", ("a", "b"), shape=Shape(rate=10**6), direction="b->a"),),
    )
    assert "1mbit (blue-&gt;red)" in render.to_svg(one_way)


def test_cli_show_has_a_shaping_column() -> None:
    from netns_kit.cli import _show_text

    tbf = QdiscInfo("tbf", rate=5_000_000, burst=3027, latency=50_000)
    snap = Snapshot((NamespaceState("red", (LinkInfo("a", "veth", "UP", 1500, qdisc=tbf),)),))
    header, row = _show_text(snap).splitlines()[:2]
    assert header.split()[-1] == "SHAPING"
    assert row.split() == ["red", "a", "UP", "veth", "5mbit"]
