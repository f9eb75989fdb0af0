#!/usr/bin/env python3
"""A lab of thousands of namespaces (issue 23): routed segments, each a tree of switches.

One switched network stops working past about 2,200 veth links (a broadcast overflows
the CPU's backlog queue and an ARP request is lost), and a Linux bridge takes at most
1,023 ports, so a big lab is several *segments* joined by a router:

    router r: one interface per segment (10.K.0.1/16), forwarding on
      segment K: core switch cK (a namespace with bridge cK), joined to the router
        edge switches eK-J (namespaces with bridge eK-J), each a port of cK
          hosts hK-J-I: eth0 = 10.K.x.y/16 on eK-J, default route via 10.K.0.1
    (namespace names start with the lab's name: ``bigr``, ``bigc0``, ``bigh0-3-7``)

Every segment holds at most ``--segment`` namespaces (default 2,000: under the
2,048-link limit a lab checks), each edge switch ``--hosts-per-switch`` hosts
(default 48).  Any host reaches any other: through its segment's switches, or
through the router.

    .venv/bin/python scripts/scale_tree.py --namespaces 10000 -o /tmp/big.toml
    sudo .venv/bin/netns-kit up /tmp/big.toml          # about 10,000 namespaces
    sudo .venv/bin/netns-kit down big

From Python, :func:`topology` returns the dictionary (``Lab.from_dict`` builds it).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: Namespaces per segment: one broadcast domain, within MAX_BROADCAST_LINKS links.
SEGMENT = 2000
#: Hosts per edge switch.
HOSTS_PER_SWITCH = 48


def _address(segment: int, index: int) -> str:
    """The ``index``-th address of segment ``segment`` (index 1 is the router)."""
    return f"10.{segment}.{index // 256}.{index % 256}/16"


def topology(
    namespaces: int,
    *,
    name: str = "big",
    prefix: str | None = None,
    segment: int = SEGMENT,
    hosts_per_switch: int = HOSTS_PER_SWITCH,
) -> dict[str, Any]:
    """A topology dictionary of about ``namespaces`` namespaces (never more), as the
    module docstring draws it; names start with ``prefix`` (the lab's name)."""
    if namespaces < 4:
        raise ValueError("namespaces: at least 4 (a router, a core, an edge and a host)")
    if not 3 <= segment <= 2000:
        raise ValueError("segment: 3 to 2,000 namespaces (one broadcast domain)")
    if not 1 <= hosts_per_switch <= 1000:
        raise ValueError("hosts_per_switch: 1 to 1,000 (a bridge takes 1,023 ports)")
    p = name if prefix is None else prefix
    names: list[str] = [f"{p}r"]
    bridges: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    routes: list[dict[str, Any]] = []
    left = namespaces - 1
    k = 0
    while left >= 3 and k < 250:
        size = min(segment, left)
        core = f"{p}c{k}"
        names.append(core)
        bridges.append({"name": f"c{k}", "namespace": core})
        links.append(
            {
                "a": f"{p}r",
                "b": f"c{k}",
                "names": [f"s{k}", "r"],
                "addresses": [_address(k, 1)],
            }
        )
        budget = size - 1  # what is left of the segment after its core
        j = 0
        host_index = 2
        while budget >= 2:
            edge = f"{p}e{k}-{j}"
            names.append(edge)
            bridges.append({"name": f"e{k}-{j}", "namespace": edge})
            links.append({"a": f"e{k}-{j}", "b": f"c{k}", "names": ["up", f"e{j}"]})
            hosts = min(hosts_per_switch, budget - 1)
            for i in range(hosts):
                host = f"{p}h{k}-{j}-{i}"
                names.append(host)
                links.append(
                    {
                        "a": host,
                        "b": f"e{k}-{j}",
                        "names": ["eth0", f"h{i}"],
                        "addresses": [_address(k, host_index)],
                    }
                )
                routes.append({"namespace": host, "destination": "default", "via": f"10.{k}.0.1"})
                host_index += 1
            budget -= 1 + hosts
            j += 1
        left -= size - budget
        k += 1
    return {
        "name": name,
        "isolated": True,
        "namespaces": names,
        "bridges": bridges,
        "links": links,
        "routes": routes,
        "sysctls": [{"namespace": f"{p}r", "key": "net.ipv4.ip_forward", "value": 1}],
    }


def to_toml(data: dict[str, Any]) -> str:
    """The dictionary as a topology file (TOML): strings, integers, lists, tables."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)  # a TOML basic string is a JSON string for plain text

    out = [f"{key} = {value(data[key])}" for key in ("name", "isolated", "namespaces")]
    for table in ("bridges", "links", "routes", "sysctls"):
        for item in data[table]:
            out.append(f"\n[[{table}]]")
            out += [f"{key} = {value(v)}" for key, v in item.items()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespaces", type=int, default=10_000)
    parser.add_argument("--name", default="big", help="the lab's name (and names' prefix)")
    parser.add_argument("--segment", type=int, default=SEGMENT)
    parser.add_argument("--hosts-per-switch", type=int, default=HOSTS_PER_SWITCH)
    parser.add_argument("-o", "--output", help="write the TOML here (default: stdout)")
    args = parser.parse_args(argv)
    data = topology(
        args.namespaces,
        name=args.name,
        segment=args.segment,
        hosts_per_switch=args.hosts_per_switch,
    )
    text = to_toml(data)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"{args.output}: {len(data['namespaces']):,} namespaces", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
