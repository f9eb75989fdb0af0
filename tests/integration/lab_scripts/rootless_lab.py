"""Rootless labs, run as the unprivileged user nobody by tests/integration/test_rootless.py.

    rootless_lab.py bridge TAG    the seed's bridge lab; pings both ways and to and
                                  from the host side (the sandbox's own namespace)
    rootless_lab.py router TAG    a router with masquerade: what an "outside"
                                  namespace in the same sandbox sees of a LAN host
    rootless_lab.py hold TAG      a lab with a background program, kept open
    rootless_lab.py refused TAG   a lab where the kernel refuses user namespaces

Each lab prints ``UP <holder PID>`` once built, then waits for a line on stdin (the
test looks at the machine meanwhile), then closes and prints what it found:
``PING <from> <to> ok|FAIL``, ``SEEN <address>``, ``RULE ...`` and, after closing,
``HOLDER gone|alive``.  A lab's names start with TAG.
"""

from __future__ import annotations

import logging
import os
import sys

from udp_programs import CLIENT, SERVER  # beside this file

from netns_kit import Command, Lab, Namespace, RootlessUnavailableError, Runner


def say(*words: object) -> None:
    print(*words, flush=True)


def wait_for_test(lab: Lab) -> int:
    """Say the lab is up, wait for the test to look; the holder's PID."""
    assert lab.sandbox is not None
    holder = lab.sandbox.pid
    say("UP", holder)
    sys.stdin.readline()
    return holder


def ping(lab: Lab, source: Namespace | None, target: str) -> None:
    """A ping from ``source``, or from the host side (the sandbox's namespace)."""
    if source is not None:
        ok = bool(source.ping(target, count=2, timeout=2))
    else:
        argv = ("ping", "-n", "-q", "-c", "2", "-i", "0.2", "-W", "2", target)
        ok = bool(Runner(lab.ex).run(Command(argv, read=True), check=False))
    say("PING", source.name if source else "host", target, "ok" if ok else "FAIL")


def closed(holder: int) -> None:
    """After the lab's ``with`` block: is its holder still there?"""
    say("HOLDER", "alive" if os.path.exists(f"/proc/{holder}") else "gone")


def bridge(tag: str) -> None:
    """The seed's bridge recipe, built without root and without ``rootless=``."""
    logging.basicConfig(level=logging.INFO, format="LOG %(message)s", stream=sys.stdout)
    lab = Lab(tag)  # not root: rootless by default, said in one INFO line
    say("ROOTLESS", lab.rootless)
    with lab:
        red, blue = lab.namespace(f"{tag}-red"), lab.namespace(f"{tag}-blue")
        switch = lab.bridge(f"{tag}br", address="192.168.15.5/24")
        lab.link(red, switch, addresses=("192.168.15.1/24", None), names=(f"{tag}r", f"{tag}rb"))
        lab.link(blue, switch, addresses=("192.168.15.2/24", None), names=(f"{tag}b", f"{tag}bb"))
        ping(lab, red, "192.168.15.2")
        ping(lab, blue, "192.168.15.1")
        ping(lab, red, "192.168.15.5")
        ping(lab, None, "192.168.15.2")
        holder = wait_for_test(lab)
    closed(holder)


def router(tag: str) -> None:
    """LAN host behind the sandbox's namespace (the router), which masquerades out of a
    second bridge to ``outside``; ``outside`` has no route back to the LAN."""
    lab = Lab(tag, rootless=True)
    with lab:
        lan, outside = lab.namespace(f"{tag}-lan"), lab.namespace(f"{tag}-out")
        inner = lab.bridge(f"{tag}lan", address="10.0.0.1/24")
        wan = lab.bridge(f"{tag}wan", address="198.51.100.1/24")
        lab.link(lan, inner, addresses=("10.0.0.2/24", None), names=(f"{tag}l", f"{tag}lb"))
        lab.link(outside, wan, addresses=("198.51.100.2/24", None), names=(f"{tag}o", f"{tag}ob"))
        lab.route("default", via="10.0.0.1", namespace=lan)
        lab.masquerade("10.0.0.0/24", f"{tag}wan")
        server = outside.popen([sys.executable, "-c", SERVER, "9999", "8"])
        lan.run([sys.executable, "-c", CLIENT, "198.51.100.2", "9999", "8"], timeout=30)
        seen = server.wait(timeout=30).stdout.split()
        say("SEEN", seen[0] if seen else "nothing")
        rules = Runner(lab.ex).run(Command(("iptables-save", "-t", "nat"), read=True))
        for line in rules.stdout.splitlines():
            if "MASQUERADE" in line:
                say("RULE", line)
        forward = Runner(lab.ex).run(Command(("sysctl", "-n", "net.ipv4.ip_forward"), read=True))
        say("FORWARD", forward.stdout.strip())
        holder = wait_for_test(lab)
    closed(holder)


def hold(tag: str) -> None:
    """Open a lab with a program running in it, and wait to be killed."""
    lab = Lab(tag, rootless=True).open()
    sleeper = lab.namespace(f"{tag}-a").popen(["sleep", "1000"])
    say("SLEEPER", sleeper.pid)
    wait_for_test(lab)
    sys.stdin.read()


def refused(tag: str) -> None:
    try:
        Lab(tag, rootless=True).open()
    except RootlessUnavailableError as error:
        say("REFUSED", error.setting)
        say("MESSAGE", error)
        return
    say("BUILT")


MODES = {"bridge": bridge, "router": router, "hold": hold, "refused": refused}

if __name__ == "__main__":
    MODES[sys.argv[1]](sys.argv[2])
