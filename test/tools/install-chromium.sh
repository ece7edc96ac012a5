#!/usr/bin/env bash
# Installs headless Chromium from Debian's `chromium` package for the
# dashboard's browser test (test/dashboard, driven by chromedp).
# Idempotent: does nothing when chromium is already on PATH. CI runs as
# root with apt; elsewhere it uses sudo when available.
set -euo pipefail
if command -v chromium >/dev/null; then
  echo "chromium already installed: $(chromium --version 2>/dev/null | head -n1)"
  exit 0
fi
sudo=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-chromium: need root or sudo to run apt-get" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
# Another install (make prometheus, node-tools) may hold dpkg's lock:
# wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >/dev/null
echo "installed $(chromium --version 2>/dev/null | head -n1)"
