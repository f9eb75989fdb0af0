"""The seed's bridge recipe as a temporary, isolated lab.

Two namespaces, each with a veth whose other end is a port of a bridge, and a host
address on the bridge.  ``isolated=True`` puts the bridge in a throwaway host
namespace, so the machine's own network is never touched.  Every command is printed
as it runs, then what was built and the pings; leaving the ``with`` block deletes
everything.  The exit code is non-zero when a ping fails.  Needs root, or
``--rootless``: then the lab lives in a sandbox of its own (a user namespace), built
by a normal user, and the machine never sees it.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys

import netns_kit
from netns_kit.render import to_text_table


def main(argv: list[str]) -> int:
    rootless = "--rootless" in argv
    if os.geteuid() != 0 and not rootless:
        print("demo: run as root, or as anyone with --rootless", file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stdout, format="  %(message)s")
    commands = logging.getLogger("netns_kit")
    commands.setLevel(logging.DEBUG)

    tag = secrets.token_hex(2)  # unique names: a second demo can run beside this one
    failed = 0
    holder = None
    try:
        where = " in a rootless sandbox" if rootless else ""
        print(f"Building the bridge recipe{where} (every command as it runs):")
        with netns_kit.Lab(f"demo-{tag}", isolated=True, rootless=rootless or None) as lab:
            holder = lab.sandbox.pid if lab.sandbox else None
            red = lab.namespace(f"demo-{tag}-red")
            blue = lab.namespace(f"demo-{tag}-blue")
            bridge = lab.bridge("v-net-0", address="192.168.15.5/24")
            # the seed's names; without names= they derive from the namespace names
            lab.link(
                red, bridge, addresses=("192.168.15.1/24", None), names=("veth-red", "veth-red-br")
            )
            lab.link(
                blue,
                bridge,
                addresses=("192.168.15.2/24", None),
                names=("veth-blue", "veth-blue-br"),
            )
            host = netns_kit.Namespace(lab.host_side or "", executor=lab.executor)
            commands.setLevel(logging.WARNING)

            print("\nWhat the kernel holds now (read back with ip -j):")
            print(to_text_table(lab.snapshot()))
            print("Pings:")
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
            print("\nTearing down:")
            commands.setLevel(logging.DEBUG)
    except netns_kit.NetnsKitError as error:
        print(f"demo failed: {error}", file=sys.stderr)
        return 1
    left = [n for n in netns_kit.list_namespaces() if n.startswith(f"demo-{tag}")]
    if holder is not None and os.path.exists(f"/proc/{holder}"):
        left.append(f"the sandbox's holder, process {holder}")
    print(f"\nLeft behind: {left or 'nothing'}")
    return 1 if failed or left else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
