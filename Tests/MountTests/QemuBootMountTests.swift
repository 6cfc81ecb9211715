import CloudTesting
import Foundation
import XCTest

/// The main job, end to end: the default local host (libvirt's embedded QEMU driver, TCG),
/// a tiny kernel + busybox initramfs guest copied into /images, `mkdir`, and the guest's
/// marker line in `console`.
final class QemuBootMountTests: MountTestCase {
    override var hostArgs: [String] { [] }   // the default host: qemu:///embed in the state dir

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            throw XCTSkip("qemu-system-x86_64 is not installed (scripts/install-deps.sh installs it)")
        }
        let guest = TestPaths.guestDir
        // Idempotent and quick when the guest is current; rebuilds an older guest version.
        let made = sh("'\(TestPaths.packageRoot)/examples/make-tiny-guest.sh' '\(guest)'", timeout: 300)
        XCTAssertEqual(made.status, 0, made.err)
        setenv("CLOUDFS_VIRT_TYPE", "qemu", 1)
        try super.setUpWithError()
    }

    /// The tiny guest as three images: kernel (aki), initramfs (ari) and a qcow2 root
    /// whose properties name them.
    func uploadGuest() {
        let guest = TestPaths.guestDir
        ok("cp '\(guest)/vmlinuz' images/vmlinuz && cp '\(guest)/initramfs.gz' images/initrd")
        XCTAssertEqual(read("images.d/vmlinuz/format"), "aki")
        XCTAssertEqual(read("images.d/initrd/format"), "ari")
        ok("qemu-img create -q -f qcow2 '\(work)/root.qcow2' 64M && cp '\(work)/root.qcow2' images/tiny")
        ok("echo vmlinuz > images.d/tiny/properties/kernel && echo initrd > images.d/tiny/properties/ramdisk")
        ok("echo 'console=ttyS0' > images.d/tiny/properties/cmdline && echo m1.nano > defaults/flavor")
    }

    func waitForConsole(_ name: String, _ marker: String = "CLOUDFS-GUEST-BOOTED") -> String {
        var console = ""
        for _ in 0..<180 {
            console = read("instances/\(name)/console")
            if console.contains(marker) { break }
            usleep(500_000)
        }
        return console
    }

    /// The pids with `path` open (from /proc/PID/fd).
    func processesHolding(_ path: String) -> [Int32] {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return procs.compactMap { Int32($0) }.filter { pid in
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == path }
        }
    }

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
        var dead = false
        for _ in 0..<600 {
            var st = stat()
            if stat(mnt, &st) != 0 && errno == ENOTCONN { dead = true; break }
            usleep(100_000)
        }
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
