"""A router with NAT, all inside namespaces this test makes.

``inner`` sits behind a bridge in a throwaway ``host`` namespace (the router) with a
default route via the bridge address; the host has a second veth to ``outside``.
A one-datagram UDP echo server in ``outside`` prints the source address it saw.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest

from netns_kit import Bridge, Masquerade, Namespace, Route, VethPair

from .conftest import Kernel, sh
from .lab_scripts.udp_programs import CLIENT, SERVER

pytestmark = pytest.mark.skipif(
    shutil.which("iptables") is None or shutil.which("sysctl") is None,
    reason="NAT tests need iptables and sysctl (apt-get install iptables procps)",
)

MakeNamespace = Callable[[str], Namespace]
INNER_NET, INNER, GATEWAY = "10.200.1.0/24", "10.200.1.2", "10.200.1.1"
ROUTER_OUT, OUTSIDE = "10.200.2.1", "10.200.2.2"
FORWARD = "net.ipv4.ip_forward"


@attrs.frozen
class Router:
    host: Namespace
    inner: Namespace
    outside: Namespace
    out_interface: str  # the host's outside-facing veth


@pytest.fixture
def router(make_namespace: MakeNamespace, uid: str) -> Router:
    host = make_namespace("host")
    inner, outside = make_namespace("inner"), make_namespace("outside")

    bridge = Bridge(f"br{uid}", namespace=host).create()
    lan = VethPair(f"i{uid}", f"p{uid}", namespace=inner, peer_namespace=host).create()
    bridge.attach(lan.peer)
    lan.end.add_address(f"{INNER}/24")
    lan.up()
    bridge.add_address(f"{GATEWAY}/24")
    bridge.up()
    Route("default", via=GATEWAY, namespace=inner).add()

    wan = VethPair(f"o{uid}", f"x{uid}", namespace=host, peer_namespace=outside).create()
    wan.end.add_address(f"{ROUTER_OUT}/24")
    wan.peer_end.add_address(f"{OUTSIDE}/24")
    wan.up()
    return Router(host, inner, outside, wan.name)


def _wait_listening(ns: Namespace, port: int) -> None:
    for _ in range(100):
        if sh("ip", "netns", "exec", ns.name, "ss", "-Hlun", f"sport = :{port}").strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"the UDP server in {ns.name} never bound port {port}")


def exchange(r: Router, port: int, seconds: float = 2.0) -> tuple[str, str]:
    """Send from ``inner`` to a server in ``outside``: (what the server saw, client's word)."""
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(
            r.outside.run,
            [sys.executable, "-c", SERVER, str(port), str(seconds + 3)],
            timeout=seconds + 30,
        )
        _wait_listening(r.outside, port)
        client = r.inner.run(
            [sys.executable, "-c", CLIENT, OUTSIDE, str(port), str(seconds)],
            timeout=seconds + 30,
        )
        return server.result().stdout.strip(), client.stdout.strip()


def _set_forwarding(ns: Namespace, value: str) -> None:
    sh("ip", "netns", "exec", ns.name, "sysctl", "-q", "-w", f"{FORWARD}={value}")


def _masquerade(r: Router, uid: str) -> Masquerade:
    return Masquerade(
        INNER_NET, out_interface=r.out_interface, namespace=r.host, comment=f"netns-kit:{uid}"
    )


def _our_rules(kernel: Kernel, r: Router, uid: str) -> list[str]:
    return [line for line in kernel.iptables_rules(r.host.name) if f"netns-kit:{uid}" in line]


def _check_routes(kernel: Kernel, r: Router) -> None:
    defaults = [x for x in kernel.routes(r.inner.name) if x["dst"] == "default"]
    assert [x.get("gateway") for x in defaults] == [GATEWAY]


def test_router_masquerades_then_stops(router: Router, kernel: Kernel, uid: str) -> None:
    """Forwarding off at first: enable() turns it on and NATs; disable() turns it back
    off, so nothing gets through any more."""
    _check_routes(kernel, router)
    _set_forwarding(router.host, "0")
    nat = _masquerade(router, uid).enable()

    assert kernel.sysctl(FORWARD, router.host.name) == "1"
    rules = _our_rules(kernel, router, uid)
    assert rules == [
        f"-A POSTROUTING -s {INNER_NET} ! -d {INNER_NET} -o {router.out_interface} "
        f'-m comment --comment "netns-kit:{uid}" -j MASQUERADE'
    ]
    assert nat.exists()
    nat.enable()  # a second enable adds no rule and still remembers forwarding was off
    assert _our_rules(kernel, router, uid) == rules

    assert exchange(router, 40001) == (ROUTER_OUT, "echo")

    nat.disable()
    assert _our_rules(kernel, router, uid) == []
    assert not nat.exists()
    assert kernel.sysctl(FORWARD, router.host.name) == "0"
    assert exchange(router, 40002) == ("nothing", "no echo")


def test_router_leaves_forwarding_it_found_on(router: Router, kernel: Kernel, uid: str) -> None:
    """Forwarding already on: disable() removes the rule but leaves forwarding on, so
    the outside then sees the inner address itself (and cannot answer it)."""
    _set_forwarding(router.host, "1")
    nat = _masquerade(router, uid).enable()
    rules = _our_rules(kernel, router, uid)
    assert len(rules) == 1
    nat.enable()  # idempotent: -C finds the rule, no second one is appended
    assert _our_rules(kernel, router, uid) == rules

    assert exchange(router, 40003) == (ROUTER_OUT, "echo")

    nat.disable()
    assert _our_rules(kernel, router, uid) == []
    assert kernel.sysctl(FORWARD, router.host.name) == "1"
    # A new port, so conntrack has no NAT mapping left from the flow above.
    assert exchange(router, 40004) == (INNER, "no echo")
