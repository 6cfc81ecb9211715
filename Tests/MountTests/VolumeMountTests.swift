import CloudTesting
import Foundation
import XCTest

/// Cinder volumes through the mount, on real QEMU guests whose init reports every block
/// device on the console and writes a marker onto a blank one (make-tiny-guest.sh): guest A
/// writes, B reads, a live extend reaches the guest, a volume made from a snapshot carries
/// A's marker; and the bad-input list, each with its errno and nothing changed.
class VolumeMountTests: GuestMountTestCase {
    /// Boots `names` and waits until each guest's init is up (its disk watcher with it).
    func bootGuests(_ names: [String]) {
        uploadGuest()
        ok("mkdir " + names.map { "instances/\($0)" }.joined(separator: " "))
        for n in names {
            XCTAssertEqual(ok("timeout 120 cat instances/\(n)/wait", timeout: 150), "ACTIVE\n", read("instances/\(n)/fault"))
            XCTAssertTrue(waitForConsole(n).contains("CLOUDFS-GUEST-BOOTED"), "\(n) booted")
        }
    }

    /// Waits for a console line matching `pattern` (an extended regex) and returns it.
    @discardableResult
    func consoleLine(_ instance: String, _ pattern: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        var found = ""
        for _ in 0..<120 {
            // The serial console ends lines with CR LF.
            found = sh("tr -d '\\r' < '\(mnt)/instances/\(instance)/console' | grep -aE '\(pattern)' | tail -n 1").out
                .trimmingCharacters(in: .whitespacesAndNewlines)
            if !found.isEmpty { break }
            usleep(250_000)
        }
        XCTAssertFalse(found.isEmpty, "\(instance)'s console never showed /\(pattern)/: \(read("instances/\(instance)/console").suffix(1500))",
                       file: file, line: line)
        return found
    }

    func waitStatus(_ volume: String, _ status: String, file: StaticString = #filePath, line: UInt = #line) {
        for _ in 0..<600 {
            if read("volumes/\(volume)/status") == status { break }
            usleep(100_000)
        }
        XCTAssertEqual(read("volumes/\(volume)/status"), status, read("volumes/\(volume)/fault"), file: file, line: line)
    }

    /// The whole story, on whichever backend the mount gives new volumes.
    func exerciseTwoGuestsSharingAVolume(backend: String) {
        bootGuests(["a", "b"])
        ok("mkdir volumes/data")
        XCTAssertEqual(read("volumes/data/backend"), backend)
        XCTAssertEqual(read("volumes/data/status"), "available")

        // Attach with ln -s: A sees a blank vdb and writes its marker.
        ok("ln -s ../../../volumes/data instances/a/volumes/")
        XCTAssertEqual(ok("readlink instances/a/volumes/vdb"), "../../../volumes/data\n")
        XCTAssertEqual(read("volumes/data/status"), "in-use")
        XCTAssertEqual(read("volumes/data/instance"), "a")
        XCTAssertEqual(read("volumes/data/device"), "vdb")
        XCTAssertTrue(read("instances/a/domain.xml").contains("<target dev='vdb' bus='virtio'/>"))
        consoleLine("a", "CLOUDFS-DISK-ADDED vdb sectors=2097152 first=$")
        let marked = consoleLine("a", "CLOUDFS-DISK-MARKED vdb marker=")
        let marker = String(marked.split(separator: "=").last ?? "")
        XCTAssertTrue(marker.hasPrefix("CLOUDFS-MARK-"), marked)

        // Extend while attached: the guest's /sys/block/vdb/size grows.
        ok("echo 2 > volumes/data/size_gb")
        XCTAssertEqual(read("volumes/data/size_gb"), "2")
        XCTAssertEqual(read("volumes/data/status"), "in-use")
        consoleLine("a", "CLOUDFS-DISK-SIZE vdb sectors=4194304")

        // A snapshot of the running guest's disk, as it is now.
        ok("mkdir volumes/data/snapshots/s1")
        XCTAssertEqual(read("volumes/data/snapshots/s1/status"), "available")
        XCTAssertEqual(read("volumes/data/snapshots/s1/size_gb"), "2")

        // Detach with rm: A's guest releases it (DeviceRemoved).
        ok("rm instances/a/volumes/vdb")
        waitStatus("data", "available")
        consoleLine("a", "CLOUDFS-DISK-REMOVED vdb")
        XCTAssertEqual(ok("ls instances/a/volumes"), "")
        XCTAssertFalse(read("instances/a/domain.xml").contains("<target dev='vdb'"))

        // Attach to B with a write: B reads A's marker.
        ok("echo b > volumes/data/instance")
        XCTAssertEqual(ok("ls -l instances/b/volumes | awk 'NR>1 {print $9, $10, $11}'"), "vdb -> ../../../volumes/data\n")
        consoleLine("b", "CLOUDFS-DISK-ADDED vdb sectors=4194304 first=\(marker)$")
        XCTAssertTrue(sh("grep -a 'CLOUDFS-DISK-MARKED vdb' '\(mnt)/instances/b/console'").out.isEmpty, "B does not overwrite it")

        // A volume made from the snapshot carries A's marker, into A again.
        ok("mkdir volumes/copy && echo 2 > volumes/copy/size_gb && echo 'snapshot data/s1' > volumes/copy/source")
        XCTAssertEqual(read("volumes/copy/source"), "snapshot data/s1")
        XCTAssertEqual(read("volumes/data/snapshots/s1/source_of"), "copy")
        ok("echo a > volumes/copy/instance")
        consoleLine("a", "CLOUDFS-DISK-ADDED vd[a-z] sectors=4194304 first=\(marker)$")

        // Deleting B detaches its volume and keeps the data.
        ok("rmdir instances/b")
        for _ in 0..<300 {
            if ok("ls instances") == "a\n" { break }
            usleep(100_000)
        }
        waitStatus("data", "available")
        XCTAssertEqual(read("volumes/data/instance"), "")
        ok("echo a > volumes/data/instance")
        consoleLine("a", "CLOUDFS-DISK-ADDED vd[a-z] sectors=4194304 first=\(marker)$")
        XCTAssertEqual(ok("ls instances/a/volumes"), "vdb\nvdc\n")
    }

    func testTwoGuestsShareAFileVolume() {
        exerciseTwoGuestsSharingAVolume(backend: "file")
    }

    /// The bad-input list of the volumes issue through the mount: each refusal has its errno
    /// and reason (in /events and on stderr) and changes nothing.
    func testBadInputGetsAnErrnoAndChangesNothing() {
        uploadGuest()
        ok("mkdir instances/a instances/b && cat instances/a/wait instances/b/wait")
        ok("mkdir volumes/data volumes/spare && echo a > volumes/data/instance")
        let before = ok("cat volumes/*/info.json")
        func refused(_ script: String, _ message: String, _ reason: String, file: StaticString = #filePath, line: UInt = #line) {
            let err = fails(script, file: file, line: line)
            XCTAssertTrue(err.contains(message), "`\(script)`: \(err) \(sh("grep refused '\(mnt)/events' | tail -n 1").out)", file: file, line: line)
            XCTAssertEqual(sh("grep -cF -- \"\(reason)\" '\(mnt)/events'").status, 0, "`\(script)`: '\(reason)' is in /events", file: file, line: line)
        }
        refused("echo b > volumes/data/instance", "Device or resource busy", "volume 'data' is in-use (attached to 'a' as vdb); detach it first")
        refused("echo nosuch > volumes/spare/instance", "No such file or directory", "no instance named 'nosuch'")
        refused("echo a > volumes/data/instance", "File exists", "volume 'data' is already attached to 'a' as vdb")
        refused("ln -s ../../../volumes/data instances/a/volumes/", "File exists", "already attached")
        refused("echo 'image tiny' > volumes/data/source", "Device or resource busy", "its source is fixed")
        refused("echo 'disk tiny' > volumes/spare/source", "Invalid argument", "source must be")
        for size in ["0", "-1", "big", "1.5", "99999999"] {
            refused("echo '\(size)' > volumes/spare/size_gb", "Invalid argument", "size_gb must be a whole number")
        }
        ok("echo 2 > volumes/spare/size_gb")
        refused("echo 1 > volumes/spare/size_gb", "Invalid argument", "volumes only grow")
        refused("rmdir volumes/data", "Device or resource busy", "detach it first")
        ok("echo 3 > projects/default/quota/gigabytes")
        refused("echo 5 > volumes/spare/size_gb", "Disk quota exceeded", "Quota exceeded for gigabytes: requested 3, used 3 of 3")
        refused("mkdir volumes/data/snapshots/s1", "Disk quota exceeded", "Quota exceeded for gigabytes")
        ok("echo -1 > projects/default/quota/gigabytes && echo 2 > projects/default/quota/volumes")
        refused("mkdir volumes/third", "Disk quota exceeded", "Quota exceeded for volumes: requested 1, used 2 of 2")
        refused("mkdir volumes/bad:name", "Invalid argument", "invalid volume name 'bad:name'")
        XCTAssertEqual(ok("ls volumes"), "data\nspare\n", "no half-made volume")
        XCTAssertEqual(ok("ls volumes/data/snapshots"), "", "no half-made snapshot")
        let after = ok("cat volumes/*/info.json")
        XCTAssertEqual(after.replacingOccurrences(of: "\"size_gb\" : 2", with: "\"size_gb\" : 1"), before,
                       "only the accepted size change happened")
    }
}

/// The same story on Cinder's LVM driver: a volume group on a loop device, thin volumes and
/// thin snapshots. Needs device-mapper with the thin target in the kernel.
final class LVMVolumeMountTests: VolumeMountTests {
    var loopDevice = ""
    var backingFile = ""
    var group = ""

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/mapper/control"), sh("dmsetup targets").out.contains("thin-pool") else {
            throw XCTSkip("this kernel has no device-mapper thin provisioning (no /dev/mapper/control or thin-pool target): the lvm backend cannot run here")
        }
        group = "cloudfs\(getpid())"
        backingFile = "/tmp/\(group).img"
        let made = sh("truncate -s 4G \(backingFile) && losetup -f --show \(backingFile)")
        guard made.status == 0 else { throw XCTSkip("no loop device: \(made.err)") }
        loopDevice = made.out.trimmingCharacters(in: .whitespacesAndNewlines)
        let vg = sh("pvcreate -q \(loopDevice) && vgcreate -q \(group) \(loopDevice)")
        XCTAssertEqual(vg.status, 0, vg.err)
        try super.setUpWithError()
        ok("echo lvm > defaults/volume_backend")
    }

    override func mount(extra: [String] = [], env: String = "") throws {
        try super.mount(extra: extra + ["--volume-group", group], env: env)
    }

    override func tearDown() {
        super.tearDown()
        if !loopDevice.isEmpty {
            sh("vgremove -q -f \(group); pvremove -q \(loopDevice); losetup -d \(loopDevice)")
        }
        if !backingFile.isEmpty { try? FileManager.default.removeItem(atPath: backingFile) }
    }

    override func testTwoGuestsShareAFileVolume() {}

    func testTwoGuestsShareAnLVMVolume() {
        exerciseTwoGuestsSharingAVolume(backend: "lvm")
        XCTAssertTrue(sh("lvs --noheadings -o lv_name \(group)").out.contains("snapshot-"), "the snapshot is a thin snapshot")
    }

    override func testBadInputGetsAnErrnoAndChangesNothing() {}
}
