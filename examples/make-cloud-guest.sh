#!/bin/bash
# make-cloud-guest.sh OUTDIR — builds a real Debian 12 (bookworm) cloud image for cloudfs from
# Debian's packages (mmdebstrap), without loop devices or mounts.
#
# Produces OUTDIR/debian-12-cloud.qcow2 (about 150 MB, zstd-compressed qcow2: QEMU >= 5.1): an
# MBR disk (3 GiB virtual) with
#   partition 1  FAT16 "BOOT" (128 MiB): syslinux, vmlinuz, initrd.img, syslinux.cfg (the kernel
#                command line is `root=UUID=... ro console=tty0 console=ttyS0,115200n8`)
#   partition 2  ext4 "rootfs", the rest of the disk (cloud-init's growpart/resizefs grow it
#                when the disk is made bigger)
# The guest: systemd, udev, cloud-init 22.4 (datasources ConfigDrive, OpenStack, NoCloud, None),
# openssh-server (key-only; ed25519 and ecdsa host keys are made on first boot), sudo, ifupdown +
# isc-dhcp-client (cloud-init renders its network config to /etc/network/interfaces.d via its
# ENI renderer: DHCP on the first NIC by default, static from a ConfigDrive's
# network_data.json), the default user `debian` (passwordless sudo, login by SSH key only).
# Boot it with a serial console (ttyS0) to see the kernel, systemd and cloud-init output.
#
# Notes for the cloud side:
#   - ConfigDrive v2: an ISO 9660 (or vfat) labelled `config-2` holding
#     openstack/latest/{meta_data.json,user_data,network_data.json}, e.g. an IDE cdrom.
#   - NoCloud: a filesystem labelled `cidata` with meta-data / user-data (/ network-config).
#   - OpenStack metadata service (http://169.254.169.254): cloud-init only tries it when the
#     SMBIOS system product is "OpenStack Nova" (or "OpenStack Compute"), as Nova sets it
#     (libvirt: <sysinfo type='smbios'> + <os><smbios mode='sysinfo'/>).
#   - The initramfs has sr_mod, so an IDE/SATA config drive is seen by ds-identify; with no
#     datasource found, cloud-init still runs (datasource None): DHCP on the first NIC,
#     user `debian` without any key.
#   - The kernel and initrd live in the FAT partition: a kernel upgrade inside the guest does
#     not change what boots.
#
# Cached by content: nothing is rebuilt when OUTDIR/debian-12-cloud.qcow2 exists and
# OUTDIR/debian-12-cloud.stamp holds the hash of this script (which contains the package list).
# Installs the host tools it needs with apt. Downloads only via apt, from the Debian mirrors in
# the host's apt sources (/etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list,
# else deb.debian.org). Needs root (mmdebstrap's root mode). About 1.5 minutes on 2 cores.
set -euo pipefail

OUTDIR=${1:?usage: make-cloud-guest.sh OUTDIR}
IMAGE=debian-12-cloud.qcow2
STAMP=debian-12-cloud.stamp
SUITE=bookworm
DISK_SIZE_MIB=3072
BOOT_SIZE_MIB=128
# The guest's packages (besides minbase).
GUEST_PACKAGES="systemd-sysv,udev,dbus,cloud-init,cloud-guest-utils,fdisk,openssh-server,sudo"
GUEST_PACKAGES="$GUEST_PACKAGES,linux-image-cloud-amd64,initramfs-tools,e2fsprogs"
# cloud-init's ENI renderer (used when ifupdown is installed) writes routes as
# `post-up route add ...` (net-tools) and DNS servers as `dns-nameservers` (resolvconf).
GUEST_PACKAGES="$GUEST_PACKAGES,ifupdown,isc-dhcp-client,net-tools,resolvconf,iproute2,netbase,iputils-ping"
# Host tools.
HOST_PACKAGES="mmdebstrap e2fsprogs dosfstools mtools syslinux syslinux-common fdisk qemu-utils mount"

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HASH=$({ cat "$SELF"; echo "$GUEST_PACKAGES"; } | sha256sum | cut -d' ' -f1)
if [ -s "$OUTDIR/$IMAGE" ] && [ "$(cat "$OUTDIR/$STAMP" 2>/dev/null)" = "$HASH" ]; then
    echo "cloud guest already present: $OUTDIR/$IMAGE"
    exit 0
fi
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
[ "$(id -u)" -eq 0 ] || { echo "make-cloud-guest.sh: needs root (mmdebstrap root mode)" >&2; exit 1; }

T0=$(date +%s.%N)
LAST=$T0
step() { # print the time the previous step took and in total
    local now
    now=$(date +%s.%N)
    awk -v s="$1" -v a="$LAST" -v b="$now" -v t="$T0" 'BEGIN { printf "  %-20s %6.1f s  (total %6.1f s)\n", s, b - a, b - t }'
    LAST=$now
}

missing=
for pkg in $HOST_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "installing:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
step "host packages"

# Mirrors: the host's Debian sources.
MIRRORS=()
if [ -s /etc/apt/sources.list.d/debian.sources ]; then
    MIRRORS=(/etc/apt/sources.list.d/debian.sources)
elif grep -qs '^deb ' /etc/apt/sources.list; then
    MIRRORS=(/etc/apt/sources.list)
else
    MIRRORS=("deb http://deb.debian.org/debian $SUITE main"
        "deb http://deb.debian.org/debian $SUITE-updates main"
        "deb http://deb.debian.org/debian-security $SUITE-security main")
fi

WORK=$(mktemp -d /tmp/cloudfs-cloud-guest-XXXXXX)
cleanup() {
    # mmdebstrap unmounts what it mounted, even on failure; never cross into a mount anyway.
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
chmod 755 "$WORK"
ROOT=$WORK/root
ROOT_UUID=$(cat /proc/sys/kernel/random/uuid)

# After the essential packages: no docs/man pages/translations for the other packages (a path
# filter during mmdebstrap's own extraction of the essential packages costs ~20 s, so those
# are deleted at the end instead), and no initramfs until the end (the kernel's postinst and
# later triggers would build it twice).
cat > "$WORK/essential-hook.sh" <<'HOOK'
#!/bin/sh
set -eu
cat > "$1/etc/dpkg/dpkg.cfg.d/01-cloudfs-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
printf '#!/bin/sh\nexit 0\n' > "$1/usr/sbin/update-initramfs"
chmod 755 "$1/usr/sbin/update-initramfs"
HOOK

cat > "$WORK/customize-hook.sh" <<'HOOK'
#!/bin/sh
set -eu
R=$1
ROOT_UUID=$2
# Never write into the host's own tree.
case "$R" in ""|/) echo "customize-hook: bad root '$R'" >&2; exit 1 ;; esac
[ -d "$R/etc" ] && [ -n "$ROOT_UUID" ] || { echo "customize-hook: no $R/etc or root UUID" >&2; exit 1; }

# One small initramfs: only the drivers for the root disk (ext4 and nvme are built in), and
# sr_mod so that an IDE/SATA cdrom (a config drive) exists when cloud-init's ds-identify
# looks for it (a systemd generator, before udev loads modules in the real root).
rm "$R/usr/sbin/update-initramfs"
chroot "$R" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs
cat > "$R/etc/initramfs-tools/conf.d/cloudfs.conf" <<'EOF'
MODULES=list
RESUME=none
EOF
printf '%s\n' virtio_pci virtio_blk virtio_scsi sd_mod sr_mod ata_piix ata_generic ahci >> "$R/etc/initramfs-tools/modules"
# Modules udev would load at coldplug for nothing, each costing a TCG vCPU 0.3-1.5 s while
# cloud-init-local starts: kvm (the emulated CPU offers SVM/VMX; nested KVM under TCG is of
# no use), CPU frequency drivers (which then fail: a VM has no P-states), raw serio.
# An explicit `modprobe NAME` still loads any of them.
cat > "$R/etc/modprobe.d/cloudfs.conf" <<'EOF'
blacklist kvm
blacklist kvm_amd
blacklist kvm_intel
blacklist powernow_k8
blacklist acpi_cpufreq
blacklist pcc_cpufreq
blacklist serio_raw
EOF
chroot "$R" update-initramfs -c -k all >/dev/null

# cloud-init
cat > "$R/etc/cloud/cloud.cfg.d/90_cloudfs.cfg" <<'EOF'
datasource_list: [ ConfigDrive, OpenStack, NoCloud, None ]
datasource:
  OpenStack:
    metadata_urls: [ 'http://169.254.169.254' ]
    max_wait: 30
    timeout: 5
ssh_pwauth: false
disable_root: true
# /etc/hosts with the instance's hostname (else sudo cannot resolve it).
manage_etc_hosts: true
# The image's locale, so cc_locale has nothing to generate (there is no `locales` package).
locale: C.UTF-8
# No RSA host key: generating it takes seconds under TCG.
ssh_genkeytypes: [ ed25519, ecdsa ]
grub_dpkg:
  enabled: false
EOF
echo LANG=C.UTF-8 > "$R/etc/default/locale"
# ds-identify: run cloud-init (datasource None: DHCP, the default user) even when no
# datasource is found, instead of disabling it.
echo 'policy: search,found=all,maybe=all,notfound=enabled' > "$R/etc/cloud/ds-identify.cfg"

# sshd: keys only; host keys are made on first boot (cloud-init's ssh module).
# PasswordAuthentication goes in the file cloud-init's set-passwords module keeps
# (sshd_config.d/50-cloud-init.conf, read before 50-cloudfs.conf): already holding what
# `ssh_pwauth: false` asks for, cloud-init leaves it alone instead of creating it and
# restarting sshd in the middle of boot (~2.5 s, and SSH logins dropped); user-data's
# `ssh_pwauth: true` still turns passwords on.
printf 'PasswordAuthentication no\n' > "$R/etc/ssh/sshd_config.d/50-cloud-init.conf"
chmod 600 "$R/etc/ssh/sshd_config.d/50-cloud-init.conf"
cat > "$R/etc/ssh/sshd_config.d/50-cloudfs.conf" <<'EOF'
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
EOF
rm -f "$R"/etc/ssh/ssh_host_*

# No boot-time fsck (pass 0): the journal makes the root consistent, and systemd-fsck-root
# sits on the path to cloud-init-local (~2.5 s under TCG). (The initramfs, made above while
# fstab was still empty, has no fsck either.)
cat > "$R/etc/fstab" <<EOF
UUID=$ROOT_UUID / ext4 rw,discard,errors=remount-ro 0 0
EOF
echo localhost > "$R/etc/hostname"
# mmdebstrap copied the host's resolv.conf: use resolvconf's instead.
rm -f "$R/etc/resolv.conf"
ln -s ../run/resolvconf/resolv.conf "$R/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"

# No periodic apt/e2scrub jobs in test guests, and no pstore archiving (no EFI, no pstore).
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service \
    systemd-pstore.service; do
    chroot "$R" systemctl disable --quiet "$u" 2>/dev/null || true
done
# Boot work a TCG vCPU pays for while cloud-init-local starts, for nothing here:
# - modprobe@ units for modules nothing in the guest uses: dm_mod and loop (pulled in by
#   systemd-repart, which never runs), drm (by logind; there is no display), efi_pstore;
# - binfmt_misc (python3.11's .pyc handler only);
# - generators for what this image has none of (GPT auto-mount, crypttab, integritytab,
#   veritytab, hibernation resume, offline updates, systemd.run=), each a process that
#   loads libsystemd-shared before systemd can queue a single job.
for u in modprobe@dm_mod.service modprobe@loop.service modprobe@drm.service modprobe@efi_pstore.service \
    systemd-binfmt.service proc-sys-fs-binfmt_misc.automount; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
done
mkdir -p "$R/etc/systemd/system-generators"
for g in systemd-gpt-auto-generator systemd-cryptsetup-generator systemd-integritysetup-generator \
    systemd-veritysetup-generator systemd-hibernate-resume-generator systemd-system-update-generator \
    systemd-run-generator; do
    ln -sf /dev/null "$R/etc/systemd/system-generators/$g"
done
# sshd first: at basic.target it and cloud-config (a Python start of ~5-10 s under TCG) would
# share the one vCPU; SSH is what a user waits for. (cloud-config copes with a running sshd.)
mkdir -p "$R/etc/systemd/system/cloud-config.service.d"
printf '[Unit]\nAfter=ssh.service\n' > "$R/etc/systemd/system/cloud-config.service.d/cloudfs-after-ssh.conf"
# ifupdown's hooks for systemd-resolved (not installed) run `systemctl is-enabled` for every
# interface networking.service raises.
rm -f "$R/etc/network/if-up.d/resolved" "$R/etc/network/if-down.d/resolved"

# A fresh instance: no machine id, no cloud-init state, no logs, caches, lists, docs.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
rm -rf "$R"/var/lib/cloud/* "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/* "$R"/var/cache/debconf/*-old \
    "$R"/var/lib/dpkg/*-old "$R"/var/log/* "$R"/tmp/* "$R"/usr/share/man/* "$R"/usr/share/info/* \
    "$R"/usr/share/lintian/*
find "$R/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$R/usr/share/doc" -mindepth 1 -type d -empty -delete
[ ! -d "$R/usr/share/locale" ] || find "$R/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
HOOK
chmod 755 "$WORK/essential-hook.sh" "$WORK/customize-hook.sh"

echo "mmdebstrap $SUITE (minbase + $GUEST_PACKAGES)"
if ! mmdebstrap --quiet --variant=minbase --mode=root --format=directory \
    --include="$GUEST_PACKAGES" \
    --dpkgopt=force-unsafe-io \
    --aptopt='Acquire::Languages "none"' \
    --essential-hook="$WORK/essential-hook.sh \"\$1\"" \
    --customize-hook="$WORK/customize-hook.sh \"\$1\" $ROOT_UUID" \
    "$SUITE" "$ROOT" "${MIRRORS[@]}" > "$WORK/mmdebstrap.log" 2>&1; then
    tail -n 40 "$WORK/mmdebstrap.log" >&2
    echo "make-cloud-guest.sh: mmdebstrap failed" >&2
    exit 1
fi
step "mmdebstrap"

KVER=$(basename "$(ls -d "$ROOT"/usr/lib/modules/* | sort -V | tail -n 1)")
[ -s "$ROOT/boot/vmlinuz-$KVER" ] && [ -s "$ROOT/boot/initrd.img-$KVER" ] ||
    { echo "make-cloud-guest.sh: no kernel/initrd for $KVER" >&2; exit 1; }

# Partition table: 1 MiB gap, FAT /boot (bootable), ext4 root to the end of the disk.
DISK=$WORK/disk.raw
truncate -s "${DISK_SIZE_MIB}M" "$DISK"
BOOT_START=2048
BOOT_SECTORS=$((BOOT_SIZE_MIB * 2048))
ROOT_START=$((BOOT_START + BOOT_SECTORS))
ROOT_SECTORS=$((DISK_SIZE_MIB * 2048 - ROOT_START))
sfdisk --quiet "$DISK" <<EOF
label: dos
start=$BOOT_START, size=$BOOT_SECTORS, type=e, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
EOF
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$DISK" bs=440 count=1 conv=notrunc status=none

# The boot partition, built as its own file with mtools and syslinux (no mounts), then copied in.
BOOTFS=$WORK/boot.fat
mkfs.fat -F 16 -n BOOT -C "$BOOTFS" $((BOOT_SIZE_MIB * 1024)) >/dev/null
syslinux --install "$BOOTFS"
cat > "$WORK/syslinux.cfg" <<EOF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200n8
EOF
mcopy -i "$BOOTFS" "$WORK/syslinux.cfg" ::/syslinux.cfg
mcopy -i "$BOOTFS" "$ROOT/boot/vmlinuz-$KVER" ::/vmlinuz
mcopy -i "$BOOTFS" "$ROOT/boot/initrd.img-$KVER" ::/initrd.img
dd if="$BOOTFS" of="$DISK" bs=1M seek=1 conv=notrunc,sparse status=none
step "boot partition"

# The root partition: mkfs.ext4 -d writes the tree straight into the disk file at its offset.
mkfs.ext4 -q -F -L rootfs -U "$ROOT_UUID" -d "$ROOT" \
    -E offset=$((ROOT_START * 512)),lazy_itable_init=1,lazy_journal_init=1,nodiscard \
    "$DISK" $((ROOT_SECTORS / 2))k
step "root filesystem"

qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$DISK" "$OUTDIR/$IMAGE.tmp"
mv "$OUTDIR/$IMAGE.tmp" "$OUTDIR/$IMAGE"
echo "$HASH" > "$OUTDIR/$STAMP"
step "qcow2"

echo "cloud guest ready: $OUTDIR/$IMAGE ($(du -h "$OUTDIR/$IMAGE" | cut -f1), kernel $KVER)"
