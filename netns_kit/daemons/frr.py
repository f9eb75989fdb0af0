"""FRR: configuration files and command lines for one router (pure).

Each daemon gets its own file (``zebra.conf``, ``ospfd.conf``, ``ospf6d.conf``,
``bgpd.conf``, ``bfdd.conf``) and explicit paths for everything it writes (pid file, zebra's API
socket, the vty sockets), all in the router's own directory.  FRR drops to user
``frr`` at start: the directory belongs to ``frr`` and the files are readable by it
(a root-only file is ignored without a word).  ``ospfd`` writes
``/var/run/frr/ospfd-gr.json`` whatever its paths say, so every daemon starts with
the router's directory bound over ``/var/run/frr`` in the private mount namespace
``ip netns exec`` gives it: the file stays in the router's directory.
"""

from __future__ import annotations

from collections.abc import Sequence

from netns_kit.daemons.model import RouterConfig

BIN = "/usr/lib/frr"

#: Throttles off, so a change is computed at once (the lab's fast-convergence
#: defaults; 1.2 s for a triangle instead of 11 s with hello 1 / dead 3 alone).
THROTTLE = (
    " timers throttle spf 0 50 500",
    " timers throttle lsa all 0",
    " timers lsa min-arrival 0",
)
#: The same for ospf6d, which has no ``timers throttle lsa`` (8.4).
THROTTLE6 = (
    " timers throttle spf 0 50 500",
    " timers lsa min-arrival 0",
)

#: Binds the router's directory over /var/run/frr, then runs the daemon with its
#: output in a log file of the router's directory (a pipe to the lab's process would
#: break when that process ends, as a kept lab's does, and kill the daemon with
#: SIGPIPE).  The script takes no user text, only its positional arguments.
_BIND = 'mount --bind "$1" /var/run/frr && log=$2 && shift 2 && exec "$@" </dev/null >>"$log" 2>&1'


def daemons(config: RouterConfig) -> list[str]:
    """The daemons this router runs, in start order (zebra first)."""
    found = ["zebra"]
    if config.ospf is not None and config.ospf.bfd:
        found.append("bfdd")
    if _ospf4(config):
        found.append("ospfd")
    if _ospf6(config):
        found.append("ospf6d")
    if config.bgp is not None:
        found.append("bgpd")
    return found


def _ospf4(config: RouterConfig) -> bool:
    """OSPFv2 runs unless the router has IPv6 addresses only."""
    return config.ospf is not None and (config.ipv4 or not config.ipv6)


def _ospf6(config: RouterConfig) -> bool:
    """OSPFv3 runs where the router has an IPv6 address of its own."""
    return config.ospf is not None and config.ipv6


def render(config: RouterConfig) -> dict[str, str]:
    """Each daemon's configuration file, by file name."""
    files = {"zebra.conf": _head(config, "zebra")}
    if _ospf4(config):
        files["ospfd.conf"] = ospfd(config)
    if _ospf6(config):
        files["ospf6d.conf"] = ospf6d(config)
    if config.ospf is not None and config.ospf.bfd:
        files["bfdd.conf"] = _head(config, "bfdd") + "bfd\nexit\n!\n"
    if config.bgp is not None:
        files["bgpd.conf"] = bgpd(config)
    return files


def _head(config: RouterConfig, daemon: str) -> str:
    return (
        f"! {daemon} of {config.name}, written by netns_kit\n"
        f"frr defaults traditional\nhostname {config.name}\n!\n"
    )


def ospfd(config: RouterConfig) -> str:
    ospf = config.ospf
    assert ospf is not None
    lines = [_head(config, "ospfd").rstrip("\n")]
    for iface in config.interfaces:
        if iface.address is None or ":" in iface.address:
            continue
        lines += [f"interface {iface.name}", f" ip ospf area {ospf.area}"]
        if iface.active:
            if iface.p2p:
                lines.append(" ip ospf network point-to-point")
            lines += [
                f" ip ospf hello-interval {ospf.hello}",
                f" ip ospf dead-interval {ospf.dead}",
            ]
            if ospf.bfd:
                lines.append(" ip ospf bfd")
        else:
            lines.append(" ip ospf passive")
        lines += ["exit", "!"]
    if config.loopback is not None and ":" not in config.loopback:
        lines += ["interface lo", f" ip ospf area {ospf.area}", " ip ospf passive", "exit", "!"]
    lines += ["router ospf", f" ospf router-id {config.router_id}", *THROTTLE, "exit", "!"]
    return "\n".join(lines) + "\n"


def ospf6d(config: RouterConfig) -> str:
    """OSPFv3 on the links that carry IPv6 (their link-local addresses are the
    neighbours' and the routes' next hops), passive towards hosts, and the IPv6
    loopback."""
    ospf = config.ospf
    assert ospf is not None
    lines = [_head(config, "ospf6d").rstrip("\n")]
    for iface in config.interfaces:
        if not iface.ipv6:
            continue
        lines += [f"interface {iface.name}", f" ipv6 ospf6 area {ospf.area}"]
        if iface.active:
            if iface.p2p:
                lines.append(" ipv6 ospf6 network point-to-point")
            lines += [
                f" ipv6 ospf6 hello-interval {ospf.hello}",
                f" ipv6 ospf6 dead-interval {ospf.dead}",
            ]
            if ospf.bfd:
                lines.append(" ipv6 ospf6 bfd")
        else:
            lines.append(" ipv6 ospf6 passive")
        lines += ["exit", "!"]
    if config.loopback6 is not None:
        lines += ["interface lo", f" ipv6 ospf6 area {ospf.area}", " ipv6 ospf6 passive"]
        lines += ["exit", "!"]
    lines += ["router ospf6", f" ospf6 router-id {config.router_id}", *THROTTLE6, "exit", "!"]
    return "\n".join(lines) + "\n"


def bgpd(config: RouterConfig) -> str:
    bgp = config.bgp
    assert bgp is not None
    lines = [_head(config, "bgpd").rstrip("\n")]
    lines += [
        f"router bgp {bgp.asn}",
        f" bgp router-id {config.router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
    ]
    for n in bgp.neighbors:
        lines += [
            f" neighbor {n.address} remote-as {n.asn}",
            f" neighbor {n.address} description {n.router}",
            f" neighbor {n.address} timers 1 3",
            f" neighbor {n.address} timers connect 1",
            f" neighbor {n.address} advertisement-interval 0",
        ]
        if n.source is not None:
            lines.append(f" neighbor {n.address} update-source {n.source}")
        if n.multihop and not n.internal:
            lines.append(f" neighbor {n.address} ebgp-multihop 2")
    # an IPv4 session carries IPv4 only, an IPv6 session IPv6 only
    four = [n for n in bgp.neighbors if not n.ipv6]
    six = [n for n in bgp.neighbors if n.ipv6]
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {net}" for net in bgp.networks if ":" not in net]
    lines += [f"  no neighbor {n.address} activate" for n in six]
    lines += [f"  neighbor {n.address} next-hop-self" for n in four if n.internal]
    lines.append(" exit-address-family")
    nets6 = [net for net in bgp.networks if ":" in net]
    if six or nets6:
        lines.append(" address-family ipv6 unicast")
        lines += [f"  network {net}" for net in nets6]
        lines += [f"  neighbor {n.address} activate" for n in six]
        lines += [f"  neighbor {n.address} next-hop-self" for n in six if n.internal]
        lines.append(" exit-address-family")
    lines += ["exit", "!"]
    return "\n".join(lines) + "\n"


def daemon_argv(daemon: str, directory: str) -> tuple[str, ...]:
    """One daemon in the foreground (its PID is the one we start), every path in
    ``directory``, bound over /var/run/frr first (see the module docstring)."""
    d = directory.rstrip("/")
    argv: list[str] = [f"{BIN}/{daemon}", "-P", "0", "-i", f"{d}/{daemon}.pid"]
    argv += ["-z", f"{d}/zserv.api", "--vty_socket", d, "-f", f"{d}/{daemon}.conf"]
    if daemon == "bfdd":
        argv += ["--bfdctl", f"{d}/bfdd.sock"]
    return ("sh", "-c", _BIND, "sh", d, f"{d}/{daemon}.log", *argv)


def vtysh_argv(directory: str, commands: Sequence[str]) -> tuple[str, ...]:
    """``vtysh`` talking to one router's daemons (by its sockets)."""
    argv = ["vtysh", "--vty_socket", directory.rstrip("/")]
    for command in commands:
        argv += ["-c", command]
    return tuple(argv)


def load_argv(directory: str) -> tuple[str, ...]:
    """Push ``DIR/frr.conf`` (a hand-written integrated configuration) to the running
    daemons, as ``vtysh -b`` does at boot."""
    d = directory.rstrip("/")
    return ("vtysh", "--vty_socket", d, "--config_dir", d, "-b")


def daemons_in(text: str) -> list[str]:
    """The daemons a hand-written integrated configuration needs."""
    found = ["zebra"]
    words = [line.split() for line in text.splitlines()]
    heads = {tuple(w[:2]) for w in words if w}
    firsts = {w[0] for w in words if w}
    if "bfd" in firsts or any("bfd" in w for w in words if len(w) > 1 and w[0] == "ip"):
        found.append("bfdd")
    if ("router", "ospf") in heads:
        found.append("ospfd")
    if ("router", "ospf6") in heads:
        found.append("ospf6d")
    if ("router", "bgp") in heads:
        found.append("bgpd")
    if "ip" in firsts and any(w[:2] == ["ip", "route"] for w in words):
        found.append("staticd")
    return found
