import CloudTesting
import Foundation
import XCTest

/// The main job, end to end: the default local host (libvirt's embedded QEMU driver, TCG),
/// a tiny kernel + busybox initramfs guest copied into /images, `mkdir`, and the guest's
/// marker line in `console`.
final class QemuBootMountTests: GuestMountTestCase {
    func testMkdirBootsARealGuest() {
        XCTAssertEqual(read("hosts/local/state"), "up")
        XCTAssertEqual(read("hosts/local/hypervisor_type"), "qemu")
        uploadGuest()
        ok("mkdir instances/vm1")
        let status = ok("timeout 120 cat instances/vm1/wait", timeout: 150)
        XCTAssertEqual(status, "ACTIVE\n", read("instances/vm1/fault"))
        let console = waitForConsole("vm1")
        XCTAssertTrue(console.contains("CLOUDFS-GUEST-BOOTED"), "console: \(console.suffix(2000))")
        XCTAssertTrue(console.contains("cloudfs.ip=10.0.0.2/16"), "the guest sees its fixed IP on its command line")
        XCTAssertTrue(read("instances/vm1/domain.xml").contains("type='qemu'") || read("instances/vm1/domain.xml").contains("type=\"qemu\""))

        // The guest survives an unmount and is found again on the next mount.
        let id = read("instances/vm1/id")
        unmount()
        XCTAssertFalse(isMounted())
        XCTAssertEqual(qemuCount(), "1", "the guest kept running while cloudfs was unmounted")
        XCTAssertEqual(processesHolding(state + "/cloudfs.lock"), [], "QEMU did not inherit the state lock")
        XCTAssertNoThrow(try mount())
        XCTAssertEqual(read("instances/vm1/id"), id)
        XCTAssertEqual(read("instances/vm1/status"), "ACTIVE")
        XCTAssertEqual(read("instances/vm1/power_state"), "running")
        XCTAssertTrue(read("instances/vm1/console").contains("CLOUDFS-GUEST-BOOTED"))

        ok("rmdir instances/vm1")
        for _ in 0..<200 where !ok("ls instances").isEmpty { usleep(100_000) }
        XCTAssertEqual(ok("ls instances"), "")
        XCTAssertEqual(qemuCount(), "0", "rmdir left a QEMU process")
    }

    /// kill -9 of the daemon right after libvirt started the guest, before the build
    /// recorded ACTIVE: the restarted daemon adopts the running QEMU instead of replacing it.
    func testKillNineDuringARealBuildNeverDisturbsTheGuest() throws {
        uploadGuest()
        unmount()
        try mount(env: "CLOUDFS_CRASH_AT=build.spawned")
        sh("mkdir '\(mnt)/instances/vm1'")
        let dead = daemonDied()
        XCTAssertTrue(dead, "the daemon reached build.spawned and was killed")
        let qemuBefore = sh("pgrep -f '[q]emu-system.*\(state)'").out
        XCTAssertEqual(qemuCount(), "1", "the guest kept running after the daemon died")
        try mount()
        let status = ok("timeout 120 cat instances/vm1/wait", timeout: 150)
        XCTAssertEqual(status, "ACTIVE\n", read("instances/vm1/fault"))
        XCTAssertEqual(sh("pgrep -f '[q]emu-system.*\(state)'").out, qemuBefore, "the same QEMU process: never restarted")
        XCTAssertTrue(read("events").contains("instance.adopted vm1"))
        XCTAssertTrue(waitForConsole("vm1").contains("CLOUDFS-GUEST-BOOTED"))
        ok("rmdir instances/vm1")
        for _ in 0..<200 where !ok("ls instances").isEmpty { usleep(100_000) }
        XCTAssertEqual(qemuCount(), "0", "rmdir left a QEMU process")
    }

    /// QEMU processes running one of our domains (`-name guest=cloudfs-<uuid>`) under this state dir.
    func qemuCount() -> String {
        sh("pgrep -f '[q]emu-system.*\(state)' | wc -l").out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
