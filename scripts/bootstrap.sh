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
# routing daemons (netns_kit.daemons): installed, never started as services
[ -x /usr/lib/frr/zebra ] || need+=(frr)
[ -x /usr/sbin/bird ] || need+=(bird2)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# Which of the routing suites' services run on the machine (in the root namespace):
# frr's watchfrr/zebra or bird, started by anything but a lab.
services_running() {
  local pidfile
  for pidfile in /run/frr/watchfrr.pid /run/frr/zebra.pid; do
    if [ -r "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo frr; break; fi
  done
  if [ -r /run/bird/bird.pid ] && kill -0 "$(cat /run/bird/bird.pid)" 2>/dev/null; then
    echo bird
  fi
  return 0
}

if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Installing openssh-server, frr or bird2 would start their daemons on the machine:
  # tell invoke-rc.d to start no service while we install (policy-rc.d exiting 101),
  # and put back whatever policy the machine had before.
  policy=/usr/sbin/policy-rc.d
  saved=""
  if [ -e "$policy" ] || [ -L "$policy" ]; then
    saved="$(mktemp /usr/sbin/.policy-rc.d.netns-kit.XXXXXX)"
    cp -a "$policy" "$saved"
  fi
  restore_policy() {
    if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
  }
  trap restore_policy EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy.new" && chmod 755 "$policy.new" && mv -f "$policy.new" "$policy"
  before="$(services_running)"
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  restore_policy
  trap - EXIT
  # A package whose postinst starts its service anyway: stop exactly that one, and say so.
  for unit in frr bird; do
    if services_running | grep -qx "$unit" && ! grep -qx "$unit" <<<"$before"; then
      echo "bootstrap: the $unit package started its service; stopping it" >&2
      if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl stop "$unit" || true
      else
        service "$unit" stop || invoke-rc.d --force "$unit" stop || true
      fi
    fi
  done
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
