import CloudTesting
import Foundation
import XCTest

/// Mount tests that boot the tiny guest (examples/make-tiny-guest.sh) on the default
/// local host: libvirt's embedded QEMU driver in the state directory, with TCG.
class GuestMountTestCase: MountTestCase {
    override var hostArgs: [String] { [] }   // the default host: qemu:///embed in the state dir

    override func setUpWithError() throws {
        try prepareTinyGuest()
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

}

extension MountTestCase {
    /// Skips without QEMU; builds the tiny guest (idempotent, quick when current) and has
    /// the daemons use TCG (nested KVM hangs guests on these machines).
    func prepareTinyGuest() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-x86_64") else {
            throw XCTSkip("qemu-system-x86_64 is not installed (scripts/install-deps.sh installs it)")
        }
        let guest = TestPaths.guestDir
        // Idempotent and quick when the guest is current; rebuilds an older guest version.
        let made = sh("'\(TestPaths.packageRoot)/examples/make-tiny-guest.sh' '\(guest)'", timeout: 300)
        XCTAssertEqual(made.status, 0, made.err)
        setenv("CLOUDFS_VIRT_TYPE", "qemu", 1)
    }
}
