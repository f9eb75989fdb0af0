"""A child process holding a real lab, driven by tests/integration/test_lab_real.py.

The test starts it with ``NETNS_KIT_STATE_DIR`` pointing into its tmp_path, reads the
lines it prints (``MARK``, ``READY``, ``PING``, ``CLOSED``...) and signals it by PID.

    child.py grow LAB COUNT MARK_AFTER   build COUNT namespaces on a bridge, print MARK
                                         after MARK_AFTER of them, BUILT and the
                                         time.monotonic() at the end
    child.py batch LAB COUNT             build COUNT namespaces in one batch, print BUILT,
                                         then sleep (to be killed)
    child.py hold LAB isolated|root      build a two-namespace lab, print READY, wait
                                         for a line on stdin: "ping" pings both ways
    child.py busy LAB                    try to open LAB: print BUSY or OPENED
    child.py recover LAB                 netns_kit.recover(LAB), print what it removed

Every name a lab makes starts with LAB (``<LAB>-a``, or ``nk<uid>...`` on the root
side, where LAB is ``nkl-<uid>``), so the test can look for leftovers by that prefix.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from netns_kit import Lab, LabBusyError, recover


def say(*words: object) -> None:
    print(*words, flush=True)


def grow(name: str, count: int, mark_after: int) -> None:
    with Lab(name, isolated=True) as lab:
        bridge = lab.bridge("br0", "10.0.255.254/16")
        for i in range(count):
            ns = lab.namespace(f"{name}-n{i}")
            lab.link(ns, bridge, addresses=(f"10.0.{i // 250}.{i % 250 + 1}/16", None))
            if i + 1 == mark_after:
                say("MARK", i + 1)
        say("BUILT", time.monotonic())  # CLOCK_MONOTONIC: comparable with the test's


def batch(name: str, count: int) -> None:
    with Lab(name, isolated=True) as lab:
        with lab.batch():
            for i in range(count):
                lab.namespace(f"{name}-n{i}")
        say("BUILT")
        time.sleep(60)


def root_side_names(name: str) -> tuple[str, str, str]:
    """Bridge and bridge-port names in the root namespace: short, and unique per lab."""
    uid = name.rsplit("-", 1)[-1]
    return f"nk{uid}br", f"nk{uid}pa", f"nk{uid}pb"


def hold(name: str, mode: str) -> None:
    with Lab(name, isolated=mode == "isolated") as lab:
        a, b = lab.namespace(f"{name}-a"), lab.namespace(f"{name}-b")
        if mode == "isolated":
            # the same addresses in every isolated lab: they never meet
            bridge = lab.bridge("br0", "10.0.0.254/24")
            lab.link(a, bridge, addresses=("10.0.0.1/24", None))
            lab.link(b, bridge, addresses=("10.0.0.2/24", None))
            for ns in (a, b):
                lab.route("default", via="10.0.0.254", namespace=ns)
            lab.sysctl("net.ipv4.conf.all.rp_filter", 0)  # on the host side
            lab.masquerade("10.0.0.0/24")  # on the host side
        else:
            # the root side: a bridge and two ports, no address, no route, no sysctl,
            # no iptables; the pings go over a direct veth between a and b
            bridge_name, port_a, port_b = root_side_names(name)
            bridge = lab.bridge(bridge_name)
            lab.link(a, bridge, names=("eth0", port_a))
            lab.link(b, bridge, names=("eth0", port_b))
            lab.link(a, b, addresses=("10.0.0.1/24", "10.0.0.2/24"), names=("ab", "ba"))
        say("READY", os.getpid())
        for line in sys.stdin:
            if line.strip() == "ping":
                there = a.ping("10.0.0.2", count=3, interval=0.2, timeout=2)
                back = b.ping("10.0.0.1", count=3, interval=0.2, timeout=2)
                say("PING", "ok" if there and back else f"fail {there} {back}")
            else:
                break
    say("CLOSED")


def busy(name: str) -> None:
    try:
        with Lab(name, isolated=True):
            say("OPENED")
    except LabBusyError as error:
        say("BUSY", error)


def main(argv: list[str]) -> None:
    # Ctrl-C raises KeyboardInterrupt, as at a terminal, even if whoever started the
    # test run ignores SIGINT (a background job does) and so made us inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mode, name, *rest = argv
    if mode == "grow":
        grow(name, int(rest[0]), int(rest[1]))
    elif mode == "batch":
        batch(name, int(rest[0]))
    elif mode == "hold":
        hold(name, rest[0])
    elif mode == "busy":
        busy(name)
    elif mode == "recover":
        say("REMOVED", json.dumps(recover(name)))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
