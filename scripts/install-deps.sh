#!/usr/bin/env bash
# Installs every Debian 12 package cloudfs needs to build, test and boot guests.
# Idempotent: runs apt-get only when something is missing.
set -euo pipefail
PKGS=(libfuse3-dev fuse3 libvirt-dev libsqlite3-dev libvirt-daemon libvirt-daemon-driver-qemu
      libvirt-clients qemu-system-x86 qemu-utils cpio busybox-static attr procps util-linux python3 curl
      dnsmasq-base iproute2 nftables sqlite3 lvm2 thin-provisioning-tools genisoimage libisofs-dev libburn-dev openssh-client
      openssh-server gnutls-bin   # the remote hosts' sshd (qemu+ssh://); certtool and gnutls-cli check libvirt's TLS
      chromium chromium-driver fonts-dejavu-core)   # the last three: the dashboard's browser tests
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  # No service of a package we install may start on this machine (openssh-server's sshd
  # would listen on every address): Debian's policy-rc.d says no for the duration.
  policy=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  [[ -z $policy ]] || $SUDO rm -f "$policy"
fi
# libfuse needs the device; libvirt's embedded QEMU driver needs nothing else running.
[[ -e /dev/fuse ]] || { echo "error: /dev/fuse is missing (load the fuse module)" >&2; exit 1; }
export PATH="/opt/swift/usr/bin:$PATH"
command -v swift >/dev/null || { echo "error: swift is not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
# libvirt's QEMU driver resolves its default user even when qemu.conf says root; Debian
# creates it in libvirt-daemon-system, which we avoid (it pulls in systemd). Same ids.
if ! getent group libvirt-qemu >/dev/null; then addgroup --system --gid 64055 libvirt-qemu >/dev/null; fi
if ! getent passwd libvirt-qemu >/dev/null; then
  adduser --system --no-create-home --uid 64055 --ingroup libvirt-qemu libvirt-qemu >/dev/null
fi
