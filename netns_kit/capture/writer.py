"""A classic-pcap writer on an ``AF_PACKET`` socket: how a rootless lab captures.

In a sandbox (a user namespace with the caller mapped to root) tcpdump fails: it
cannot hand its file to user ``tcpdump`` ("Couldn't change ownership of savefile"),
and ``-Z root`` is refused.  A packet socket opened inside the namespace works, so a
sandbox's executor starts this small program instead (``python3 -c WRITER IFACE FILE
SNAPLEN COUNT``), in the namespace, like any other process.  It says "listening on"
on stderr once its socket is bound, as tcpdump does, writes each packet as one
record with one ``write`` (so the file is always whole), and ends on SIGINT or
SIGTERM saying how many packets it captured.  A filter comes compiled (``tcpdump
-ddd -y EN10MB FILTER``, which needs no privilege and no device, run through the
executor) and is attached with ``SO_ATTACH_FILTER``; what the socket queued before
that is dropped.  ``any`` listens on every interface, with Ethernet headers (a veth
has them).
"""

from __future__ import annotations

import sys

WRITER = r"""
import os, signal, socket, struct, sys, time
iface, path, snaplen, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
class Stop(Exception):
    pass
def stop(signum, frame):
    raise Stop()
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
n = 0
try:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    if iface != "any":
        sock.bind((iface, 0))
    if len(sys.argv) > 5 and sys.argv[5]:  # BPF from `tcpdump -ddd`: count, then lines
        import ctypes
        words = [[int(w) for w in line.split()] for line in sys.argv[5].splitlines()[1:]]
        code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *w) for w in words))
        program = struct.pack("HL", len(words), ctypes.addressof(code))
        sock.setsockopt(socket.SOL_SOCKET, 26, program)  # SO_ATTACH_FILTER
        sock.setblocking(False)
        try:  # what came before the filter was attached
            while True:
                sock.recv(262144)
        except BlockingIOError:
            pass
        sock.setblocking(True)
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(out, struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
    print(f"listening on {iface}, link-type EN10MB (Ethernet), snapshot length {snaplen} bytes",
          file=sys.stderr, flush=True)
    while count == 0 or n < count:
        data = sock.recv(262144)
        now = time.time()
        kept = data[:snaplen]
        head = struct.pack("<IIII", int(now), int(now % 1 * 1e6), len(kept), len(data))
        os.write(out, head + kept)
        n += 1
except Stop:
    pass
except OSError as error:
    print(f"netns-kit capture: {iface}: {error.strerror}", file=sys.stderr)
    sys.exit(1)
print(f"{n} packets captured", file=sys.stderr)
"""


def writer_argv(
    interface: str, file: str, snaplen: int | None, count: int | None, bpf: str | None = None
) -> tuple[str, ...]:
    """The writer's argv: this Python, the program, and its arguments (``bpf``: the
    output of ``tcpdump -ddd``)."""
    argv = (sys.executable, "-c", WRITER, interface, file, str(snaplen or 262144), str(count or 0))
    return argv if bpf is None else (*argv, bpf)


def compile_command(filter: str) -> tuple[str, ...]:
    """``tcpdump -ddd`` compiles a filter for Ethernet without a device or privilege."""
    return ("tcpdump", "-ddd", "-y", "EN10MB", "--", filter)
