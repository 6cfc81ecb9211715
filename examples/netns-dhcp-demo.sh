#!/usr/bin/env bash
# netns-dhcp-demo.sh [GUEST_DIR] — proves, inside a private network namespace, that the tiny
# guest (examples/make-tiny-guest.sh) gets its address from dnsmasq by DHCP, answers ping and
# TCP port 80, and is reachable through a floating IP made with nftables DNAT/SNAT.
# Run as root. Sends nothing outside the namespaces it creates; always deletes them (trap).
#
# Topology (all inside netns cloudfs-demo-PID; a second netns plays an outside client):
#
#   guest 52:54:00:77:00:23 (DHCP -> 10.77.0.23) --tap-dhcp--+
#   guest 52:54:00:77:00:42 (cloudfs.ip=10.77.0.42/24) -tap-st-+-- br-test 10.77.0.1/24
#                                                               |    dnsmasq (DHCP only)
#   netns cloudfs-demo-PID-client  10.99.0.2 --veth-- 10.99.0.1 (fip-rtr)
#   floating IP 10.88.0.5 <-> 10.77.0.23 (nft table ip demo_nat)
#   libvirt guest 52:54:00:77:00:24 (DHCP -> 10.77.0.24) --vnet0 (made by libvirt)--+ br-test
#
# What was found (Debian 12, 2 cores, TCG; numbers from runs on this machine):
# - QEMU start -> CLOUDFS-DHCP-ADDRESS on the console: 3.2-3.6 s on an idle machine (one or two
#   guests), 6-9 s with builds running beside it; CLOUDFS-GUEST-BOOTED comes ~0.2 s earlier
#   (DHCP itself is fast: dnsmasq answers the first DISCOVER). A static guest: the same.
#   A MAC that dnsmasq does not know gets CLOUDFS-DHCP-FAILED after ~18.7 s (udhcpc -t 5 -T 3).
# - dnsmasq: `--port=0` turns DNS off; `--dhcp-range=10.77.0.0,static,255.255.255.0` plus
#   `--dhcp-hostsfile` (lines MAC,IP[,NAME]) hands out only the bound addresses ("no address
#   available" for other MACs). `--bind-interfaces --interface=br-test` keeps it on the
#   bridge. dnsmasq's router option defaults to its own address on the bridge (10.77.0.1), and
#   the NAME becomes the guest's hostname (option 12). dnsmasq-base ships no config and no
#   service: `--conf-file=/dev/null`, `--keep-in-foreground` (we own the PID),
#   `--dhcp-leasefile` in the scratch dir, `--user=root` (only dnsmasq(8)'s package, not
#   dnsmasq-base, is sure to create the `dnsmasq` user).
# - The tap: `ip tuntap add dev TAP mode tap` inside the netns, then `master br-test up`; QEMU
#   started through `nsenter --net=...` opens it with `-netdev tap,ifname=TAP,script=no,
#   downscript=no`. `-nodefaults` avoids QEMU's default NIC/VGA; the console goes to a file
#   with `-serial file:...`.
# - Floating IP with locally generated traffic: the nat OUTPUT hook runs *after* the routing
#   decision, so without any route to 10.88.0.5 connect() fails at once with ENETUNREACH and
#   the DNAT rule never sees a packet. Any route for it is enough; after DNAT the kernel
#   re-routes to 10.77.0.23. Tried and working: `ip route add 10.88.0.0/24 dev br-test`,
#   `... via 10.77.0.23`, `ip addr add 10.88.0.1/24 dev br-test`, and making the floating IP
#   a local address (`ip addr add 10.88.0.5/32 dev lo`, how a Neutron router owns it). The
#   `dummy` link type does not exist in this machine's kernel (no modules): use lo or a route.
# - Traffic from another host (here the client netns) takes the PREROUTING DNAT and needs
#   net.ipv4.ip_forward=1 in the router netns (per netns; sysctl under nsenter works).
#   Replies are un-NATed by conntrack; the POSTROUTING SNAT only applies to connections the
#   guest starts itself.
# - iputils ping may be missing: busybox ping (busybox-static) is used.
# - libvirt (skip with LIBVIRT=0): the embedded driver (`qemu:///embed?root=DIR`) lives in the
#   process that opens it, so one `virsh` run under `nsenter --net=...` holds it, fed commands
#   through a FIFO (not `virsh -q`: it hides the "Domain ... created" line). Inside the netns it creates the tap itself for
#   `<interface type='bridge'><source bridge='br-test'/>` (vnet0, MAC fe:54:.. = the guest
#   MAC with the first byte fe) and enslaves it: no extra setup. QEMU is daemonized by
#   libvirt, so killing virsh would not stop it: destroy it, and the cleanup also kills the
#   PID in DIR/run/qemu/NAME.pid. `create` returns after ~4.6 s in a fresh root (libvirt probes
#   QEMU's capabilities once per root, then caches them), DHCP address after 7-8 s.
#   So cloudfs itself could run its embedded driver in a netns by being started under
#   `nsenter --net=` (only the network namespace changes: its FUSE mount stays visible).
set -euo pipefail

[[ $(id -u) -eq 0 ]] || { echo "netns-dhcp-demo.sh: run as root" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
GUEST=${1:-$HERE/../guest}

NS=cloudfs-demo-$$
CLIENT=cloudfs-demo-$$-client
DHCP_MAC=52:54:00:77:00:23 DHCP_IP=10.77.0.23
LV_MAC=52:54:00:77:00:24 LV_IP=10.77.0.24
STATIC_MAC=52:54:00:77:00:42 STATIC_IP=10.77.0.42
FIP=10.88.0.5
WORK=$(mktemp -d /tmp/cloudfs-netns-demo-XXXXXX)
PIDS=() GUEST_PIDS=()

# Background processes must be started with nsenter itself, not through these functions: `f &`
# forks a subshell and $! would be that subshell, not the process the cleanup must kill.
in_ns() { nsenter --net="/var/run/netns/$NS" "$@"; }
in_client() { nsenter --net="/var/run/netns/$CLIENT" "$@"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { echo "== $*"; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if ((rc != 0)); then
        for c in "$WORK"/console-*.log; do
            [[ -e $c ]] || continue
            echo "-- failed (rc=$rc); ${c##*/} (tail):"; tail -n 8 "$c"
        done
        [[ -e $WORK/virsh.out ]] && { echo "-- virsh:"; tail -n 8 "$WORK/virsh.out"; }
        echo "-- dnsmasq log (tail):"; tail -n 20 "$WORK/dnsmasq.log" 2>/dev/null || true
    fi
    exec 4>&- 2>/dev/null || true
    if [[ -s $WORK/libvirt/run/qemu/netdemo.pid ]]; then
        kill "$(cat "$WORK/libvirt/run/qemu/netdemo.pid")" 2>/dev/null || true
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns del "$CLIENT" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    # Belt and braces: nothing may outlive the demo.
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then echo "warning: process $pid still running" >&2; fi
    done
    if [[ -n ${KEEP:-} ]]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Tools: the tiny guest builder installs cpio and busybox-static itself.
missing=()
for p in dnsmasq-base nftables iproute2 qemu-system-x86 busybox-static; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
"$HERE/make-tiny-guest.sh" "$GUEST"
GUEST=$(cd "$GUEST" && pwd)

say "netns $NS: br-test 10.77.0.1/24, taps, dnsmasq"
ip netns add "$NS"
in_ns ip link set lo up
in_ns ip link add br-test type bridge
in_ns ip addr add 10.77.0.1/24 dev br-test
in_ns ip link set br-test up
for tap in tap-dhcp tap-st; do
    in_ns ip tuntap add dev "$tap" mode tap
    in_ns ip link set "$tap" master br-test up
done

printf '%s\n' "$DHCP_MAC,$DHCP_IP,demo-guest" "$LV_MAC,$LV_IP,libvirt-guest" > "$WORK/dhcp-hosts"
nsenter --net="/var/run/netns/$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --user=root \
    --port=0 --no-resolv --no-hosts \
    --interface=br-test --bind-interfaces \
    --dhcp-range=10.77.0.0,static,255.255.255.0 \
    --dhcp-hostsfile="$WORK/dhcp-hosts" --dhcp-leasefile="$WORK/leases" \
    --pid-file="$WORK/dnsmasq.pid" --log-dhcp --log-facility="$WORK/dnsmasq.log" \
    >"$WORK/dnsmasq.out" 2>&1 &
PIDS+=($!)

# boot_guest NAME TAP MAC APPEND: direct kernel boot, TCG, console to WORK/console-NAME.log.
boot_guest() {
    nsenter --net="/var/run/netns/$NS" qemu-system-x86_64 -accel tcg -m 256 -nodefaults -display none -no-reboot \
        -serial "file:$WORK/console-$1.log" \
        -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.gz" -append "console=ttyS0 panic=-1 $4" \
        -netdev "tap,id=n0,ifname=$2,script=no,downscript=no" \
        -device "virtio-net-pci,netdev=n0,mac=$3" >"$WORK/qemu-$1.out" 2>&1 &
    PIDS+=($!)
    GUEST_PIDS+=($!)
}
# wait_console NAME PATTERN SECONDS
wait_console() {
    local deadline=$((SECONDS + $3))
    until grep -q "$2" "$WORK/console-$1.log" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "no '$2' on the $1 console within $3 s" >&2; return 1; }
        sleep 0.1
    done
}

say "booting the DHCP guest ($DHCP_MAC) and a static guest ($STATIC_MAC)"
t0=$(date +%s%N)
boot_guest dhcp tap-dhcp "$DHCP_MAC" "cloudfs.dhcp=1"
boot_guest static tap-st "$STATIC_MAC" "cloudfs.ip=$STATIC_IP/24 cloudfs.gw=10.77.0.1 cloudfs.hostname=static-guest"
wait_console dhcp CLOUDFS-GUEST-BOOTED 60
echo "qemu start -> CLOUDFS-GUEST-BOOTED: $(ms_since "$t0") ms"
wait_console dhcp 'CLOUDFS-DHCP-' 60
echo "qemu start -> CLOUDFS-DHCP-...:     $(ms_since "$t0") ms"
wait_console dhcp CLOUDFS-TCP-80-LISTENING 10 || true
grep CLOUDFS "$WORK/console-dhcp.log"
grep -qx "CLOUDFS-DHCP-ADDRESS=$DHCP_IP" <(tr -d '\r' <"$WORK/console-dhcp.log")
wait_console static 'CLOUDFS-STATIC-' 60
echo "static guest: qemu start -> CLOUDFS-STATIC-...: $(ms_since "$t0") ms (booted concurrently)"
grep CLOUDFS "$WORK/console-static.log"
grep -qx "CLOUDFS-STATIC-ADDRESS=$STATIC_IP" <(tr -d '\r' <"$WORK/console-static.log")
grep "DHCPACK" "$WORK/dnsmasq.log" | sed 's/^.*dnsmasq-dhcp/dnsmasq-dhcp/'

# banner HOST: one line from TCP port 80 (bash /dev/tcp: no extra tool).
banner() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/80 && head -n 1 <&3"; }

say "ping and TCP 80 from inside the namespace"
in_ns busybox ping -c 1 -W 2 "$DHCP_IP" | grep -E 'bytes from|received'
b=$(in_ns bash -c "$(declare -f banner); banner $DHCP_IP"); echo "$DHCP_IP:80 -> $b"
[[ $b == "cloudfs-guest hostname=demo-guest ip=$DHCP_IP" ]]
b=$(in_ns bash -c "$(declare -f banner); banner $STATIC_IP"); echo "$STATIC_IP:80 -> $b"
[[ $b == "cloudfs-guest hostname=static-guest ip=$STATIC_IP" ]]

say "floating IP $FIP -> $DHCP_IP with nftables (counters show the DNAT rules were used)"
in_ns nft -f - <<EOF
table ip demo_nat {
    chain output { type nat hook output priority -100; ip daddr $FIP counter dnat to $DHCP_IP; }
    chain prerouting { type nat hook prerouting priority -100; ip daddr $FIP counter dnat to $DHCP_IP; }
    chain postrouting { type nat hook postrouting priority 100; ip saddr $DHCP_IP counter snat to $FIP; }
}
EOF
# 1. No route to the floating IP: routing fails before the nat OUTPUT hook runs.
if out=$(in_ns bash -c "$(declare -f banner); banner $FIP" 2>&1); then
    echo "unexpected: TCP to $FIP worked without a route: $out" >&2; exit 1
fi
echo "without a route: ${out%%$'\n'*}   (expected: the output DNAT needs a route first)"
# 2. A route on the bridge.
in_ns ip route add 10.88.0.0/24 dev br-test
in_ns busybox ping -c 1 -W 2 "$FIP" | grep -E 'bytes from|received'
b=$(in_ns bash -c "$(declare -f banner); banner $FIP"); echo "route dev br-test: $FIP:80 -> $b"
[[ $b == *"ip=$DHCP_IP" ]]
in_ns ip route del 10.88.0.0/24 dev br-test
# 3. The floating IP as a local address of the router namespace (lo; no dummy module here).
in_ns ip addr add "$FIP/32" dev lo
in_ns busybox ping -c 1 -W 2 "$FIP" | grep -E 'bytes from|received'
b=$(in_ns bash -c "$(declare -f banner); banner $FIP"); echo "local $FIP on lo: $FIP:80 -> $b"
[[ $b == *"ip=$DHCP_IP" ]]
# 4. From another "host": the client netns routes via the demo netns, PREROUTING DNAT.
ip netns add "$CLIENT"
ip link add fip-rtr netns "$NS" type veth peer name fip-cli netns "$CLIENT"
in_ns ip addr add 10.99.0.1/24 dev fip-rtr
in_ns ip link set fip-rtr up
in_ns sysctl -qw net.ipv4.ip_forward=1
in_client ip link set lo up
in_client ip addr add 10.99.0.2/24 dev fip-cli
in_client ip link set fip-cli up
in_client ip route add default via 10.99.0.1
in_client busybox ping -c 1 -W 2 "$FIP" | grep -E 'bytes from|received'
b=$(in_client bash -c "$(declare -f banner); banner $FIP"); echo "from the client netns: $FIP:80 -> $b"
[[ $b == *"ip=$DHCP_IP" ]]
in_ns nft list table ip demo_nat | grep counter

if [[ ${LIBVIRT:-1} != 0 ]]; then
    say "a guest started by libvirt's embedded QEMU driver inside the netns, on br-test"
    # Stop the raw QEMU guests first: TCG guests share the 2 cores and skew the timing.
    kill "${GUEST_PIDS[@]}"
    wait "${GUEST_PIDS[@]}" 2>/dev/null || true
    mkdir -p "$WORK/libvirt/etc"
    # As Sources/LibvirtCompute/EmbedRoot.swift writes it (see there why).
    printf '%s\n' 'user = "root"' 'group = "root"' 'stdio_handler = "file"' 'namespaces = []' \
        > "$WORK/libvirt/etc/qemu.conf"
    cat > "$WORK/domain.xml" <<XML
<domain type='qemu'>
  <name>netdemo</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinuz</kernel>
    <initrd>$GUEST/initramfs.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 cloudfs.dhcp=1</cmdline>
  </os>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <interface type='bridge'>
      <source bridge='br-test'/>
      <mac address='$LV_MAC'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'><source path='$WORK/console-libvirt.log'/><target port='0'/></serial>
  </devices>
</domain>
XML
    mkfifo "$WORK/virsh.in"
    nsenter --net="/var/run/netns/$NS" virsh -c "qemu:///embed?root=$WORK/libvirt" \
        <"$WORK/virsh.in" >"$WORK/virsh.out" 2>&1 &
    PIDS+=($!)
    exec 4>"$WORK/virsh.in"
    t0=$(date +%s%N)
    echo "create $WORK/domain.xml" >&4
    deadline=$((SECONDS + 90))
    until grep -q "Domain 'netdemo' created" "$WORK/virsh.out"; do
        ((SECONDS < deadline)) || { cat "$WORK/virsh.out" >&2; exit 1; }
        sleep 0.1
    done
    echo "virsh create returned: $(ms_since "$t0") ms"
    wait_console libvirt 'CLOUDFS-DHCP-' 60
    echo "virsh create -> CLOUDFS-DHCP-...: $(ms_since "$t0") ms"
    grep CLOUDFS "$WORK/console-libvirt.log"
    grep -qx "CLOUDFS-DHCP-ADDRESS=$LV_IP" <(tr -d '\r' <"$WORK/console-libvirt.log")
    in_ns ip -br link show master br-test
    in_ns busybox ping -c 1 -W 2 "$LV_IP" | grep -E 'bytes from|received'
    b=$(in_ns bash -c "$(declare -f banner); banner $LV_IP"); echo "$LV_IP:80 -> $b"
    [[ $b == "cloudfs-guest hostname=libvirt-guest ip=$LV_IP" ]]
    echo "destroy netdemo" >&4
    echo "quit" >&4
    exec 4>&-
    wait "${PIDS[-1]}"
    grep -q "Domain 'netdemo' destroyed" "$WORK/virsh.out"
fi

say "all checks passed"
