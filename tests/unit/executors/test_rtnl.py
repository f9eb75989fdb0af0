"""The rtnetlink path: which batch lines it takes, the bytes it sends, the words it gives back.

No kernel here: devices are looked up through a patched ``if_nametoindex`` and the
netlink socket is a fake that answers each request (tests/integration/test_rtnl_real.py
compares the real thing with ``ip -batch``).
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from typing import Any

import pytest
from pytest_mock import MockerFixture

from netns_kit import Command, ShellExecutor
from netns_kit.executors import nsfiles, rtnl

INDEXES = {"lo": 1, "eth0": 2, "br0": 3}


@pytest.fixture(autouse=True)
def devices(mocker: MockerFixture) -> None:
    def index(name: str) -> int:
        if name not in INDEXES:
            raise OSError(errno.ENODEV, "No such device")
        return INDEXES[name]

    mocker.patch("netns_kit.executors.rtnl.socket.if_nametoindex", side_effect=index)


# -- which lines ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("link set dev eth0 up", rtnl.LinkSet("eth0", up=True)),
        ("link set dev eth0 down", rtnl.LinkSet("eth0", up=False)),
        (
            "link set dev lo up alias netns-kit:x",
            rtnl.LinkSet("lo", up=True, alias="netns-kit:x"),
        ),
        ("link set dev eth0 master br0", rtnl.LinkSet("eth0", master="br0")),
        ("link set dev eth0 nomaster", rtnl.LinkSet("eth0", master="")),
        ("link set dev eth0 addrgenmode none", rtnl.LinkSet("eth0", addrgen_none=True)),
        (
            "addr add 10.0.0.5/16 dev eth0",
            rtnl.AddrAdd(ipaddress.ip_interface("10.0.0.5/16"), "eth0"),
        ),
        (
            "addr add fd00::1/64 dev eth0 nodad",
            rtnl.AddrAdd(ipaddress.ip_interface("fd00::1/64"), "eth0", nodad=True),
        ),
        (
            "route add default via 10.0.0.1",
            rtnl.RouteAdd(None, ipaddress.ip_address("10.0.0.1"), None),
        ),
        (
            "route add 10.2.0.0/16 via 10.0.0.1 dev eth0",
            rtnl.RouteAdd(
                ipaddress.ip_network("10.2.0.0/16"), ipaddress.ip_address("10.0.0.1"), "eth0"
            ),
        ),
        (
            "route add 10.3.0.0/24 dev eth0",
            rtnl.RouteAdd(ipaddress.ip_network("10.3.0.0/24"), None, "eth0"),
        ),
    ],
)
def test_known_shapes_are_taken(line: str, expected: rtnl.Request) -> None:
    assert rtnl.parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "link set dev eth0 mtu 1400",
        "link set eth0 up",  # without "dev": not what the library writes
        "link set dev eth0 up up",
        "link set dev eth0 addrgenmode eui64",
        "addr add 10.0.0.5 dev eth0",  # no prefix length
        "addr add 127.0.0.2/8 dev lo",  # ip gives it host scope
        "addr add 10.0.0.5/16 dev eth0 noprefixroute",
        "addr del 10.0.0.5/16 dev eth0",
        "route add 10.2.0.1/16 via 10.0.0.1",  # host bits set: ip's own error
        "route add 10.2.0.0/16 via fd00::1",  # a gateway of the other family (RTA_VIA)
        "route add 10.2.0.0/16 via 10.0.0.1 metric 5",
        "route add default dev eth0 via",
        "route replace default via 10.0.0.1",
        "netns add x",
        "",
    ],
)
def test_other_lines_go_to_ip(line: str) -> None:
    assert rtnl.parse(line) is None


def test_one_unknown_line_sends_the_whole_batch_to_ip() -> None:
    assert rtnl.parse_all(["link set dev eth0 up", "link set dev eth0 mtu 9000"]) is None
    assert rtnl.parse_all(["link set dev eth0 up"]) == [rtnl.LinkSet("eth0", up=True)]


# -- the bytes --------------------------------------------------------------------------
def attributes(body: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + 4 <= len(body):
        size, kind = struct.unpack_from("=HH", body, offset)
        found[kind] = body[offset + 4 : offset + size]
        offset += size + (-size % 4)
    return found


def test_link_set_is_one_newlink_with_flags_and_attributes() -> None:
    kind, flags, body = rtnl.message(rtnl.parse("link set dev eth0 up alias a:b master br0"), 1)  # type: ignore[arg-type]
    assert (kind, flags) == (16, 0)  # RTM_NEWLINK, no create
    family, _, index, ifi_flags, change = struct.unpack_from("=BxHiII", body)
    assert (family, index, ifi_flags, change) == (0, 2, 1, 1)  # IFF_UP in flags and change
    attrs = attributes(body, 16)
    assert attrs[20] == b"a:b\0"  # IFLA_IFALIAS
    assert attrs[10] == struct.pack("=I", 3)  # IFLA_MASTER: br0's index


def test_addrgenmode_none_is_nested_in_af_spec() -> None:
    _, _, body = rtnl.message(rtnl.LinkSet("eth0", addrgen_none=True), 1)
    assert struct.unpack_from("=BxHiII", body)[3:] == (0, 0)  # flags untouched
    inet6 = attributes(attributes(body, 16)[26], 0)[socket.AF_INET6]  # IFLA_AF_SPEC
    assert attributes(inet6, 0)[8] == b"\x01"  # IFLA_INET6_ADDR_GEN_MODE: none


def test_addr_add_sends_local_and_address_and_nodad() -> None:
    kind, flags, body = rtnl.message(rtnl.parse("addr add fd00::1/64 dev eth0 nodad"), 1)  # type: ignore[arg-type]
    assert (kind, flags) == (20, 0x600)  # RTM_NEWADDR, CREATE|EXCL
    family, length, ifa_flags, scope, index = struct.unpack_from("=BBBBI", body)
    assert (family, length, ifa_flags, scope, index) == (socket.AF_INET6, 64, 2, 0, 2)
    attrs = attributes(body, 8)
    packed = ipaddress.ip_address("fd00::1").packed
    assert attrs[2] == attrs[1] == packed  # IFA_LOCAL, IFA_ADDRESS
    assert attrs[8] == struct.pack("=I", 2)  # IFA_FLAGS: NODAD


@pytest.mark.parametrize(
    ("line", "family", "length", "scope", "attrs"),
    [
        ("route add default via 10.0.0.1", socket.AF_INET, 0, 0, {5: "10.0.0.1"}),
        ("route add 10.3.0.0/24 dev eth0", socket.AF_INET, 24, 253, {1: "10.3.0.0", 4: 2}),
        ("route add fd01::/64 via fd00::fe", socket.AF_INET6, 64, 0, {1: "fd01::", 5: "fd00::fe"}),
    ],
)
def test_route_add_is_a_main_table_boot_route(
    line: str, family: int, length: int, scope: int, attrs: dict[int, Any]
) -> None:
    kind, flags, body = rtnl.message(rtnl.parse(line), 1)  # type: ignore[arg-type]
    assert (kind, flags) == (24, 0x600)
    head = struct.unpack_from("=BBBBBBBBI", body)
    assert head == (family, length, 0, 0, 254, 3, scope, 1, 0)
    sent = attributes(body, 12)
    expected = {
        k: struct.pack("=i", v) if isinstance(v, int) else ipaddress.ip_address(v).packed
        for k, v in attrs.items()
    }
    assert sent == expected


# -- the words back ---------------------------------------------------------------------
class FakeNetlink:
    """A netlink socket: answers request ``seq`` with ``errors.get(seq, 0)``."""

    def __init__(self, errors: dict[int, tuple[int, str | None]]) -> None:
        self.errors = errors
        self.sent: list[bytes] = []
        self.options: list[tuple[int, int, int]] = []

    def __enter__(self) -> FakeNetlink:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options.append((level, name, value))

    def bind(self, _: object) -> None:
        pass

    def send(self, data: bytes) -> int:
        self.sent.append(data)
        return len(data)

    def recv(self, _: int) -> bytes:
        seq = struct.unpack_from("=IHHII", self.sent[-1])[3]
        code, said = self.errors.get(seq, (0, None))
        tlvs = b""
        if said is not None:
            text = said.encode() + b"\0"
            tlvs = struct.pack("=HH", 4 + len(text), 1) + text + b"\0" * (-len(text) % 4)
        payload = struct.pack("=i", -code) + self.sent[-1][:16] + tlvs
        flags = 0x200 if tlvs else 0x100
        return struct.pack("=IHHII", 16 + len(payload), 2, flags, seq, 0) + payload


def run(
    mocker: MockerFixture, lines: list[str], errors: dict[int, Any], force: bool = False
) -> tuple[int, str, FakeNetlink]:
    fake = FakeNetlink(errors)
    mocker.patch("netns_kit.executors.rtnl.socket.socket", return_value=fake)
    requests = rtnl.parse_all(lines)
    assert requests is not None
    code, said = rtnl.run_batch(requests, force)
    return code, said, fake


def test_every_line_is_acknowledged_in_order(mocker: MockerFixture) -> None:
    code, said, fake = run(mocker, ["link set dev eth0 up", "addr add 10.0.0.1/24 dev eth0"], {})
    assert (code, said) == (0, "")
    assert [struct.unpack_from("=IHHII", m)[1:4] for m in fake.sent] == [(16, 5, 1), (20, 0x605, 2)]
    assert (270, 11, 1) in fake.options  # extended acks: the kernel's own words


def test_a_refused_line_stops_the_batch_with_ips_words(mocker: MockerFixture) -> None:
    lines = ["link set dev eth0 up", "addr add 10.0.0.1/24 dev eth0", "link set dev lo up"]
    code, said, fake = run(mocker, lines, {2: (errno.EEXIST, None)})
    assert code == 1
    assert said == "RTNETLINK answers: File exists\nCommand failed -:2\n"
    assert len(fake.sent) == 2  # the third line never went


def test_the_kernels_explanation_is_used_when_given(mocker: MockerFixture) -> None:
    lines = ["route add 10.9.0.0/24 via 192.0.2.1"]
    code, said, _ = run(mocker, lines, {1: (errno.EINVAL, "Nexthop has invalid gateway")})
    assert (code, said) == (1, "Error: Nexthop has invalid gateway.\nCommand failed -:1\n")


def test_forced_batches_go_on_and_report_each_failure(mocker: MockerFixture) -> None:
    lines = ["link set dev nothere up", "addr add 10.0.0.1/24 dev eth0", "link set dev lo up"]
    code, said, fake = run(mocker, lines, {2: (errno.EEXIST, None)}, force=True)
    assert code == 1
    assert said == (
        'Cannot find device "nothere"\nCommand failed -:1\n'
        "RTNETLINK answers: File exists\nCommand failed -:2\n"
    )
    assert len(fake.sent) == 2  # lines 2 and 3 (line 1 had no device to ask about)


def test_a_missing_master_ends_the_batch_as_ip_does(mocker: MockerFixture) -> None:
    code, said, fake = run(
        mocker, ["link set dev eth0 up", "link set dev eth0 master nope"], {}, True
    )
    assert code == 255
    assert said == 'Error: argument "nope" is wrong: Device does not exist\n\n'
    assert len(fake.sent) == 1


# -- the executor's choice --------------------------------------------------------------
def batch(lines: str, namespace: str = "red") -> Command:
    return Command(
        ("ip", "-n", namespace, "-batch", "-"),
        stdin=lines,
        namespace=namespace,
        inside=("ip", "-batch", "-"),
    )


@pytest.mark.real_executor
def test_the_shell_executor_takes_known_batches_only(mocker: MockerFixture) -> None:
    executor = ShellExecutor()
    assert executor._netlink_requests(batch("link set dev eth0 up\n")) == [
        rtnl.LinkSet("eth0", up=True)
    ]
    assert executor._netlink_requests(batch("link set dev eth0 mtu 1400\n")) is None
    single = Command(
        ("ip", "-n", "red", "link", "set", "dev", "eth0", "up"),
        namespace="red",
        inside=("ip", "link", "set", "dev", "eth0", "up"),
    )
    assert executor._netlink_requests(single) is None  # one command: ip's own exit codes
    mocker.patch.object(ShellExecutor, "NETLINK", False)
    assert executor._netlink_requests(batch("link set dev eth0 up\n")) is None


# -- named namespaces (nsfiles) ---------------------------------------------------------
def test_only_whole_batches_of_netns_add_and_delete_are_taken() -> None:
    assert nsfiles.parse(["netns add a", "netns delete b"]) == [("add", "a"), ("delete", "b")]
    assert nsfiles.parse(["netns add a", "link add x type bridge"]) is None
    assert nsfiles.parse(["netns add a/b"]) is None  # ip's own refusal, in ip's words
    assert nsfiles.parse(["netns exec a true"]) is None
    assert nsfiles.parse(["netns add"]) is None


@pytest.mark.real_executor
def test_the_shell_executor_takes_root_namespace_batches_only(mocker: MockerFixture) -> None:
    mocker.patch.object(ShellExecutor, "_can_setns", return_value=True)
    executor = ShellExecutor()
    root = Command(("ip", "-batch", "-"), stdin="netns add a\nnetns add b\n")
    assert executor._namespace_files(root) is None  # off unless asked for
    mocker.patch.object(ShellExecutor, "NAMESPACE_FILES", True)
    assert executor._namespace_files(root) == [("add", "a"), ("add", "b")]
    inside = Command(("ip", "-n", "x", "-batch", "-"), stdin="netns add a\n", namespace="x")
    assert executor._namespace_files(inside) is None
    mixed = Command(("ip", "-batch", "-"), stdin="netns add a\nlink add v type veth\n")
    assert executor._namespace_files(mixed) is None
    mocker.patch.object(ShellExecutor, "_can_setns", return_value=False)  # sudo, not root
    assert executor._namespace_files(root) is None
