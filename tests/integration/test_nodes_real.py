"""Any namespace a switch, a router or a NAT gateway, on the real kernel (issue 11).

Every lab is isolated and every namespace it makes carries the test's uid
(``router-<uid>``...), so nothing here reaches the machine's own network: the "ISP"
and its addresses exist only in the lab.  State is read back with ``ip -j``,
``bridge -j``, ``iptables-save`` and the file system, independently of the library.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from narrow import veth

from netns_kit import Lab, Namespace, recover

from .conftest import Kernel, sh
from .lab_scripts.examples import renamed, renamed_file
from .lab_scripts.udp_programs import CLIENT, SERVER

pytestmark = pytest.mark.skipif(
    shutil.which("iptables") is None or shutil.which("bridge") is None,
    reason="needs iptables and iproute2's bridge (apt-get install iptables iproute2)",
)

HERE = Path(__file__).resolve().parent
ETC_NETNS = Path("/etc/netns")
WAN, ISP = "203.0.113.2", "203.0.113.1"

# Accepts one connection and tells the client who it came from.
TCP_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
s.settimeout(float(sys.argv[2]))
conn, peer = s.accept()
conn.sendall(("hello " + peer[0]).encode())
conn.close()
"""
TCP_CLIENT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    print(c.recv(100).decode())
except OSError as error:
    print("failed", error)
"""


# -- reading the machine ----------------------------------------------------------------
def etc_netns() -> list[str] | None:
    """What /etc/netns holds (None: there is no /etc/netns)."""
    return sorted(os.listdir(ETC_NETNS)) if ETC_NETNS.is_dir() else None


def leftovers(kernel: Kernel, uid: str, state: Path) -> dict[str, list[str]]:
    found = {
        "ip netns list": [n for n in kernel.namespaces() if uid in n],
        "/etc/netns": [n for n in etc_netns() or [] if uid in n],
        "root iptables": [line for line in sh("iptables-save").splitlines() if uid in line],
        "state dir": sorted(p.name for p in state.iterdir()) if state.exists() else [],
    }
    return {where: names for where, names in found.items() if names}


@pytest.fixture
def clean(kernel: Kernel, uid: str, tmp_path: Path) -> Iterator[Path]:
    """The test's state directory; afterwards nothing with the uid may be left, and
    /etc/netns is as it was (a failing test's leftovers are removed, then reported)."""
    before = etc_netns()
    state = tmp_path / "state"
    yield state
    left = leftovers(kernel, uid, state)
    for ns in left.get("ip netns list", []):
        sh("ip", "netns", "delete", ns, check=False)
    for entry in left.get("/etc/netns", []):
        shutil.rmtree(ETC_NETNS / entry, ignore_errors=True)
    if before is None and etc_netns() == []:
        ETC_NETNS.rmdir()
    assert not {k: v for k, v in left.items() if k != "state dir"}, left
    assert etc_netns() == before


def ports(namespace: str) -> dict[str, str]:
    """Each bridge port of a namespace and its state, from ``bridge -j link show``."""
    out = sh("ip", "netns", "exec", namespace, "bridge", "-j", "link", "show")
    return {entry["ifname"]: entry["state"] for entry in json.loads(out or "[]")}


def table_fulls() -> int:
    """How often the kernel found its neighbour (ARP) table full, machine-wide."""
    out = sh("ip", "-s", "ntable", "show", "name", "arp_cache")
    words = out.split()
    return int(words[words.index("table_fulls") + 1]) if "table_fulls" in words else 0


def pingall(hosts: list[tuple[Namespace, str]]) -> list[str]:
    """Every host pings every other once: the pairs that got no reply, with what ping
    said.

    The neighbour table is one for every namespace of the machine, and other suites
    fill it (the kernel counts ``table_fulls``): a ping that failed while the count
    went up failed for want of an ARP entry, not because of the lab, and is tried
    again (up to 5 times).  A ping that failed with the count unchanged is a failure.
    """
    failed = []
    for (a, _), (_, address) in itertools.permutations(hosts, 2):
        for _ in range(5):
            fulls = table_fulls()
            done = a.run(["ping", "-n", "-c1", "-W2", address], check=False)
            if done.returncode == 0:
                break
            if table_fulls() == fulls:
                failed.append(f"{a.name} -> {address}: {done.stdout[-120:]} {done.stderr[-200:]}")
                break
            time.sleep(1.0)
        else:
            failed.append(f"{a.name} -> {address}: the neighbour table stayed full")
    return failed


def wait_listening(namespace: Namespace, port: int, proto: str = "t") -> None:
    for _ in range(200):
        if sh("ip", "netns", "exec", namespace.name, "ss", f"-Hl{proto}n", f"sport = :{port}"):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port} in {namespace.name}")


# -- the home router ----------------------------------------------------------------------
def test_the_home_router_nats_out_forwards_in_and_names_everyone(
    kernel: Kernel, uid: str, clean: Path
) -> None:
    with Lab.from_dict(renamed("home-router", uid), state_dir=clean) as lab:
        router, pc1, pc2, isp = (lab[f"{n}-{uid}"] for n in ("router", "pc1", "pc2", "isp"))
        # the switch lives in the router namespace, with both PCs on it
        assert kernel.kind("lan0", router.name) == "bridge"
        assert {kernel.links(router.name)[p]["master"] for p in ("lan0-pc1", "lan0-pc2")} == {
            "lan0"
        }
        assert kernel.addresses(router.name)["lan0"] == ["192.168.1.1/24"]
        assert kernel.sysctl("net.ipv4.ip_forward", router.name) == "1"
        rules = kernel.iptables_rules(router.name)
        assert any("-j MASQUERADE" in r and "-o wan0" in r for r in rules), rules
        assert any("--dport 8080" in r and "192.168.1.10:80" in r for r in rules), rules
        assert not any(r.startswith("-A POSTROUTING") and uid in r for r in sh("iptables-save"))

        # out: the ISP sees the router's WAN address, never a LAN address
        for pc, port in ((pc1, 41001), (pc2, 41002)):
            with ThreadPoolExecutor(1) as pool:
                server = pool.submit(isp.run, [sys.executable, "-c", SERVER, str(port), "8"])
                wait_listening(isp, port, "u")
                client = pc.run([sys.executable, "-c", CLIENT, ISP, str(port), "3"])
                assert (server.result().stdout.strip(), client.stdout.strip()) == (WAN, "echo")

        # in: the ISP reaches the server on pc1 through the router's port 8080
        web = pc1.popen([sys.executable, "-c", TCP_SERVER, "80", "20"])
        wait_listening(pc1, 80)
        got = isp.run([sys.executable, "-c", TCP_CLIENT, WAN, "8080"]).stdout.strip()
        assert got == f"hello {ISP}"
        web.stop()

        # names: /etc/netns/<ns>/hosts for each namespace
        assert pc1.run(["ping", "-n", "-c1", "-W2", f"isp-{uid}"]).returncode == 0
        said = pc2.run(["getent", "hosts", f"pc1-{uid}"]).stdout.split()
        assert said == ["192.168.1.10", f"pc1-{uid}", f"pc1-{uid}-eth0"]
        assert (ETC_NETNS / f"router-{uid}" / "hosts").is_file()
    assert leftovers(kernel, uid, clean) == {}


def _child(uid: str, state: Path) -> subprocess.Popen[str]:
    script = HERE / "lab_scripts" / "home_router.py"
    return subprocess.Popen(
        [sys.executable, str(script), uid, str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("when", ["built", "building"])
def test_a_killed_home_router_build_is_recovered_completely(
    when: str, kernel: Kernel, uid: str, clean: Path
) -> None:
    child = _child(uid, clean)
    try:
        if when == "built":
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "BUILT", child.stderr
            assert (ETC_NETNS / f"pc1-{uid}" / "hosts").is_file()
        else:  # as soon as the router namespace exists
            for _ in range(2000):
                if f"router-{uid}" in kernel.namespaces() or child.poll() is not None:
                    break
                time.sleep(0.002)
    finally:
        child.send_signal(signal.SIGKILL)  # our own child, by its handle
        child.communicate()
    assert child.returncode == -signal.SIGKILL
    recover(f"home-router-{uid}", state_dir=clean)
    assert leftovers(kernel, uid, clean) == {}


# -- Mininet's standard topologies -------------------------------------------------------
def linear(lab: Lab, uid: str, k: int = 4) -> list[tuple[Namespace, str]]:
    """``mn --topo linear,4``: a chain of switches, one host on each."""
    bridges = [lab.bridge("br0", namespace=lab.namespace(f"s{i}-{uid}")) for i in range(1, k + 1)]
    for a, b in itertools.pairwise(bridges):  # every switch's bridge is br0: by object
        lab.link(a, b)
    hosts = []
    for i, bridge in enumerate(bridges, start=1):
        host = lab.namespace(f"h{i}-{uid}")
        lab.link(host, bridge, addresses=(f"10.0.0.{i}/24", None))
        hosts.append((host, f"10.0.0.{i}"))
    return hosts


def tree(lab: Lab, uid: str, depth: int = 2, fanout: int = 3) -> list[tuple[Namespace, str]]:
    """``mn --topo tree,depth=2,fanout=3``: switches s1..s4, hosts h1..h9."""
    hosts: list[tuple[Namespace, str]] = []
    switches = 0

    def add(level: int) -> object:
        nonlocal switches
        if level == 0:
            host = lab.namespace(f"h{len(hosts) + 1}-{uid}")
            hosts.append((host, f"10.0.0.{len(hosts) + 1}"))
            return host
        switches += 1
        bridge = lab.bridge(f"br{switches}", namespace=lab.namespace(f"s{switches}-{uid}"))
        for _ in range(fanout):
            child = add(level - 1)
            address = (f"10.0.0.{len(hosts)}/24", None) if level == 1 else (None, None)
            lab.link(child, bridge, addresses=address)  # type: ignore[arg-type]
        return bridge

    add(depth)
    return hosts


def switch_namespaces(lab: Lab) -> list[str]:
    return [ns.name for ns in lab.namespaces if ns.name.startswith("s")]


def linear_file(uid: str, into: Path) -> Path:
    lines = [
        f'name = "linear-{uid}"',
        "isolated = true",
        "namespaces = [" + ", ".join(f'"s{i}-{uid}", "h{i}-{uid}"' for i in range(1, 5)) + "]",
    ]
    for i in range(1, 5):
        lines += ["[[bridges]]", f'name = "br{i}"', f'namespace = "s{i}-{uid}"']
        lines += ["[[links]]", f'a = "h{i}-{uid}"', f'b = "br{i}"']
        lines += [f'addresses = ["10.0.0.{i}/24"]']
    for i in range(1, 4):
        lines += ["[[links]]", f'a = "br{i}"', f'b = "br{i + 1}"']
    path = into / "linear.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("shape", ["linear", "tree"])
@pytest.mark.parametrize("source", ["api", "file"])
def test_mininet_topologies_ping_all(
    shape: str, source: str, kernel: Kernel, uid: str, clean: Path, tmp_path: Path
) -> None:
    if source == "api":
        lab = Lab(f"mn-{uid}", isolated=True, state_dir=clean)
        lab.open()
        hosts = linear(lab, uid) if shape == "linear" else tree(lab, uid)
    else:
        path = linear_file(uid, tmp_path) if shape == "linear" else None
        path = path or renamed_file("mininet-tree", uid, tmp_path)
        lab = Lab.from_file(path, state_dir=clean)
        lab.open()
        hosts = [(ns, "") for ns in lab.namespaces if ns.name.startswith("h")]
        number = {ns.name: ns.name.split("-")[0][1:] for ns, _ in hosts}
        hosts = [(ns, f"10.0.0.{number[ns.name]}") for ns, _ in hosts]
    with lab:
        assert len(hosts) == (4 if shape == "linear" else 9)
        # ready means ready: every port forwards as soon as the build returns
        for ns in switch_namespaces(lab):
            states = ports(ns)
            assert states and set(states.values()) == {"forwarding"}, (ns, states)
        assert pingall(hosts) == []
    assert leftovers(kernel, uid, clean) == {}


def test_switch_ends_of_a_link_between_two_switch_namespaces_get_distinct_indexes(
    kernel: Kernel, uid: str, clean: Path
) -> None:
    with Lab(f"ix-{uid}", isolated=True, state_dir=clean) as lab:
        one = lab.bridge("br0", namespace=lab.namespace(f"s1-{uid}"))
        two = lab.bridge("br0", namespace=lab.namespace(f"s2-{uid}"))
        pair = veth(lab.link(one, two))
        first = kernel.links(pair.namespace)[pair.name]
        second = kernel.links(pair.peer_namespace)[pair.peer]
        assert first["ifindex"] != second["ifindex"]
        assert first["link_index"] == second["ifindex"]
        assert ports(f"s1-{uid}") == {pair.name: "forwarding"}
        assert ports(f"s2-{uid}") == {pair.peer: "forwarding"}


# -- spanning tree ------------------------------------------------------------------------
def test_a_ring_of_three_switches_with_stp_converges_then_every_host_pings(
    kernel: Kernel, uid: str, clean: Path
) -> None:
    with Lab(f"ring-{uid}", isolated=True, state_dir=clean) as lab:
        switches = [lab.namespace(f"s{i}-{uid}") for i in range(3)]
        bridges = [lab.bridge("br0", namespace=s, stp=True) for s in switches]
        hosts = []
        with lab.batch():  # the build returns once spanning tree has settled
            for i in range(3):
                lab.link(bridges[i], bridges[(i + 1) % 3])
            for i, bridge in enumerate(bridges):
                host = lab.namespace(f"h{i}-{uid}")
                lab.link(host, bridge, addresses=(f"10.0.0.{i + 1}/24", None))
                hosts.append((host, f"10.0.0.{i + 1}"))
        states = [state for s in switches for state in ports(s.name).values()]
        assert len(states) == 9
        assert set(states) <= {"forwarding", "blocking"}
        assert states.count("blocking") == 1  # one port breaks the loop
        details = json.loads(sh("ip", "-n", switches[0].name, "-j", "-d", "link", "show", "br0"))
        info = details[0]["linkinfo"]["info_data"]
        assert (info["stp_state"], info["forward_delay"], info["hello_time"]) == (1, 200, 100)
        assert pingall(hosts) == []
    assert leftovers(kernel, uid, clean) == {}


# -- names ----------------------------------------------------------------------------------
def test_ping_by_name_and_etc_netns_is_as_before(kernel: Kernel, uid: str, clean: Path) -> None:
    before = etc_netns()
    with Lab(f"names-{uid}", isolated=True, state_dir=clean) as lab:
        red, blue = lab.namespace(f"red-{uid}"), lab.namespace(f"blue-{uid}")
        lab.link(red, blue, addresses=("10.0.0.1/24", "10.0.0.2/24"))
        lab.hosts()
        done = red.run(["ping", "-n", "-c1", "-W2", f"blue-{uid}"])
        assert "1 received" in done.stdout
        assert "10.0.0.2" in done.stdout
        assert f"blue-{uid}" in (ETC_NETNS / f"red-{uid}" / "hosts").read_text()
        assert Path("/etc/hosts").read_text().count(f"blue-{uid}") == 0  # never touched
    assert etc_netns() == before


# -- the command line -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("example", "where", "target"),
    [("home-router", "pc1", "isp"), ("mininet-tree", "h1", "h9")],
)
def test_the_example_files_go_up_ping_by_name_and_down(
    example: str, where: str, target: str, kernel: Kernel, uid: str, clean: Path, tmp_path: Path
) -> None:
    path = renamed_file(example, uid, tmp_path)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "netns_kit", "--state-dir", str(clean), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    up = cli("up", str(path))
    assert up.returncode == 0, up.stderr
    lab = f"{example}-{uid}"
    ping = cli("exec", lab, f"{where}-{uid}", "--", "ping", "-n", "-c1", "-W2", f"{target}-{uid}")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    down = cli("down", lab)
    assert down.returncode == 0, down.stderr
    assert leftovers(kernel, uid, clean) == {}
