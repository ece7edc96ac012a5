#!/usr/bin/env bash
# Installs what the real-node test tier (test/node) needs from Debian:
# containerd, runc and the CNI plugins (bridge, host-local, loopback,
# portmap in /usr/lib/cni). Idempotent: does nothing when all three are
# present. CI runs as root with apt; elsewhere it uses sudo when available.
#
# The containerd package's postinst would start a systemd service; without
# systemd (a container, CI) that is a no-op, and where an init system does
# exist policy-rc.d below keeps the packaged daemon from starting. The tests
# never use a system containerd: they start their own, with its own root,
# state and socket under a temp folder (see ../shared/DESIGN.md section 7).
set -euo pipefail
have() {
  command -v containerd >/dev/null && command -v ctr >/dev/null &&
    command -v runc >/dev/null && [ -x /usr/lib/cni/bridge ] &&
    [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ]
}
if have; then
  echo "node packages already installed: $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -n1)"
  exit 0
fi
sudo=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-node: need root or sudo to run apt-get" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
created_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  created_policy=1
fi
cleanup() { [ -z "$created_policy" ] || $sudo rm -f "$policy"; }
trap cleanup EXIT
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends containerd runc containernetworking-plugins >/dev/null
have || { echo "install-node: packages installed but containerd, runc or the CNI plugins are still missing" >&2; exit 1; }
echo "installed $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -n1)"
