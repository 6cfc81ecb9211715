#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a booted VM:
# installs packages, builds cloudfs, makes a tiny guest (kernel + busybox initramfs from
# Debian packages), mounts the cloud, registers the guest as images, runs mkdir, waits,
# and prints the guest's console line proving it booted.
#
#   examples/quickstart.sh [MOUNTPOINT]        (default /tmp/cloudfs-quickstart/cloud)
#   KEEP=1 examples/quickstart.sh              leave the cloud mounted and the VM running
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
WORK=/tmp/cloudfs-quickstart
MNT=${1:-$WORK/cloud}
STATE=$WORK/state
export CLOUDFS_VIRT_TYPE=${CLOUDFS_VIRT_TYPE:-qemu}   # TCG: nested KVM is not reliable

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "installing packages";   scripts/install-deps.sh
step "building cloudfs";      swift build --product cloudfs 2>&1 | tail -1
CLOUDFS=$(swift build --show-bin-path)/cloudfs
step "making the tiny guest"; examples/make-tiny-guest.sh guest

mkdir -p "$MNT" "$STATE"
mountpoint -q "$MNT" && "$CLOUDFS" unmount "$MNT"
cleanup() {
  if [[ "${KEEP:-0}" != 1 ]] && mountpoint -q "$MNT"; then
    step "cleaning up (KEEP=1 keeps the cloud)"
    [[ -d "$MNT/instances/demo" ]] && rmdir "$MNT/instances/demo" && while [[ -d "$MNT/instances/demo" ]]; do sleep 0.2; done
    for i in vmlinuz initrd tiny; do rm -f "$MNT/images/$i"; done
    "$CLOUDFS" unmount "$MNT"
  fi
}
trap cleanup EXIT

step "cloudfs mount $MNT"
"$CLOUDFS" mount "$MNT" --state "$STATE"
set -x
cat "$MNT/hosts/local/state" "$MNT/hosts/local/uri"
[[ -e "$MNT/images/vmlinuz" ]] || cp guest/vmlinuz "$MNT/images/vmlinuz"
[[ -e "$MNT/images/initrd" ]]  || cp guest/initramfs.gz "$MNT/images/initrd"
qemu-img create -q -f qcow2 "$WORK/tiny.qcow2" 64M
[[ -e "$MNT/images/tiny" ]]    || cp "$WORK/tiny.qcow2" "$MNT/images/tiny"
echo vmlinuz > "$MNT/images.d/tiny/properties/kernel"
echo initrd  > "$MNT/images.d/tiny/properties/ramdisk"
echo "console=ttyS0 quiet" > "$MNT/images.d/tiny/properties/cmdline"
ls -l "$MNT/images/"
echo tiny    > "$MNT/defaults/image"
echo m1.nano > "$MNT/defaults/flavor"
mkdir "$MNT/instances/demo"
timeout 120 cat "$MNT/instances/demo/wait"
cat "$MNT/instances/demo/ip" "$MNT/instances/demo/host"
set +x
step "waiting for the guest's console"
for _ in $(seq 1 120); do
  grep -q CLOUDFS-GUEST-BOOTED "$MNT/instances/demo/console" 2>/dev/null && break
  sleep 0.5
done
grep CLOUDFS-GUEST-BOOTED "$MNT/instances/demo/console" || { echo "the guest did not boot; fault:"; cat "$MNT/instances/demo/fault"; exit 1; }
tail -n 5 "$MNT/events"
echo; echo "The VM booted because of mkdir. Explore: ls $MNT/instances/demo"
