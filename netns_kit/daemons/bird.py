"""BIRD 2: one configuration file and the command lines for one router (pure).

BIRD runs in the foreground (``-f``) with its configuration, control socket and pid
file given on the command line, all in the router's directory; it stays root (it
never changes user), which is also why it runs in a rootless sandbox.  Its kernel
protocol exports only what the routing protocols learned, never the interfaces'
own routes the kernel already has.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from netns_kit.daemons.model import Neighbor, RouterConfig

CONF = "bird.conf"
SOCKET = "bird.ctl"
PIDFILE = "bird.pid"

_LEARNED = "RTS_OSPF, RTS_OSPF_IA, RTS_OSPF_EXT1, RTS_OSPF_EXT2, RTS_BGP"


def render(config: RouterConfig) -> str:
    four = config.ipv4 or not config.ipv6  # an IPv4 router as before, unless IPv6-only
    six = config.ipv6
    channels = [c for c, on in (("  ipv4;", four), ("  ipv6;", six)) if on]
    lines = [
        f"# bird of {config.name}, written by netns_kit",
        f"router id {config.router_id};",
        "",
        "protocol device {",
        "  scan time 10;",
        "}",
        "",
        "protocol direct {",
        *channels,
        '  interface "*";',
        "}",
    ]
    if four:
        lines += [
            "",
            "protocol kernel {",
            "  scan time 10;",
            "  merge paths yes;",
            f"  ipv4 {{ export where source ~ [ {_LEARNED} ]; }};",
            "}",
        ]
    if six:
        lines += [
            "",
            "protocol kernel kernel6 {",
            "  scan time 10;",
            "  merge paths yes;",
            f"  ipv6 {{ export where source ~ [ {_LEARNED} ]; }};",
            "}",
        ]
    ospf = config.ospf
    if ospf is not None:
        if ospf.bfd:
            lines += [
                "",
                "protocol bfd {",
                '  interface "*" { interval 300 ms; multiplier 3; };',
                "}",
            ]
        if four:
            lines += [
                "",
                "protocol ospf v2 ospf4 {",
                "  tick 1;",
                "  ipv4 { import all; export none; };",
            ]
            lines.append(f"  area {ospf.area} {{")
            if config.loopback is not None and ":" not in config.loopback:
                lines.append('    interface "lo" { stub yes; };')
            lines += _ospf_interfaces(config, six=False)
            lines += ["  };", "}"]
        if six:
            lines += _ospf6(config)
    bgp = config.bgp
    if bgp is not None:
        for n in bgp.neighbors:
            lines += _session(config, n)
    return "\n".join(lines) + "\n"


def _ospf_interfaces(config: RouterConfig, *, six: bool) -> list[str]:
    ospf = config.ospf
    assert ospf is not None
    lines = []
    for iface in config.interfaces:
        if six and not iface.ipv6:
            continue
        if not six and (iface.address is None or ":" in iface.address):
            continue
        if not iface.active:
            lines.append(f'    interface "{iface.name}" {{ stub yes; }};')
            continue
        kind = "ptp" if iface.p2p else "broadcast"
        bfd = " bfd yes;" if ospf.bfd else ""
        lines.append(
            f'    interface "{iface.name}" {{ type {kind}; hello {ospf.hello}; '
            f"dead {ospf.dead};{bfd} }};"
        )
    return lines


def _ospf6(config: RouterConfig) -> list[str]:
    """OSPFv3 on the links that carry IPv6 (over their link-local addresses).  BIRD
    runs OSPFv3 only on interfaces with a link-local address, which ``lo`` never
    has: the IPv6 loopback goes out as an external route (the direct protocol's
    route for it), which every router of the domain installs all the same."""
    ospf = config.ospf
    assert ospf is not None
    export = "export none;"
    if config.loopback6 is not None:
        loop = str(ipaddress.ip_interface(config.loopback6).network)
        export = f"export where source = RTS_DEVICE && net ~ [ {loop} ];"
    lines = ["", "protocol ospf v3 ospf6 {", "  tick 1;", f"  ipv6 {{ import all; {export} }};"]
    lines.append(f"  area {ospf.area} {{")
    lines += _ospf_interfaces(config, six=True)
    lines += ["  };", "}"]
    return lines


def _session(config: RouterConfig, n: Neighbor) -> list[str]:
    """One BGP session: an IPv4 one carries IPv4 routes, an IPv6 one IPv6 routes."""
    bgp = config.bgp
    assert bgp is not None
    family, host = ("ipv6", 128) if n.ipv6 else ("ipv4", 32)
    nets = [net for net in bgp.networks if (":" in net) == n.ipv6]
    # its own networks, and what BGP learned (BIRD itself never passes a route
    # learned over iBGP to another iBGP peer)
    own = f"net ~ [ {', '.join(nets)} ] || " if nets else ""
    export = f"export where {own}source = RTS_BGP;"
    local = f"{n.source} " if n.source is not None else ""
    lines = [
        "",
        f"protocol bgp {_proto_name(n.router, n.ipv6)} {{",
        f'  description "{n.router}";',
        f"  local {local}as {bgp.asn};",
        f"  neighbor {n.address} as {n.asn};",
        "  hold time 3;",
        "  keepalive time 1;",
        "  connect retry time 1;",
        "  error wait time 1, 5;",
    ]
    if n.multihop or (n.internal and n.source is not None):
        lines.append("  multihop;")
    hop = " next hop self;" if n.internal else ""
    # Preference above OSPF's 150: as in FRR, where BGP's routes are compared
    # apart from the IGP's, a learned route is the best and is passed on.  A
    # session between loopbacks refuses the peer's own loopback (its next hop
    # would resolve through itself and pull the session down), as FRR does.
    imports = "import all;"
    if n.internal and n.source is not None:
        imports = f"import where ! (net ~ [ {n.address}/{host} ]);"
    lines += [f"  {family} {{ preference 160; {imports} {export}{hop} }};", "}"]
    return lines


def _proto_name(router: str, six: bool = False) -> str:
    """A BIRD protocol name for the session with ``router``: letters, digits, ``_``
    (``bgp6_`` for the IPv6 session, so a router may have both)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in router)
    return f"bgp6_{cleaned}" if six else f"bgp_{cleaned}"


#: Runs BIRD with its output in a log file of the router's directory (see frr._BIND).
_LOGGED = 'log=$1 && shift && exec "$@" </dev/null >>"$log" 2>&1'


def daemon_argv(directory: str) -> tuple[str, ...]:
    d = directory.rstrip("/")
    bird = ("bird", "-f", "-c", f"{d}/{CONF}", "-s", f"{d}/{SOCKET}", "-P", f"{d}/{PIDFILE}")
    return ("sh", "-c", _LOGGED, "sh", f"{d}/bird.log", *bird)


def check_argv(path: str) -> tuple[str, ...]:
    """BIRD's own parser: ``bird -p`` reads the file and exits."""
    return ("bird", "-p", "-c", path)


def birdc_argv(directory: str, commands: Sequence[str]) -> tuple[str, ...]:
    return ("birdc", "-s", f"{directory.rstrip('/')}/{SOCKET}", *commands)
