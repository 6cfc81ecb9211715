#!/usr/bin/env bash
# Counts the FUSE requests the kernel sends the daemon for what scripts do most: a build
# (mkdir + cat wait), an action (echo stop|start > ctl + cat wait), cat of a status file
# (first and again) and ls -l, on one test:/// host. Each request is a round trip through
# /dev/fuse, which callgrind (scripts/instructions.sh) does not see; the counts hold still
# on a busy machine where wall-clock ratios drift.
#
#   scripts/fuse-requests.sh [CLOUDFS]     # default: .build/release/cloudfs
#
# It traces the daemon's read(2)s with strace: a read of 40 bytes or more from /dev/fuse
# is one request, its opcode the second 32-bit word of the header.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || {
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get install -y -qq strace >/dev/null
}
cloudfs=$(realpath "${1:-.build/release/cloudfs}")
work=$(mktemp -d /var/tmp/cloudfs-requests.XXXXXX)
tracer=""
cleanup() {
  [[ -z $tracer ]] || kill "$tracer" 2>/dev/null || true
  fusermount3 -uz "$work/cloud" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/cloud"
printf '%s' "<node><cpu><mode>host-model</mode><nodes>1</nodes><sockets>1</sockets><cores>64</cores><threads>1</threads><active>64</active><mhz>3000</mhz><model>x86_64</model></cpu><memory>$((256 << 20))</memory></node>" > "$work/node0.xml"
"$cloudfs" mount "$work/cloud" --state "$work/state" --host "test://$work/node0.xml" > /dev/null
pid=$(grep -o '[0-9]*' "$work/state/cloudfs.lock" | head -1)
head -c 1M /dev/zero > "$work/d.raw"
cp "$work/d.raw" "$work/cloud/images/disk"
echo m1.nano > "$work/cloud/defaults/flavor"
cd "$work/cloud/instances"
mkdir warm && cat warm/wait > /dev/null

# count LABEL N COMMAND: runs COMMAND (N operations) under the tracer and prints the
# requests per operation, by opcode.
count() {
  local label=$1 n=$2 cmd=$3 out="$work/trace"
  strace -f -qq -xx -s 8 -e trace=read -e signal=none -p "$pid" -o "$out" &
  tracer=$!
  sleep 0.5                     # strace attaches to every thread before it reports
  bash -c "$cmd"
  sleep 0.3                     # RELEASE and FORGET arrive after the command returned
  kill "$tracer"; wait "$tracer" 2>/dev/null || true
  tracer=""
  awk -v label="$label" -v n="$n" '
    BEGIN {
      split("LOOKUP FORGET GETATTR SETATTR READLINK SYMLINK - MKNOD MKDIR UNLINK RMDIR RENAME LINK OPEN READ WRITE STATFS RELEASE - FSYNC SETXATTR GETXATTR LISTXATTR REMOVEXATTR FLUSH INIT OPENDIR READDIR RELEASEDIR FSYNCDIR GETLK SETLK SETLKW ACCESS CREATE INTERRUPT BMAP DESTROY IOCTL POLL NOTIFY_REPLY BATCH_FORGET FALLOCATE READDIRPLUS", name, " ")
    }
    / = [0-9]+$/ && index($0, "\"\\x") {
      if (($NF + 0) < 40) next
      s = substr($0, index($0, "\"\\x"), 33)      # "\xHH" for the first eight bytes
      h = substr(s, 2 + 4 * 4 + 2, 2)               # the fifth byte: the opcode (all are < 256)
      op = index("0123456789abcdef", substr(h, 1, 1)) * 16 + index("0123456789abcdef", substr(h, 2, 1)) - 17
      c[op in name ? name[op] : op]++; total++
    }
    END {
      line = sprintf("%-34s %6.2f requests each:", label, total / n)
      PROCINFO["sorted_in"] = "@val_num_desc"
      for (k in c) line = line sprintf(" %s %.2f", k, c[k] / n)
      print line
    }' "$out"
}

count "build: mkdir + cat wait" 10 'for i in $(seq 1 10); do mkdir b$i; cat b$i/wait > /dev/null; done'
count "action: echo > ctl + cat wait" 20 'for i in $(seq 1 10); do echo stop > b1/ctl; cat b1/wait > /dev/null; echo start > b1/ctl; cat b1/wait > /dev/null; done'
count "cat */status (11 files), first" 11 'cat */status > /dev/null'
count "cat */status (11 files), again" 11 'cat */status > /dev/null'
count "cat */status (11 files), 2 s later" 11 'sleep 2; cat */status > /dev/null'
count "ls -l instances/ (11 entries)" 1 'ls -l > /dev/null'
