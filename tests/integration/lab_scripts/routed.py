"""A child process holding a routed lab, for tests/integration/test_daemons_real.py.

routed.py SUITE LAB     build the OSPF triangle with SUITE, print PIDS <json> and
                        DIR <path>, then sleep until killed
"""

from __future__ import annotations

import json
import sys
import time

from netns_kit import Lab
from netns_kit.daemons import examples


def main() -> None:
    suite, name = sys.argv[1], sys.argv[2]
    lab = Lab(name)
    lab.open()
    examples.triangle(lab, name, suite=suite)
    pids = [d.process.pid for ds in lab.routing.running.values() for d in ds]
    print("PIDS", json.dumps(pids), flush=True)
    print("DIR", lab._daemon_dir(), flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
