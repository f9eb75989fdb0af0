"""FRR: configuration files and command lines for one router (pure).

Each daemon gets its own file (``zebra.conf``, ``ospfd.conf``, ``bgpd.conf``,
``bfdd.conf``) and explicit paths for everything it writes (pid file, zebra's API
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
    if config.ospf is not None:
        found.append("ospfd")
    if config.bgp is not None:
        found.append("bgpd")
    return found


def render(config: RouterConfig) -> dict[str, str]:
    """Each daemon's configuration file, by file name."""
    files = {"zebra.conf": _head(config, "zebra")}
    if config.ospf is not None:
        files["ospfd.conf"] = ospfd(config)
        if config.ospf.bfd:
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
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {net}" for net in bgp.networks if ":" not in net]
    lines += [f"  neighbor {n.address} next-hop-self" for n in bgp.neighbors if n.internal]
    lines += [" exit-address-family", "exit", "!"]
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
