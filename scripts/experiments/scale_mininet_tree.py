#!/usr/bin/env python3
"""scripts/labs/mininet-tree.toml scaled: a tree of depth 2 with FANOUT switches under
the root and FANOUT hosts under each (1 + F + F*F namespaces; F=31 gives 993), every
name starting with PREFIX.  Prints the TOML; used for the progress transcript of
issue 24:

    .venv/bin/python scripts/experiments/scale_mininet_tree.py --fanout 31 > /tmp/tree.toml
    script -q -c "netns-kit up /tmp/tree.toml" /tmp/typescript
"""

from __future__ import annotations

import argparse


def tree(fanout: int, prefix: str) -> str:
    switches = [f"{prefix}s{i}" for i in range(1, fanout + 2)]
    hosts = [f"{prefix}h{i}" for i in range(1, fanout * fanout + 1)]
    out = [
        "#:schema ../../schemas/topology.schema.json",
        f'name = "{prefix}tree"',
        "isolated = true",
        "hosts = true",
        "namespaces = [" + ", ".join(f'"{n}"' for n in switches + hosts) + "]",
        "",
    ]
    for i, switch in enumerate(switches, 1):
        out += ["[[bridges]]", f'name = "br{i}"', f'namespace = "{switch}"']
    for i in range(2, fanout + 2):
        out += ["[[links]]", 'a = "br1"', f'b = "br{i}"']
    for k, host in enumerate(hosts):
        bridge = 2 + k // fanout
        n = k + 1
        out += [
            "[[links]]",
            f'a = "{host}"',
            f'b = "br{bridge}"',
            f'names = ["eth0", "h{n}"]',
            f'addresses = ["10.0.{n // 250}.{n % 250 + 1}/16"]',
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fanout", type=int, default=31)
    parser.add_argument("--prefix", default="eco")
    args = parser.parse_args()
    print(tree(args.fanout, args.prefix), end="")


if __name__ == "__main__":
    main()
