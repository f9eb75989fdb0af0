"""As an unprivileged user: a BIRD triangle in a rootless lab, then FRR refused.

Prints ``PING <ok>``, ``NEIGHBOURS <count>``, ``FRR <error text>`` and ``DONE``."""

from __future__ import annotations

import os
import sys

from netns_kit import Lab, NetnsKitError
from netns_kit.daemons import examples


def main() -> None:
    name = sys.argv[1]
    assert os.geteuid() != 0
    with Lab(name) as lab:  # not root: a rootless sandbox
        r = examples.triangle(lab, name, suite="bird")
        print("PING", bool(r[0].ping("10.255.0.3")), flush=True)
        said = lab.birdc(r[0], "show", "ospf", "neighbors")
        print("NEIGHBOURS", said.count("Full"), flush=True)
    with Lab(name + "f") as lab:
        r1 = lab.router(name + "f1", loopback="10.255.0.1/32")
        lab.ospf([r1], suite="frr")
        try:
            lab.converge(5)
        except NetnsKitError as error:
            print("FRR", str(error).replace("\n", " "), flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
