#!/usr/bin/env bash
# A "remote" libvirt compute host on this machine, as a second machine would be: its own
# network namespace (cfs-NAME, address 10.250.0.INDEX on an underlay bridge cfsul0 whose
# root-namespace side is 10.250.0.1) and its own private mount namespace, in which it runs
# `libvirtd --listen` on TCP (qemu+tcp://10.250.0.INDEX/system, no auth). Hosts reach
# each other and the root namespace over cfsul0, nothing else.
#
#   compute-host.sh start NAME INDEX [HIDE_PATH...]   NAME: [a-z0-9]{1,8}, INDEX: 2..250;
#       prints the URI as the last line of stdout. HIDE_PATHs (e.g. the controller's state
#       directory) get an empty tmpfs over them inside the host: it sees none of their files.
#   compute-host.sh stop NAME     destroys its domains, stops its daemon, removes everything;
#       idempotent, works on half-made hosts and after the test that started one crashed.
#   compute-host.sh list          running hosts, one "NAME URI" per line.
#   compute-host.sh agent-stop NAME / agent-start NAME   stops / starts the host's agent.
#   compute-host.sh known-host NAME   the host's SSH key as a known_hosts line.
#   compute-host.sh attach NETNS INDEX   joins another network namespace (a controller run
#       in one) to the underlay as 10.250.0.INDEX (its veth goes with the namespace).
#
# With CLOUDFS_AGENT_BIN (a cloudfs binary) and CLOUDFS_AGENT_PKI (a directory from
# `cloudfs agent-credentials --host NAME`), `start` also runs `cloudfs agent --name NAME`
# inside the host, listening on 10.250.0.INDEX:7355 (its log: NAME/log/cloudfs-agent.log);
# both are copied into the host first, so hiding the controller's files hides nothing it needs.
# When CLOUDFS_AGENT_PKI holds libvirt-pki/ (`agent-credentials --address 10.250.0.INDEX`),
# it becomes the host's /etc/pki and libvirtd also listens on TLS:
# qemu+tls://10.250.0.INDEX/system (port 16514, client certificates from the cloud's CA).
# With CLOUDFS_HOST_SSH_KEY (a public key file), the host also runs sshd on
# 10.250.0.INDEX:22 letting that key in as root, for qemu+ssh://root@10.250.0.INDEX/system;
# `known-host NAME` prints the known_hosts line of its freshly made host key.
#
# State lives in ${CLOUDFS_HOSTS_DIR:-/var/tmp/cloudfs-hosts}/NAME; inside the host it is
# bound over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log
# (its libvirtd log: NAME/log/libvirtd.log) and /run/netns (the namespaces its agent makes
# for local DHCP ports are its own, as on another machine), and with TLS or SSH over
# /etc/pki and /etc/ssh. Needs root.
set -euo pipefail
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

HOSTS_DIR=${CLOUDFS_HOSTS_DIR:-/var/tmp/cloudfs-hosts}
BRIDGE=cfsul0
BRIDGE_ADDR=10.250.0.1
SUBNET=10.250.0
MTU=9000                        # room for VXLAN's 50-byte header over a 1500-byte overlay
AGENT_PORT=7355                 # cloudfs agent (AgentAddress.defaultPort)
LOCK=/run/lock/cloudfs-compute-host.lock   # serialises bridge/netns changes between calls
SELF=$(readlink -f "$0")

die() { echo "compute-host: error: $*" >&2; exit 1; }
say() { echo "compute-host: $*" >&2; }

check_name() { [[ ${1:-} =~ ^[a-z0-9]{1,8}$ ]] || die "NAME must be 1-8 of [a-z0-9], got '${1:-}'"; }
uri_of() { echo "qemu+tcp://$1/system"; }
# The host's address, read from its namespace (so stop/list need no work directory).
addr_of() { { ip -n "cfs-$1" -4 -o addr show dev ul0 2>/dev/null || true; } | awk '{split($4, a, "/"); print a[1]; exit}'; }
netns_exists() { [[ -e /run/netns/cfs-$1 ]]; }
# PIDs of processes in the host's network namespace (libvirtd, its qemus, anything else).
ns_pids() { netns_exists "$1" && ip netns pids "cfs-$1" 2>/dev/null || true; }
alive() { [[ -e /proc/$1 ]] && [[ $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null || true; }
libvirtd_pids() { local p; for p in $(ns_pids "$1"); do [[ $(comm_of "$p") == libvirtd ]] && echo "$p"; done; return 0; }
answers() { timeout 3 virsh -q -c "$(uri_of "$1")" nodeinfo >/dev/null 2>&1; }

# A stable, distinct host UUID per NAME (no DMI here; equal UUIDs break migration).
host_uuid() {
  local h; h=$(printf 'cloudfs-compute-host:%s' "$1" | sha256sum | cut -c1-32)
  printf '%s-%s-5%s-a%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}

# TERM the given PIDs, wait up to $1 seconds, then KILL whatever is left.
term_then_kill() {
  local secs=$1 p i; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    local left=0; for p in "$@"; do alive "$p" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do
    local left=0; for p in "$@"; do alive "$p" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
}

cmd_list() {
  local ns name addr
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cfs-/ {print $1}'); do
    name=${ns#cfs-}
    [[ -n $(libvirtd_pids "$name") ]] || continue
    addr=$(addr_of "$name"); [[ -n $addr ]] && echo "$name $(uri_of "$addr")"
  done
  return 0
}

cmd_stop() {
  local name=$1 work="$HOSTS_DIR/$1" addr pids p dom
  addr=$(addr_of "$name")
  # 1. Destroy its domains through its own daemon (qemu would outlive libvirtd otherwise).
  if [[ -n $addr && -n $(libvirtd_pids "$name") ]]; then
    for dom in $(timeout 10 virsh -q -c "$(uri_of "$addr")" list --name 2>/dev/null || true); do
      timeout 15 virsh -q -c "$(uri_of "$addr")" destroy "$dom" >/dev/null 2>&1 || say "destroy $dom failed"
    done
  fi
  # 2. Stop libvirtd by its PID: those in the namespace, plus the pidfile's if the
  #    namespace is already gone (checked to be that host's libvirtd by its command line).
  pids=$(libvirtd_pids "$name")
  if [[ -f $work/run/libvirt/cfs-$name.pid ]]; then
    p=$(cat "$work/run/libvirt/cfs-$name.pid" 2>/dev/null || true)
    if [[ $p =~ ^[0-9]+$ ]] && alive "$p" && [[ $(comm_of "$p") == libvirtd ]] &&
       tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "-p /run/libvirt/cfs-$name.pid"; then
      pids="$pids $p"
    fi
  fi
  # shellcheck disable=SC2086
  term_then_kill 5 $(echo $pids | tr ' ' '\n' | sort -u)
  # 3. Anything still in the namespace (left-over qemu, a half-started launcher), and the
  #    dnsmasq and metadata server of each local DHCP port the agent made (in namespaces
  #    of their own).
  pids=$(ns_pids "$name")
  for p in "$work"/agent/state/network/networks/*/{dnsmasq,metadata}.pid; do
    [[ -f $p ]] || continue
    p=$(cat "$p" 2>/dev/null || true)
    if [[ $p =~ ^[0-9]+$ ]] && alive "$p" && [[ $(comm_of "$p") =~ ^(dnsmasq|cloudfs)$ ]]; then pids="$pids $p"; fi
  done
  # shellcheck disable=SC2086
  term_then_kill 3 $pids
  # 4. The network: veth, namespace, and the bridge once no host is left.
  (
    flock 9
    ip link del "cfsv-$name" 2>/dev/null || true
    if netns_exists "$name"; then ip netns del "cfs-$name"; fi
    if ! ip netns list 2>/dev/null | grep -q '^cfs-' && ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link del "$BRIDGE"
    fi
  ) 9>"$LOCK"
  # 5. Its files (binds lived only in its mount namespace, gone with its processes).
  rm -rf --one-file-system "$work"
  say "stopped $name"
}

# Closes every descriptor above stderr that this (sub)shell inherited.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    ((fd > 2)) && { eval "exec $fd>&-"; } 2>/dev/null
  done
  return 0
}

cmd_start() {
  local name=$1 index=$2; shift 2
  [[ $index =~ ^[0-9]+$ ]] && ((index >= 2 && index <= 250)) || die "INDEX must be 2..250, got '$index'"
  local addr="$SUBNET.$index" work="$HOSTS_DIR/$name" ns="cfs-$name" b other
  local uri; uri=$(uri_of "$addr")
  local tls=0 ssh_key=${CLOUDFS_HOST_SSH_KEY:-}
  [[ -n ${CLOUDFS_AGENT_PKI:-} && -f $CLOUDFS_AGENT_PKI/libvirt-pki/libvirt/servercert.pem ]] && tls=1
  if [[ -n $ssh_key ]]; then
    [[ -f $ssh_key ]] || die "CLOUDFS_HOST_SSH_KEY: no such file $ssh_key"
    [[ -x /usr/sbin/sshd ]] || die "sshd is not installed (openssh-server)"
  fi
  for b in libvirtd virsh ip unshare setsid flock; do command -v "$b" >/dev/null || die "$b is not installed"; done
  ((EUID == 0)) || die "must run as root"

  # Already running with this address: nothing to do. Otherwise clear any leftovers.
  if [[ -n $(libvirtd_pids "$name") ]]; then
    [[ $(addr_of "$name") == "$addr" ]] || die "$name is running with address $(addr_of "$name"), not $addr"
    if answers "$addr"; then say "$name already running"; echo "$uri"; return 0; fi
  fi
  if netns_exists "$name" || [[ -e $work ]]; then cmd_stop "$name" >/dev/null 2>&1; fi
  for other in $(ip netns list 2>/dev/null | awk '$1 ~ /^cfs-/ {print substr($1, 5)}'); do
    [[ $(addr_of "$other") == "$addr" ]] && die "address $addr is taken by host $other"
  done

  # Network: bridge (root side 10.250.0.1), namespace, veth cfsv-NAME <-> ul0.
  (
    flock 9
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge
      ip link set "$BRIDGE" mtu "$MTU"
    fi
    ip addr replace "$BRIDGE_ADDR/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "cfsv-$name" mtu "$MTU" type veth peer name ul0 mtu "$MTU" netns "$ns"
    ip link set "cfsv-$name" master "$BRIDGE"
    ip link set "cfsv-$name" up
    ip -n "$ns" addr add "$addr/24" dev ul0
    ip -n "$ns" link set ul0 up
  ) 9>"$LOCK" || { cmd_stop "$name" >/dev/null 2>&1 || true; die "could not set up the network of $name"; }

  # Configuration (seen inside the host as /etc/libvirt).
  mkdir -p "$work"/{etc/libvirt,run/libvirt,lib/libvirt/images,cache/libvirt,log/libvirt/qemu}
  cat >"$work/etc/libvirt/libvirtd.conf" <<EOF
# compute host $name ($addr); written by scripts/compute-host.sh
listen_tls = $tls
tls_port = "16514"
auth_tls = "none"
listen_tcp = 1
listen_addr = "$addr"
tcp_port = "16509"
auth_tcp = "none"
auth_unix_rw = "none"
host_uuid = "$(host_uuid "$name")"
log_outputs = "3:file:/var/log/libvirtd.log"
EOF
  cat >"$work/etc/libvirt/qemu.conf" <<EOF
# compute host $name ($addr); written by scripts/compute-host.sh
user = "root"
group = "root"
stdio_handler = "file"
namespaces = []
security_driver = "none"
cgroup_controllers = []
migration_host = "$addr"
migration_address = "$addr"
EOF
  echo "$index" >"$work/index"
  mkdir -p "$work/agent" "$work/netns"
  if ((tls)); then
    mkdir -p -m 700 "$work/pki"
    cp -r "$CLOUDFS_AGENT_PKI/libvirt-pki/." "$work/pki/"
  fi
  if [[ -n $ssh_key ]]; then
    # The host's own /etc/ssh: a new host key, root let in with the given key only.
    mkdir -p -m 700 "$work/ssh"
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$work/ssh/ssh_host_ed25519_key"
    install -m 600 "$ssh_key" "$work/ssh/authorized_keys"
    cat >"$work/ssh/sshd_config" <<EOF
# compute host $name ($addr); written by scripts/compute-host.sh
ListenAddress $addr:22
HostKey /etc/ssh/ssh_host_ed25519_key
AuthorizedKeysFile /etc/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/libvirt/sshd.pid
EOF
  fi
  if [[ -n ${CLOUDFS_AGENT_BIN:-} ]]; then
    [[ -x $CLOUDFS_AGENT_BIN && -f ${CLOUDFS_AGENT_PKI:-}/agent.pem ]] || die "CLOUDFS_AGENT_BIN needs CLOUDFS_AGENT_PKI with agent.pem"
    cp "$CLOUDFS_AGENT_BIN" "$work/agent/cloudfs"
    mkdir -p -m 700 "$work/agent/pki"
    cp "$CLOUDFS_AGENT_PKI"/{ca.pem,agent.pem,agent-key.pem} "$work/agent/pki/"
    echo "$addr:$AGENT_PORT" >"$work/agent/listen"
  fi

  # The cgroup hierarchies as the root namespace has them: `ip netns exec` remounts /sys.
  local cgroups
  cgroups=$(awk '$2 ~ "^/sys/fs/cgroup(/|$)" && ($3 == "cgroup" || $3 == "cgroup2") {print $2, $3, $4}' /proc/self/mounts)

  # Launch detached, all stdio to files so callers reading our stdout see EOF.
  local t0 launcher i
  t0=$(date +%s.%N)
  # Every other inherited descriptor is closed too: a caller that learns its child ended
  # when a socket it passed down closes (Foundation's Process) would otherwise wait for
  # libvirtd to exit.
  (
    close_inherited_fds
    CFS_CGROUPS=$cgroups CFS_HOSTS_DIR=$HOSTS_DIR exec setsid \
      ip netns exec "$ns" unshare -m --propagation private "$SELF" _run "$name" "$@" \
      </dev/null >"$work/daemon.out" 2>&1
  ) &
  launcher=$!
  echo "$launcher" >"$work/launcher.pid"

  for ((i = 0; i < 150; i++)); do
    answers "$addr" && break
    if ! alive "$launcher" && [[ -z $(libvirtd_pids "$name") ]]; then i=150; break; fi
    sleep 0.1
  done
  if ((i >= 150)); then
    {
      echo "compute-host: error: libvirtd of $name did not answer on $uri"
      echo "--- $work/daemon.out"; tail -n 20 "$work/daemon.out" 2>/dev/null || true
      echo "--- $work/log/libvirtd.log"; tail -n 20 "$work/log/libvirtd.log" 2>/dev/null || true
    } >&2
    cmd_stop "$name" >/dev/null 2>&1 || true
    exit 1
  fi
  if [[ -d $work/ssh ]] && ! port_answers "$addr" 22; then
    die "sshd of $name did not listen on $addr:22: $(tail -n 5 "$work/log/sshd.log" 2>/dev/null)"
  fi
  if [[ -f $work/agent/listen ]] && ! agent_answers "$addr"; then
    die "the agent of $name did not listen on $addr:$AGENT_PORT: $(tail -n 5 "$work/log/cloudfs-agent.log" 2>/dev/null)"
  fi
  say "$name ready after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}') s"
  echo "$uri"
}

# Whether something listens on ADDRESS PORT (waits up to 10 s).
port_answers() {
  local i
  for ((i = 0; i < 100; i++)); do
    timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
agent_answers() { port_answers "$1" "$AGENT_PORT"; }

cmd_known_host() {
  local addr key="$HOSTS_DIR/$1/ssh/ssh_host_ed25519_key.pub"
  addr=$(addr_of "$1")
  [[ -n $addr && -f $key ]] || die "$1 is not running with sshd"
  echo "$addr $(cut -d' ' -f1,2 "$key")"
}

# Inside the host's namespaces: the agent in the background, its output in its log.
launch_agent() {
  local name=$1
  [[ -x /var/lib/cloudfs-agent/cloudfs ]] || return 0
  setsid /var/lib/cloudfs-agent/cloudfs agent --name "$name" --listen "$(cat /var/lib/cloudfs-agent/listen)" \
    --pki /var/lib/cloudfs-agent/pki --state /var/lib/cloudfs-agent/state </dev/null >>/var/log/cloudfs-agent.log 2>&1 &
}

agent_pids() { local p; for p in $(ns_pids "$1"); do [[ $(comm_of "$p") == cloudfs ]] && echo "$p"; done; return 0; }

cmd_agent_stop() {
  # shellcheck disable=SC2046
  term_then_kill 5 $(agent_pids "$1")
  say "agent of $1 stopped"
}

cmd_agent_start() {
  local name=$1 pid addr
  [[ -z $(agent_pids "$name") ]] || { say "agent of $name already running"; return 0; }
  pid=$(libvirtd_pids "$name" | head -n 1)
  [[ -n $pid ]] || die "$name is not running"
  addr=$(addr_of "$name")
  ( close_inherited_fds; exec nsenter -t "$pid" -m -n "$SELF" _agent "$name" </dev/null >/dev/null 2>&1 )
  agent_answers "$addr" || die "the agent of $name did not listen on $addr:$AGENT_PORT"
  say "agent of $name started"
}

cmd_attach() {
  local ns=$1 index=$2 veth="cfsa-$2"
  [[ $index =~ ^[0-9]+$ ]] && ((index >= 2 && index <= 250)) || die "INDEX must be 2..250, got '$index'"
  [[ -e /run/netns/$ns ]] || die "no network namespace $ns"
  ip link show "$BRIDGE" >/dev/null 2>&1 || die "no underlay bridge $BRIDGE: start a host first"
  (
    flock 9
    ip link del "$veth" 2>/dev/null || true
    ip link add "$veth" mtu "$MTU" type veth peer name ul0 mtu "$MTU" netns "$ns"
    ip link set "$veth" master "$BRIDGE"
    ip link set "$veth" up
    ip -n "$ns" addr add "$SUBNET.$index/24" dev ul0
    ip -n "$ns" link set ul0 up
  ) 9>"$LOCK"
  say "namespace $ns is $SUBNET.$index on $BRIDGE"
}

# Internal: runs inside `ip netns exec cfs-NAME unshare -m --propagation private`.
# Binds the host's private directories, hides HIDE_PATHs and the other hosts' files,
# remounts cgroups, then becomes libvirtd.
cmd_run() {
  local name=$1; shift
  local work="$CFS_HOSTS_DIR/$name" d t p m
  # Never touch the machine's own mounts: refuse unless in new mount and net namespaces.
  [[ $(readlink /proc/self/ns/mnt) != "$(readlink /proc/1/ns/mnt)" &&
     $(readlink /proc/self/ns/net) != "$(readlink /proc/1/ns/net)" ]] || die "_run is internal (not in a private namespace)"
  for d in etc/libvirt:/etc/libvirt run/libvirt:/run/libvirt lib/libvirt:/var/lib/libvirt \
           cache/libvirt:/var/cache/libvirt log:/var/log agent:/var/lib/cloudfs-agent netns:/run/netns \
           pki:/etc/pki ssh:/etc/ssh; do
    [[ -d $work/${d%%:*} ]] || continue
    mkdir -p "${d#*:}"
    mount --bind "$work/${d%%:*}" "${d#*:}"
  done
  # Detach our copies of the machine's FUSE mounts: a copy held here would keep a FUSE
  # daemon's session alive after the controller unmounts it (and must never be touched).
  awk '$3 ~ /^fuse(\.|blk$|$)/ {print $2}' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
  # Empty tmpfs over each HIDE_PATH that exists (and over all hosts' work dirs); the
  # copies of mounts below it (e.g. a FUSE tree) are detached first so the host holds none.
  for p in "$@" "$CFS_HOSTS_DIR"; do
    [[ -e $p ]] || { echo "hide: $p does not exist, skipped"; continue; }
    p=$(readlink -f "$p")
    findmnt -rn -o TARGET | awk -v p="$p" '$0 == p || index($0, p "/") == 1' | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    if [[ -d $p ]]; then
      mount -t tmpfs -o mode=755,size=1m cloudfs-hidden "$p"
    else
      : >"$work/empty"; mount --bind "$work/empty" "$p"
    fi
  done
  # cgroups (libvirt wants them visible even with cgroup_controllers = []; LXC needs them).
  while read -r d t m; do
    [[ -n $d ]] || continue
    if [[ $d != /sys/fs/cgroup ]] && ! mountpoint -q /sys/fs/cgroup; then
      mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
    fi
    mkdir -p "$d"
    mount -t "$t" -o "$m" "$t" "$d" || echo "warning: could not mount $t at $d"
  done <<<"${CFS_CGROUPS:-}"
  launch_agent "$name"
  if [[ -f /etc/ssh/sshd_config && -f /etc/ssh/authorized_keys ]]; then
    mkdir -p /run/sshd
    /usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/log/sshd.log || echo "warning: sshd did not start"
  fi
  exec libvirtd --listen -f /etc/libvirt/libvirtd.conf -p "/run/libvirt/cfs-$name.pid"
}

case ${1:-} in
  start) (($# >= 3)) || die "usage: $0 start NAME INDEX [HIDE_PATH...]"; check_name "$2"; cmd_start "${@:2}" ;;
  stop)  (($# == 2)) || die "usage: $0 stop NAME"; check_name "$2"; ((EUID == 0)) || die "must run as root"; cmd_stop "$2" ;;
  list)  cmd_list ;;
  _run)  check_name "${2:-}"; cmd_run "${@:2}" ;;
  agent-stop)  (($# == 2)) || die "usage: $0 agent-stop NAME"; check_name "$2"; cmd_agent_stop "$2" ;;
  agent-start) (($# == 2)) || die "usage: $0 agent-start NAME"; check_name "$2"; cmd_agent_start "$2" ;;
  _agent) check_name "${2:-}"; launch_agent "$2" ;;
  known-host) (($# == 2)) || die "usage: $0 known-host NAME"; check_name "$2"; cmd_known_host "$2" ;;
  attach) (($# == 3)) || die "usage: $0 attach NETNS INDEX"; cmd_attach "$2" "$3" ;;
  *) die "usage: $0 start NAME INDEX [HIDE_PATH...] | stop NAME | list | agent-stop NAME | agent-start NAME | known-host NAME | attach NETNS INDEX" ;;
esac
