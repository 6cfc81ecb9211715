#!/bin/sh
# make-tiny-guest.sh [OUTDIR] — builds a tiny bootable guest for cloudfs from Debian packages.
#
# Produces OUTDIR/vmlinuz (Debian's current cloud kernel) and OUTDIR/initramfs.gz (a busybox
# initramfs whose /init loads the virtio modules, prints CLOUDFS-GUEST-BOOTED, the kernel
# cmdline, the ip= value, the NICs (name=mac) and the disks it sees to the console, then idles
# so the domain stays running). Boot it with direct kernel boot and
# `console=ttyS0`.
#
# Networking, from the kernel command line (after the lines above, so they still come first):
#   cloudfs.dhcp=1             bring up the first non-lo NIC, run busybox udhcpc once (its
#                              script is /etc/udhcpc.script: address/prefix/router with `ip`),
#                              print `CLOUDFS-DHCP-ADDRESS=A.B.C.D` or `CLOUDFS-DHCP-FAILED`
#   cloudfs.ip=A.B.C.D/PREFIX  static configuration instead (flat networks), with optional
#   cloudfs.gw=A.B.C.D         default route; prints `CLOUDFS-STATIC-ADDRESS=A.B.C.D` or
#                              `CLOUDFS-STATIC-FAILED`
#   cloudfs.hostname=NAME      hostname (else the DHCP host name, else cloudfs-guest)
#   cloudfs.ip2=A.B.C.D/PREFIX a second address on the same NIC once it is configured
#                              (prints `CLOUDFS-SECOND-ADDRESS=A.B.C.D`)
#   cloudfs.ping=A.B.C.D       once configured, pings A.B.C.D once a second forever and
#                              prints `CLOUDFS-PING N A.B.C.D ok|lost` (N from 1)
#   cloudfs.metadata=1         once configured, fetches the metadata service's
#                              http://169.254.169.254/openstack/latest/meta_data.json (up to
#                              10 tries) and prints `CLOUDFS-METADATA JSON` (one line) or
#                              `CLOUDFS-METADATA-FAILED routes: ROUTES answer: STATUS LINE`
# DHCP's classless static routes (option 121, e.g. to 169.254.169.254) are installed.
# Once an address is configured the guest answers TCP port 80 with one banner line,
# `cloudfs-guest hostname=NAME ip=A.B.C.D`, and prints `CLOUDFS-TCP-80-LISTENING`.
#
# Disks (always, after the lines above): a background watcher rescans /sys/block/vd* about
# every 0.5 s and prints one console line per change (NAME is the guest's name, e.g. vdb):
#   CLOUDFS-DISK-ADDED NAME sectors=N first=TEXT   a disk appeared; TEXT is its first bytes up
#                              to the first newline or NUL, printable ASCII only, at most 60
#                              characters (empty for a blank disk). Disks present at boot other
#                              than vda (loop*, ram* ignored) are reported this way once at start.
#   CLOUDFS-DISK-MARKED NAME marker=CLOUDFS-MARK-ID  after ADDED, when NAME is not vda, is
#                              writable and its first 512 bytes were all zero: the line
#                              `CLOUDFS-MARK-ID` was written at offset 0 (dd conv=notrunc,fsync,
#                              then sync). ID is the guest's boot id
#                              (/proc/sys/kernel/random/boot_id), the same for every marker of
#                              one boot, so another guest shows it in first=.
#   CLOUDFS-DISK-REMOVED NAME  a disk went away
#   CLOUDFS-DISK-SIZE NAME sectors=N  a disk's size (/sys/block/NAME/size, 512-byte sectors)
#                              changed
#
# A counter (with `cloudfs.ticks=1` on the command line): `CLOUDFS-TICK N boot=ID` once a
# second from N=1, ID the boot id: a live migration keeps it counting, a reboot restarts it.
#
# Idempotent: does nothing when both outputs exist and OUTDIR/.version matches GUEST_VERSION
# below (bump it whenever /init changes, so older initramfs files get rebuilt). Downloads only
# via apt.
set -eu

# 2: DHCP / static addressing and the TCP banner on port 80.
# 3: the disk watcher (CLOUDFS-DISK-ADDED/MARKED/REMOVED/SIZE lines).
# 4: the tick counter (cloudfs.ticks=1).
# 5: cloudfs.ip2= and the pinger (cloudfs.ping=).
# 6: DHCP static routes and the metadata fetch (cloudfs.metadata=1).
GUEST_VERSION=6

OUTDIR=${1:-./guest}
if [ -s "$OUTDIR/vmlinuz" ] && [ -s "$OUTDIR/initramfs.gz" ] &&
    [ "$(cat "$OUTDIR/.version" 2>/dev/null)" = "$GUEST_VERSION" ]; then
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
mkdir -p "$ROOT/bin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp" "$ROOT/lib/modules" "$ROOT/etc"
cp "$(dpkg-query -L busybox-static | grep '/busybox$' | head -n 1)" "$ROOT/bin/busybox"
for applet in sh mount sleep cat echo ls insmod \
    udhcpc ip ifconfig route nc httpd hostname ping \
    dd od head tr sync; do
    ln -s busybox "$ROOT/bin/$applet"
done
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

# Networking (see the header of make-tiny-guest.sh). Nothing happens without these words.
DHCP= SIP= SGW= NAME= SIP2= PING= META=
for word in $CMDLINE; do
    case "$word" in
        cloudfs.dhcp=1) DHCP=1 ;;
        cloudfs.metadata=1) META=1 ;;
        cloudfs.ip=*) SIP=${word#cloudfs.ip=} ;;
        cloudfs.ip2=*) SIP2=${word#cloudfs.ip2=} ;;
        cloudfs.ping=*) PING=${word#cloudfs.ping=} ;;
        cloudfs.gw=*) SGW=${word#cloudfs.gw=} ;;
        cloudfs.hostname=*) NAME=${word#cloudfs.hostname=} ;;
    esac
done
if [ -n "$DHCP" ] || [ -n "$SIP" ]; then
    IFACE=
    for n in /sys/class/net/*; do
        [ "${n##*/}" = lo ] || { IFACE=${n##*/}; break; }
    done
    ip link set lo up
    ADDR=
    if [ -z "$IFACE" ]; then
        :
    elif [ -n "$DHCP" ]; then
        ip link set "$IFACE" up
        # Once: -q quits after the lease (the address stays), -n gives up after -t tries.
        udhcpc -i "$IFACE" -s /etc/udhcpc.script -O staticroutes -q -n -t 5 -T 3 >/tmp/udhcpc.log 2>&1
        [ -s /tmp/dhcp.address ] && ADDR=$(cat /tmp/dhcp.address)
        [ -z "$NAME" ] && [ -s /tmp/dhcp.hostname ] && NAME=$(cat /tmp/dhcp.hostname)
    else
        ip link set "$IFACE" up &&
            ip addr add "$SIP" dev "$IFACE" &&
            { [ -z "$SGW" ] || ip route add default via "$SGW" dev "$IFACE"; } &&
            ADDR=${SIP%%/*}
    fi
    KIND=STATIC
    [ -n "$DHCP" ] && KIND=DHCP
    if [ -n "$ADDR" ]; then
        echo "CLOUDFS-$KIND-ADDRESS=$ADDR" > /dev/console
        hostname "${NAME:-cloudfs-guest}"
        nc -ll -p 80 -e echo "cloudfs-guest hostname=${NAME:-cloudfs-guest} ip=$ADDR" &
        echo "CLOUDFS-TCP-80-LISTENING" > /dev/console
        if [ -n "$SIP2" ] && ip addr add "$SIP2" dev "$IFACE"; then
            echo "CLOUDFS-SECOND-ADDRESS=${SIP2%%/*}" > /dev/console
        fi
        if [ -n "$META" ]; then
            (
                # busybox-static's wget crashes without NSS: plain HTTP/1.0 over nc.
                NL='
'
                resp=
                for try in 1 2 3 4 5 6 7 8 9 10; do
                    resp=$(printf 'GET /openstack/latest/meta_data.json HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' |
                        nc -w 3 169.254.169.254 80 2>&1 | tr -d '\r')
                    case "$resp" in "HTTP/1."*" 200 "*) break ;; esac
                    sleep 1
                done
                case "$resp" in
                    "HTTP/1."*" 200 "*) echo "CLOUDFS-METADATA $(printf '%s' "${resp#*"$NL$NL"}" | tr -d '\n')" ;;
                    *) echo "CLOUDFS-METADATA-FAILED routes: $(ip route | tr '\n' ';') answer: $(printf '%s' "$resp" | head -n 1)" ;;
                esac
            ) </dev/null >/dev/console 2>&1 &
        fi
        if [ -n "$PING" ]; then
            (
                n=0
                while true; do
                    n=$((n + 1))
                    if ping -c 1 -W 1 "$PING" >/dev/null 2>&1; then r=ok; else r=lost; fi
                    echo "CLOUDFS-PING $n $PING $r"
                    [ "$r" = ok ] && sleep 1
                done
            ) </dev/null >/dev/console 2>&1 &
        fi
    else
        echo "CLOUDFS-$KIND-FAILED" > /dev/console
    fi
fi

# Disk watcher (see the header of make-tiny-guest.sh), in the background; all its output
# goes to the console.
BOOTID=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
[ -n "$BOOTID" ] || BOOTID=$(cat /proc/sys/kernel/random/uuid)
MARK="CLOUDFS-MARK-$BOOTID"
disk_added() { # NAME SECTORS
    # The /dev node may trail the /sys entry by a moment.
    tries=0
    while [ ! -b "/dev/$1" ] && [ "$tries" -lt 20 ]; do sleep 0.1; tries=$((tries + 1)); done
    first=$(head -c 512 "/dev/$1" 2>/dev/null | tr '\000' '\n' | head -n 1 | tr -cd ' -~' | head -c 60)
    echo "CLOUDFS-DISK-ADDED $1 sectors=$2 first=$first"
    [ "$1" != vda ] && [ -b "/dev/$1" ] && [ "$(cat "/sys/block/$1/ro" 2>/dev/null)" = 0 ] || return 0
    # Blank: the 512 bytes in hex, without spaces, newlines and zero digits, are nothing.
    nonzero=$(head -c 512 "/dev/$1" 2>/dev/null | od -An -tx1 -v | tr -d ' 0\n')
    [ -z "$nonzero" ] || return 0
    if printf '%s\n' "$MARK" | dd of="/dev/$1" conv=notrunc,fsync 2>/dev/null && sync; then
        echo "CLOUDFS-DISK-MARKED $1 marker=$MARK"
    fi
}
watch_disks() {
    known= # " NAME=SECTORS ..."
    for d in /sys/block/*; do
        n=${d##*/}
        case "$n" in loop*|ram*|'*') continue ;; esac
        s=$(cat "$d/size" 2>/dev/null)
        known="$known $n=$s"
        [ "$n" = vda ] || disk_added "$n" "$s"
    done
    while true; do
        sleep 0.5 2>/dev/null || sleep 1
        next=
        for e in $known; do
            n=${e%%=*} s=${e#*=}
            if [ ! -e "/sys/block/$n" ]; then
                echo "CLOUDFS-DISK-REMOVED $n"
                continue
            fi
            now=$(cat "/sys/block/$n/size" 2>/dev/null)
            if [ -n "$now" ] && [ "$now" != "$s" ]; then
                echo "CLOUDFS-DISK-SIZE $n sectors=$now"
                s=$now
            fi
            next="$next $n=$s"
        done
        for d in /sys/block/vd*; do
            [ -e "$d" ] || continue
            n=${d##*/}
            case "$next " in *" $n="*) continue ;; esac
            s=$(cat "$d/size" 2>/dev/null)
            next="$next $n=$s"
            disk_added "$n" "$s"
        done
        known=$next
    done
}
watch_disks </dev/null >/dev/console 2>&1 &

# The tick counter (see the header of make-tiny-guest.sh).
case " $CMDLINE " in *" cloudfs.ticks=1 "*)
    (
        boot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
        n=0
        while true; do n=$((n + 1)); echo "CLOUDFS-TICK $n boot=$boot"; sleep 1; done
    ) </dev/null >/dev/console 2>&1 &
esac

while true; do sleep 3600; done
INIT
chmod 755 "$ROOT/init"
cat > "$ROOT/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
# busybox udhcpc calls this with $1 = deconfig|bound|renew|leasefail|nak and the lease in the
# environment ($interface $ip $mask = prefix length, $router, $hostname, $staticroutes).
case "$1" in
    deconfig)
        ip addr flush dev "$interface"
        ip link set "$interface" up
        ;;
    bound|renew)
        ip addr flush dev "$interface"
        ip addr add "$ip/${mask:-24}" dev "$interface"
        for r in $router; do ip route add default via "$r" dev "$interface" && break; done
        # Option 121: "DEST/PREFIX GATEWAY ..." pairs.
        set -- $staticroutes
        while [ $# -ge 2 ]; do ip route add "$1" via "$2" dev "$interface"; shift 2; done
        echo "$ip" > /tmp/dhcp.address
        [ -n "$hostname" ] && echo "$hostname" > /tmp/dhcp.hostname
        ;;
esac
exit 0
SCRIPT
chmod 755 "$ROOT/etc/udhcpc.script"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -9) > "$WORK/initramfs.gz"
cp "$WORK"/kernel/boot/vmlinuz-* "$WORK/vmlinuz"
# Both outputs come from the same kernel package (the modules must match the kernel).
mv "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv "$WORK/initramfs.gz" "$OUTDIR/initramfs.gz"
echo "$GUEST_VERSION" > "$OUTDIR/.version"

echo "tiny guest ready: $OUTDIR/vmlinuz $OUTDIR/initramfs.gz ($KPKG)"
