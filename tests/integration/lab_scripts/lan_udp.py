"""The seed's bridge lab with the seed's NAT line; one UDP datagram from red to blue.

    lan_udp.py LAB isolated|root STATE_DIR

prints ``SEEN <address>``: the source address blue saw.  The test runs the ``root``
form inside a throwaway network and mount namespace (``unshare --net --mount``), so
the lab's "root" side (bridge, ip_forward, the MASQUERADE rule) is a sandbox, never
the machine's own.
"""

from __future__ import annotations

import sys

from udp_programs import CLIENT, SERVER  # beside this file

from netns_kit import Lab


def main(name: str, mode: str, state: str) -> None:
    with Lab(name, isolated=mode == "isolated", state_dir=state) as lab:
        red, blue = lab.namespace(f"{name}-red"), lab.namespace(f"{name}-blue")
        bridge = lab.bridge("v-net-0", address="192.168.15.5/24")
        lab.link(red, bridge, addresses=("192.168.15.1/24", None))
        lab.link(blue, bridge, addresses=("192.168.15.2/24", None))
        lab.masquerade("192.168.15.0/24")
        server = blue.popen([sys.executable, "-c", SERVER, "9999", "5"])
        red.run([sys.executable, "-c", CLIENT, "192.168.15.2", "9999", "5"])
        seen = server.wait(timeout=10).stdout.split()
        print("SEEN", seen[0] if seen else "nothing", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
