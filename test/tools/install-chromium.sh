#!/usr/bin/env bash
# Installs headless Chromium from Debian's `chromium` package for the
# dashboard's browser test (test/dashboard, driven by chromedp).
# Idempotent: does nothing when chromium is already on PATH.
set -euo pipefail
if command -v chromium >/dev/null; then
  echo "chromium already installed: $(chromium --version 2>/dev/null | head -n1)"
  exit 0
fi
source "$(dirname "$0")/apt.sh"
apt_install install-chromium chromium
echo "installed $(chromium --version 2>/dev/null | head -n1)"
