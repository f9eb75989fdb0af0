"""Shared helpers for the namespace experiments: unique names, root batches, cleanup.

Every namespace made here starts with the run's own prefix (``nkx<hex>-``), and
:func:`cleanup` deletes only names with that prefix.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time

NETNS_DIR = "/run/netns"


def new_prefix() -> str:
    return f"nkx{secrets.token_hex(3)}-"


def ns_name(prefix: str, i: int) -> str:
    return f"{prefix}{i}"


def host_name(prefix: str) -> str:
    return f"{prefix}host"


def address(i: int) -> str:
    """Namespace i's address in 10.77.0.0/16; .0.1 is the host side."""
    h = i + 2
    return f"10.77.{h >> 8}.{h & 255}/16"


def run_batch(lines: list[str], *argv_prefix: str, force: bool = False) -> float:
    """Run `ip [prefix] -batch -` with ``lines``; returns seconds, raises on failure."""
    argv = ["ip", *argv_prefix, *(["-force"] if force else []), "-batch", "-"]
    t = time.perf_counter()
    done = subprocess.run(
        argv, input="".join(x + "\n" for x in lines), capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t
    if done.returncode != 0 and not force:
        raise RuntimeError(f"{argv} failed: {done.stderr.strip()[:500]}")
    return elapsed


def ours(prefix: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def cleanup(prefix: str) -> None:
    """Delete every namespace with ``prefix`` (ours only), host namespace last."""
    names = ours(prefix)
    if not names:
        return
    host = host_name(prefix)
    lines = [f"netns delete {n}" for n in names if n != host]
    if host in names:
        lines.append(f"netns delete {host}")
    run_batch(lines, force=True)
    left = ours(prefix)
    if left:
        raise RuntimeError(f"left behind: {left[:5]}... ({len(left)})")


def create_namespaces(prefix: str, n: int, *, host: bool = True) -> float:
    lines = [f"netns add {host_name(prefix)}"] if host else []
    lines += [f"netns add {ns_name(prefix, i)}" for i in range(n)]
    return run_batch(lines)


def create_veths(prefix: str, n: int) -> float:
    """One root batch: eth0 in namespace i, its peer p<i> in the host namespace."""
    host = host_name(prefix)
    return run_batch(
        [
            f"link add name eth0 netns {ns_name(prefix, i)} type veth peer name p{i} netns {host}"
            for i in range(n)
        ]
    )


def per_ns_lines(i: int) -> list[str]:
    return [f"addr add {address(i)} dev eth0", "link set dev eth0 up", "link set dev lo up"]


def host_links(prefix: str) -> int:
    out = subprocess.run(
        ["ip", "-n", host_name(prefix), "-o", "link", "show"], capture_output=True, text=True
    ).stdout
    return sum(1 for line in out.splitlines() if ": p" in line)


def mountinfo_lines() -> int:
    with open("/proc/self/mountinfo") as f:
        return sum(1 for _ in f)


def create_veths_pairwise(prefix: str, n: int) -> float:
    """One root batch of veths between neighbouring namespaces (no host namespace)."""
    return run_batch(
        [
            f"link add name a{i} netns {ns_name(prefix, i)} type veth "
            f"peer name b{i} netns {ns_name(prefix, (i + 1) % n)}"
            for i in range(n)
        ]
    )
