"""Masquerade never rewrites traffic that stays on the LAN (issue 9, defect 5).

With ``br_netfilter``, frames bridged between two ports of one bridge pass the
namespace's iptables hooks (``net.bridge.bridge-nf-call-iptables`` is 1 in every new
namespace here), so a bare ``-s NET -j MASQUERADE`` made red's datagrams reach blue
from the bridge's address.  The rule is now ``-s NET ! -d NET``, and a lab's own
namespaces that hold bridges do not send bridged frames through iptables at all.

The lab that is not isolated runs inside ``unshare --net --mount`` with a private
``/run/netns``: its "root" namespace is a throwaway one, so the machine's ip_forward
and iptables are never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("iptables") is None or shutil.which("unshare") is None,
    reason="needs iptables and unshare (apt-get install iptables util-linux)",
)

SCRIPT = Path(__file__).resolve().parent / "lab_scripts" / "lan_udp.py"


def _sandboxed(argv: list[str]) -> list[str]:
    """``argv`` in a new network and mount namespace with an empty, private /run/netns."""
    inner = 'mount -t tmpfs netns-kit-test /run/netns && exec "$@"'
    unshare = ["unshare", "--net", "--mount", "--propagation", "private"]
    return [*unshare, "sh", "-c", inner, "sh", *argv]


@pytest.mark.parametrize("mode", ["isolated", "root"])
def test_masquerade_leaves_traffic_between_two_ports_of_one_bridge_alone(
    mode: str, uid: str, tmp_path: Path
) -> None:
    argv = [sys.executable, str(SCRIPT), f"nkm-{uid}", mode, str(tmp_path / "state")]
    if mode == "root":
        Path("/run/netns").mkdir(exist_ok=True)  # the mount point the sandbox covers
        argv = _sandboxed(argv)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "SEEN 192.168.15.1" in done.stdout, done.stdout + done.stderr
