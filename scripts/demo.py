"""The seed's bridge recipe, built with netns_kit's core objects.

Two namespaces, each with a veth whose other end is a port of a bridge in a
throwaway "host" namespace, and a host address on the bridge.  Every command is
printed as it runs, then the pings; everything is deleted in ``finally``.  The exit
code is non-zero when a ping fails.  Needs root.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys

from netns_kit import Bridge, Namespace, NetnsKitError, VethPair


def main() -> int:
    if os.geteuid() != 0:
        print("demo: run as root (it builds network namespaces)", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stdout, format="  %(message)s")
    logging.getLogger("netns_kit").setLevel(logging.DEBUG)

    tag = secrets.token_hex(3)
    host = Namespace(f"demo-{tag}-host")
    red, blue = Namespace(f"demo-{tag}-red"), Namespace(f"demo-{tag}-blue")
    made: list[Namespace] = []
    try:
        print("Building the bridge recipe (every command as it runs):")
        for ns in (host, red, blue):
            made.append(ns)
            ns.create()
        bridge = Bridge("br0", namespace=host).create()
        for role, ns, address in (
            ("red", red, "192.168.15.1/24"),
            ("blue", blue, "192.168.15.2/24"),
        ):
            pair = VethPair("eth0", f"veth-{role}", namespace=ns, peer_namespace=host)
            pair.create()
            pair.end.add_address(address)
            bridge.attach(pair.peer)
            pair.up()
        bridge.add_address("192.168.15.5/24")
        bridge.up()

        logging.getLogger("netns_kit").setLevel(logging.WARNING)
        print("\nPings:")
        failed = 0
        for source, target in (
            (red, "192.168.15.2"),
            (blue, "192.168.15.1"),
            (host, "192.168.15.1"),
            (host, "192.168.15.2"),
        ):
            result = source.ping(target, count=3)
            word = "ok  " if result else "FAIL"
            replies = f"{result.received}/{result.sent} replies"
            if result.rtt_avg is not None:
                replies += f", avg {result.rtt_avg} ms"
            print(f"  {word} {source.name:>20} -> {target:<13} {replies}")
            failed += not result
        return 1 if failed else 0
    except NetnsKitError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    finally:
        print("\nTearing down:")
        logging.getLogger("netns_kit").setLevel(logging.DEBUG)
        for ns in reversed(made):  # deleting a namespace deletes its links too
            try:
                ns.delete()
            except NetnsKitError as error:
                print(f"  could not delete {ns.name}: {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
