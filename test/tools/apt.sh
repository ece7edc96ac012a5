# shellcheck shell=bash
# apt_install NAME PACKAGE...: installs Debian packages for a test tier,
# sourced by the install-*.sh scripts. CI runs as root; elsewhere it uses
# sudo when available. policy-rc.d (exit 101) keeps a package's postinst
# from starting its service where an init system exists; it is removed
# afterwards. Without systemd (a container, CI) that step is a no-op, and
# the tests never use a packaged service: they start their own binaries on
# loopback.
apt_install() {
  local name=$1
  shift
  local sudo=
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "$name: need root or sudo to run apt-get" >&2; return 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  local policy=/usr/sbin/policy-rc.d created=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    created=1
  fi
  local rc=0
  # Another install (make prometheus, chromium, node-tools) may hold
  # dpkg's lock: wait for it rather than fail.
  local wait=(-o DPkg::Lock::Timeout=300)
  { $sudo apt-get "${wait[@]}" update -qq &&
    $sudo apt-get "${wait[@]}" install -y -qq --no-install-recommends "$@" >/dev/null; } || rc=$?
  [ -z "$created" ] || $sudo rm -f "$policy"
  return $rc
}
