#!/usr/bin/env bash
# Installs Prometheus and promtool for the observability tests
# (test/observability, test/rollout) from Debian's `prometheus` package,
# and tmux, the pseudo-terminal test/rollout runs `rollout status --watch`
# in. Idempotent: does nothing when all three are already on PATH. The
# tests never use the packaged service: they start the binary themselves
# on loopback with a temp config (apt.sh keeps the service from starting).
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v tmux >/dev/null; then
  echo "prometheus already installed: $(prometheus --version 2>&1 | head -n1)"
  exit 0
fi
source "$(dirname "$0")/apt.sh"
pkgs=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || pkgs+=(prometheus)
command -v tmux >/dev/null || pkgs+=(tmux)
apt_install install-prometheus "${pkgs[@]}"
echo "installed $(prometheus --version 2>&1 | head -n1)"
promtool --version 2>&1 | head -n1
