#!/bin/sh
# make-tiny-guest.sh [OUTDIR] — builds a tiny bootable guest for cloudfs from Debian packages.
#
# Produces OUTDIR/vmlinuz (Debian's current cloud kernel) and OUTDIR/initramfs.gz (a busybox
# initramfs whose /init loads the virtio modules, prints CLOUDFS-GUEST-BOOTED, the kernel
# cmdline, the ip= value, the NICs (name=mac) and the disks it sees to the console, then idles
# so the domain stays running). Boot it with direct kernel boot and
# `console=ttyS0`. Idempotent: does nothing when both outputs exist. Downloads only via apt.
set -eu

OUTDIR=${1:-./guest}
if [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initramfs.gz" ]; then
    echo "tiny guest already present in $OUTDIR"
    exit 0
fi
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

updated=
apt_update_once() {
    if [ -z "$updated" ]; then $SUDO apt-get update -qq; updated=1; fi
}

# Tools: cpio packs the initramfs; busybox-static is the whole userland (one static binary).
missing=
for pkg in cpio busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    apt_update_once
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# The current cloud kernel: linux-image-cloud-amd64 is the meta package that names it.
find_kernel() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1
}
KPKG=$(find_kernel)
if [ -z "$KPKG" ]; then
    apt_update_once
    KPKG=$(find_kernel)
fi
if [ -z "$KPKG" ]; then
    KPKG=$(apt-cache search '^linux-image-[0-9.-]*-cloud-amd64$' | cut -d' ' -f1 | sort -V | tail -n 1)
fi
[ -n "$KPKG" ] || { echo "no linux-image-*-cloud-amd64 package found in apt" >&2; exit 1; }

WORK=$(mktemp -d /tmp/cloudfs-guest-XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

# apt drops privileges to _apt for downloads: give it a directory it may write.
chmod 755 "$WORK"
mkdir "$WORK/dl"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$WORK/dl"; fi
echo "downloading $KPKG"
(cd "$WORK/dl" && { apt-get download -qq "$KPKG" 2>/dev/null || { apt_update_once; apt-get download -qq "$KPKG"; }; })
# Only the kernel and the few virtio modules the guest loads are needed, not all modules.
mkdir "$WORK/kernel"
MODULES="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_blk"
patterns=
for m in $MODULES; do patterns="$patterns ./lib/modules/*/$m.ko"; done
# shellcheck disable=SC2086
dpkg-deb --fsys-tarfile "$WORK"/dl/"$KPKG"_*.deb |
    tar -x -C "$WORK/kernel" --wildcards ./boot/vmlinuz-* $patterns

ROOT="$WORK/root"
mkdir -p "$ROOT/bin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp" "$ROOT/lib/modules"
cp "$(dpkg-query -L busybox-static | grep '/busybox$' | head -n 1)" "$ROOT/bin/busybox"
for applet in sh mount sleep cat echo ls insmod; do ln -s busybox "$ROOT/bin/$applet"; done
for m in $MODULES; do
    cp "$(find "$WORK/kernel/lib/modules" -name "$m.ko" | head -n 1)" "$ROOT/lib/modules/"
done
echo "$MODULES" > "$ROOT/lib/modules/order"
cat > "$ROOT/init" <<'INIT'
#!/bin/sh
# cloudfs tiny guest: load virtio, report what the guest sees, then idle.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
for m in $(cat /lib/modules/order); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
CMDLINE=$(cat /proc/cmdline)
IP=
for word in $CMDLINE; do
    case "$word" in ip=*) IP=${word#ip=} ;; esac
done
NICS=
for n in /sys/class/net/*; do
    [ "${n##*/}" = lo ] || NICS="$NICS ${n##*/}=$(cat "$n/address" 2>/dev/null)"
done
DISKS=
for d in /sys/block/*; do DISKS="$DISKS ${d##*/}"; done
{
    echo "CLOUDFS-GUEST-BOOTED"
    echo "cmdline: $CMDLINE"
    echo "ip: $IP"
    echo "nics:$NICS"
    echo "disks:$DISKS"
} > /dev/console
while true; do sleep 3600; done
INIT
chmod 755 "$ROOT/init"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -9) > "$WORK/initramfs.gz"
cp "$WORK"/kernel/boot/vmlinuz-* "$WORK/vmlinuz"
# Both outputs come from the same kernel package (the modules must match the kernel).
mv "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv "$WORK/initramfs.gz" "$OUTDIR/initramfs.gz"

echo "tiny guest ready: $OUTDIR/vmlinuz $OUTDIR/initramfs.gz ($KPKG)"
