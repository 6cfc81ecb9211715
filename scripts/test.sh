#!/usr/bin/env bash
# The whole test suite: unit, engine (libvirt test:///), mount (real FUSE + shell commands)
# and a real QEMU (TCG) boot of a tiny guest. Installs what it needs first.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh || exit 1
examples/make-tiny-guest.sh guest || exit 1
examples/make-cloud-guest.sh guest-cloud || exit 1   # a real cloud-init guest (cached by content)
export CLOUDFS_VIRT_TYPE=qemu            # nested KVM hangs guests on these machines
export CLOUDFS_GUEST_DIR="$PWD/guest"
export CLOUDFS_CLOUD_GUEST_DIR="$PWD/guest-cloud"
unmount_leftovers() {
  grep -E ' fuse(\.[a-z]+)? ' /proc/mounts | awk '{print $2}' | grep -E 'cloudfs' | while read -r m; do
    fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}
trap unmount_leftovers EXIT
swift build --build-tests || exit 1
swift test --skip-build --disable-swift-testing 2>&1 | tee .test.log   # all tests are XCTest
status=${PIPESTATUS[0]}
# One plain closing line: "tests: N passed, N skipped, N failed" from XCTest's final summary
# ("Executed 269 tests, with 1 test skipped and 0 failures ...").
summary=$(grep -E "Executed [0-9]+ tests?, with .*[0-9]+ failures?" .test.log | tail -1)
total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")
failed=$(sed -E 's/.* ([0-9]+) failures?.*/\1/' <<<"$summary")
skipped=0
if [[ $summary =~ ([0-9]+)\ tests?\ skipped ]]; then skipped=${BASH_REMATCH[1]}; fi
# The failures again at the end, with their assertion lines: a long log is cut in the middle.
grep -E "^Test Case .* failed \(|: error: " .test.log | tail -40 | sed 's/^/failed: /'
if [[ -n "$summary" ]]; then echo "tests: $((total - failed - skipped)) passed, $skipped skipped, $failed failed"; fi
exit "$status"
