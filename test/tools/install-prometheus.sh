#!/usr/bin/env bash
# Installs Prometheus and promtool for the observability tests
# (test/observability, test/rollout) from Debian's `prometheus` package,
# and tmux, the pseudo-terminal test/rollout runs `rollout status --watch`
# in. Idempotent: does nothing when all three are already on PATH. CI runs as root with apt; elsewhere
# it uses sudo when available.
#
# The package's postinst would start a systemd service; without systemd (a
# container, CI) that step is a no-op, and the tests never use the service:
# they start the binary themselves on loopback with a temp config.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v tmux >/dev/null; then
  echo "prometheus already installed: $(prometheus --version 2>&1 | head -n1)"
  exit 0
fi
sudo=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-prometheus: need root or sudo to run apt-get" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 tells invoke-rc.d not to start the packaged service
# where an init system does exist; it is removed afterwards.
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
pkgs=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs+=(prometheus)
command -v tmux >/dev/null || pkgs+=(tmux)
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
echo "installed $(prometheus --version 2>&1 | head -n1)"
promtool --version 2>&1 | head -n1
