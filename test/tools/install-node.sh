#!/usr/bin/env bash
# Installs what the real-node test tier (test/node) needs from Debian:
# containerd, runc and the CNI plugins (bridge, host-local, loopback,
# portmap in /usr/lib/cni). Idempotent: does nothing when all three are
# present. apt.sh keeps the packaged containerd service from starting. The tests
# never use a system containerd: they start their own, with its own root,
# state and socket under a temp folder (test/node).
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
source "$(dirname "$0")/apt.sh"
apt_install install-node containerd runc containernetworking-plugins
have || { echo "install-node: packages installed but containerd, runc or the CNI plugins are still missing" >&2; exit 1; }
echo "installed $(containerd --version | cut -d' ' -f1,3), $(runc --version | head -n1)"
