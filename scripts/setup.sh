#!/usr/bin/env bash
# Installs what building and testing need on Debian 12 (run as root).
# Idempotent: skips apt when everything is already there.
set -euo pipefail

packages=(
  gcc pkg-config libpam0g-dev   # pam_netauth links libpam
  pamtester                     # drives real PAM stacks in tests and the demo
  python3 python3-venv          # NetAuth's Python client for the interop test
  valgrind                      # memory checks of the NSS module
  gdb                           # gcore: the PAM test that looks for passwords left in memory
  util-linux                    # unshare: private mount namespaces for tests
  libnss-cache                  # benchmark baseline only
  rpm                           # inspects the built .rpm in the package test
  openssh-server openssh-client # the sshd end-to-end test (sshd run by hand, never started)
  sshpass                       # password logins over ssh in that test
  nginx                         # serves published snapshots in the fleet refresh test (run by hand, never started)
  systemd                       # systemd-analyze verify of the units (no PID 1 needed)
  apparmor                      # apparmor_parser checks the unix_chkpwd addition's syntax
  sudo                          # the install test checks a sudoers rule with a NetAuth group
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust 1.88 or newer (https://rustup.rs) and run again" >&2
  exit 1
fi
