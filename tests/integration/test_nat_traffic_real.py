"""NAT with real traffic, every variant a lab builds (issue 19, section 3).

Three namespaces of one isolated lab: ``in`` (a LAN, IPv4 and IPv6), ``r`` (the
router, a throwaway namespace: the machine's forwarding and iptables are never
touched) and ``out`` (the far side).  Each test sends traffic through ``r`` and
checks the source address the far end saw, and that the answer came back:

- an IPv6 masquerade (ip6tables): ``out`` sees the router's address, not ``in``'s;
- a UDP port forward: ``out`` talks to the router's port, ``in`` answers and sees
  ``out``'s own address;
- a port-range forward: each port of the range reaches the same port on ``in``;
- an IPv6 ``[addr]:port`` target: ``out`` talks to the router's IPv6 address.
Lab names start with ``t19n``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from netns_kit import Lab

from .conftest import Kernel, sh

pytestmark = pytest.mark.skipif(
    shutil.which("ip6tables") is None or shutil.which("ss") is None,
    reason="NAT traffic tests need ip6tables and ss (apt-get install iptables iproute2)",
)

IN4, R_IN4, R_OUT4, OUT4 = "10.219.1.2", "10.219.1.1", "10.219.2.1", "10.219.2.2"
IN6, R_IN6, R_OUT6, OUT6 = "fd19:1::2", "fd19:1::1", "fd19:2::1", "fd19:2::2"

# One connection (TCP) or datagram (UDP): prints the peer's address, echoes once.
SERVER = """
import socket, sys
proto, family, port, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
fam = socket.AF_INET6 if family == "6" else socket.AF_INET
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(fam, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::" if family == "6" else "0.0.0.0", port))
s.settimeout(wait)
try:
    if proto == "tcp":
        s.listen(1)
        conn, peer = s.accept()
        conn.settimeout(wait)
        data = conn.recv(512)
        print(peer[0], flush=True)
        conn.sendall(data)
        conn.close()
    else:
        data, peer = s.recvfrom(512)
        print(peer[0], flush=True)
        s.sendto(data, peer)
except TimeoutError:
    print("nothing", flush=True)
"""

# Tries until the echo comes back or time is up; prints "echo" or "no echo".
CLIENT = """
import socket, sys, time
proto, family, host, port, seconds = sys.argv[1:6]
fam = socket.AF_INET6 if family == "6" else socket.AF_INET
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
end = time.monotonic() + float(seconds)
while time.monotonic() < end:
    s = socket.socket(fam, kind)
    s.settimeout(0.3)
    try:
        if proto == "tcp":
            s.connect((host, int(port)))
            s.sendall(b"netns-kit")
        else:
            s.sendto(b"netns-kit", (host, int(port)))
        if s.recv(512) == b"netns-kit":
            print("echo")
            break
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
else:
    print("no echo")
"""


@attrs.frozen
class Net:
    lab: Lab
    r: str
    inside: str
    outside: str
    family: str


@pytest.fixture(params=["4", "6"])
def net(request: pytest.FixtureRequest, uid: str, kernel: Kernel) -> Iterator[Net]:
    """The three namespaces, addressed in one family (IPv6 addresses given to the lab
    keep the links' link-local addresses, which neighbour discovery needs to forward)."""
    family = request.param
    inner, r_in, r_out, outer = (
        (IN4, R_IN4, R_OUT4, OUT4) if family == "4" else (IN6, R_IN6, R_OUT6, OUT6)
    )
    size = 24 if family == "4" else 64
    name = f"t19n{uid}"
    with Lab(name, isolated=True) as lab:
        r, inside, outside = (lab.namespace(f"{name}-{role}") for role in ("r", "in", "out"))
        lan = (f"{inner}/{size}", f"{r_in}/{size}")
        wan = (f"{r_out}/{size}", f"{outer}/{size}")
        lab.link(inside, r, addresses=lan, names=("eth0", "lan0"))
        lab.link(r, outside, addresses=wan, names=("wan0", "eth0"))
        lab.route("default", via=r_in, namespace=inside)
        yield Net(lab, r.name, inside.name, outside.name, family)
    left = [n for n in kernel.namespaces() if n.startswith(name)]
    assert left == [], left


def family(which: str) -> pytest.MarkDecorator:
    """Run a test on the fixture's ``which`` family only."""
    return pytest.mark.parametrize("net", [which], indirect=True)


def _listening(ns: str, proto: str, port: int) -> bool:
    flag = "-Hltn" if proto == "tcp" else "-Hlun"
    return bool(sh("ip", "netns", "exec", ns, "ss", flag, f"sport = :{port}").strip())


def talk(
    server_ns: str, client_ns: str, proto: str, family: str, to: str, port: int, listen: int
) -> tuple[str, str]:
    """A server in ``server_ns`` on ``listen``, a client in ``client_ns`` sending to
    ``to``:``port``: (the source address the server saw, the client's word)."""
    seconds = 8.0

    def serve() -> str:
        argv = ["ip", "netns", "exec", server_ns, sys.executable, "-c", SERVER]
        done = subprocess.run(
            [*argv, proto, family, str(listen), str(seconds + 5)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        return done.stdout.strip() or done.stderr.strip()

    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(serve)
        deadline = time.monotonic() + 30
        while not _listening(server_ns, proto, listen):  # bounded wait for the bind
            assert time.monotonic() < deadline, f"no server on {listen} in {server_ns}"
            time.sleep(0.02)
        client = sh(
            "ip", "netns", "exec", client_ns, sys.executable, "-c", CLIENT,
            proto, family, to, str(port), str(seconds),
        )  # fmt: skip
        return server.result(), client.strip()


@family("6")
def test_ipv6_masquerade_shows_the_routers_address(net: Net, kernel: Kernel) -> None:
    net.lab.masquerade("fd19:1::/64", "wan0", namespace=net.r)
    assert kernel.sysctl("net.ipv6.conf.all.forwarding", net.r) == "1"
    rules = sh("ip", "netns", "exec", net.r, "ip6tables-save", "-t", "nat")
    assert "-s fd19:1::/64 ! -d fd19:1::/64 -o wan0" in rules and "MASQUERADE" in rules
    seen, said = talk(net.outside, net.inside, "udp", "6", OUT6, 5301, 5301)
    assert (seen, said) == (R_OUT6, "echo")


@family("6")
def test_without_the_masquerade_the_far_end_sees_the_lan_address(net: Net) -> None:
    """The control for the test above: forwarding alone leaves the source alone (and
    the far end, with no route back to the LAN, cannot answer)."""
    net.lab.sysctl("net.ipv6.conf.all.forwarding", 1, namespace=net.r)
    seen, said = talk(net.outside, net.inside, "udp", "6", OUT6, 5302, 5302)
    assert (seen, said) == (IN6, "no echo")


@family("4")
def test_a_udp_port_forward_reaches_the_lan_host(net: Net) -> None:
    net.lab.port_forward(5353, f"{IN4}:53", namespace=net.r, in_interface="wan0", protocol="udp")
    seen, said = talk(net.inside, net.outside, "udp", "4", R_OUT4, 5353, 53)
    assert (seen, said) == (OUT4, "echo")  # DNAT keeps the source: in sees out itself


@family("4")
def test_a_port_range_forward_keeps_each_port(net: Net) -> None:
    net.lab.port_forward("8001-8003", IN4, namespace=net.r, in_interface="wan0")
    for port in (8001, 8003):
        seen, said = talk(net.inside, net.outside, "tcp", "4", R_OUT4, port, port)
        assert (seen, said) == (OUT4, "echo"), port
    # a port outside the range is not forwarded: nobody answers on the router
    seen, said = talk(net.inside, net.outside, "tcp", "4", R_OUT4, 8004, 8004)
    assert (seen, said) == ("nothing", "no echo")


@family("6")
def test_an_ipv6_target_with_a_port(net: Net, kernel: Kernel) -> None:
    net.lab.port_forward(8080, f"[{IN6}]:80", namespace=net.r, in_interface="wan0")
    assert kernel.sysctl("net.ipv6.conf.all.forwarding", net.r) == "1"
    rules = sh("ip", "netns", "exec", net.r, "ip6tables-save", "-t", "nat")
    assert f"--to-destination [{IN6}]:80" in rules
    seen, said = talk(net.inside, net.outside, "tcp", "6", R_OUT6, 8080, 80)
    assert (seen, said) == (OUT6, "echo")
