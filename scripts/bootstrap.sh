#!/usr/bin/env bash
# Make this checkout ready to run: system tools, a .venv, the package with its test
# extra.  Safe to run again: a second run only checks and returns quickly.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v fping >/dev/null 2>&1 || need+=(fping)           # lab.reachability without raw sockets
command -v sysctl >/dev/null 2>&1 || need+=(procps)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)     # SSHExecutor
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)     # rootless labs: unshare, nsenter
# sshd for the tests' fake hosts (netns_kit.testing.fakemachines): installed, never started as a service
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)  # lab.throughput, shaping tests
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)  # big broadcast domains (NAPI) outside the setns path
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)  # lab.capture, netns-kit capture
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Installing openssh-server would start sshd on every address of the machine: tell
  # invoke-rc.d not to start services while we install (unless a policy says already).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if trap -p EXIT | grep -q policy; then rm -f "$policy"; trap - EXIT; fi
fi

extras="${NETNS_KIT_EXTRAS:-test}"
stamp=".venv/.netns-kit-installed"
want="$(cat pyproject.toml setup.cfg | sha256sum | cut -d' ' -f1) $extras"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing netns-kit[$extras] into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
  echo "$want" >"$stamp"
fi
