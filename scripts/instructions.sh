#!/usr/bin/env bash
# Counts the daemon's user-space instructions for 40 serial builds (mkdir + cat wait) and
# 80 actions (stop/start through ctl + cat wait) on four test:/// hosts, under valgrind's
# callgrind: a measure that holds still on a shared 2-core VM where wall-clock ratios
# drift by 2x. The kernel's share (FUSE round trips, context switches) is not counted.
#
#   scripts/instructions.sh [CLOUDFS ...]     # default: .build/release/cloudfs
#
# Several binaries (e.g. an older build) are measured in turn, for a before/after table.
# Each run prints "NAME builds N instructions (N per build), actions N (N per action)".
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || {
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get install -y -qq valgrind >/dev/null
}
(($#)) || set -- .build/release/cloudfs
builds=40 actions=80
work=$(mktemp -d /var/tmp/cloudfs-instr.XXXXXX)
daemon=""
cleanup() {
  fusermount3 -uz "$work/cloud" 2>/dev/null || true
  [[ -z $daemon ]] || kill "$daemon" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

measure() {   # measure BINARY
  local name; name=$(realpath "$1")
  # valgrind cannot read the DWARF that Swift's toolchain writes: count on a copy without it.
  objcopy --strip-debug "$1" "$work/cloudfs"
  rm -rf "$work/cloud" "$work/state" "$work"/cg.*; mkdir -p "$work/cloud"
  local hosts=()
  for i in 0 1 2 3; do
    printf '%s' "<node><cpu><mode>host-model</mode><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads><active>64</active><mhz>3000</mhz><model>x86_64</model></cpu><memory>$((256 << 20))</memory></node>" > "$work/node$i.xml"
    hosts+=(--host "test://$work/node$i.xml")
  done
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/cg.%p" \
    "$work/cloudfs" mount "$work/cloud" --foreground --state "$work/state" "${hosts[@]}" > "$work/daemon.log" 2>&1 &
  daemon=$!
  for _ in $(seq 1 120); do mountpoint -q "$work/cloud" && break; sleep 1; done
  mountpoint -q "$work/cloud" || { echo "the daemon did not mount under valgrind:" >&2; tail "$work/daemon.log" >&2; exit 1; }
  head -c 1M /dev/zero > "$work/d.raw"
  cp "$work/d.raw" "$work/cloud/images/disk"
  echo m1.nano > "$work/cloud/defaults/flavor"
  local i v r
  for v in $(seq 1 5); do mkdir "$work/cloud/instances/warm$v"; cat "$work/cloud/instances/warm$v/wait" > /dev/null; done
  sleep 1
  callgrind_control -i on "$daemon" > /dev/null 2>&1
  for v in $(seq 1 $builds); do mkdir "$work/cloud/instances/b$v"; cat "$work/cloud/instances/b$v/wait" > /dev/null; done
  sleep 0.5   # what a build leaves behind (its events' transaction, invalidations) is its cost too
  callgrind_control -d builds "$daemon" > /dev/null 2>&1
  callgrind_control -z "$daemon" > /dev/null 2>&1
  for r in $(seq 1 $((actions / 20))); do
    for v in stop start; do
      for i in $(seq 1 10); do echo $v > "$work/cloud/instances/b$i/ctl"; cat "$work/cloud/instances/b$i/wait" > /dev/null; done
    done
  done
  sleep 0.5
  callgrind_control -d actions "$daemon" > /dev/null 2>&1
  callgrind_control -i off "$daemon" > /dev/null 2>&1
  fusermount3 -u "$work/cloud"
  wait "$daemon" 2>/dev/null || true
  daemon=""
  local b a
  b=$(grep -h -m1 '^summary:' "$work"/cg.*.1 | awk '{print $2}')
  a=$(grep -h -m1 '^summary:' "$work"/cg.*.2 | awk '{print $2}')
  [[ -n $b && -n $a ]] || { echo "no callgrind totals for $name" >&2; exit 1; }
  echo "$name builds $b instructions ($((b / builds)) per build), actions $a ($((a / actions)) per action)"
}

for binary in "$@"; do measure "$binary"; done
