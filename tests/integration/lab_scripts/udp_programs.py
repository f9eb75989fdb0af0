"""Two tiny UDP programs the NAT tests run inside namespaces (``python -c``)."""

# Waits for one datagram; prints its source address (or "nothing"), then echoes it.
SERVER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
try:
    data, peer = s.recvfrom(512)
except TimeoutError:
    print("nothing", flush=True)
    sys.exit(0)
print(peer[0], flush=True)
try:
    s.sendto(data, peer)
except OSError:
    pass  # no route back to an un-NATed source: fine, we only report what came
"""

# Sends a datagram every 0.2 s until the echo comes back or time is up.
CLIENT = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    s.sendto(b"netns-kit", (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(512)
    except (TimeoutError, OSError):
        continue
    print("echo")
    break
else:
    print("no echo")
"""
