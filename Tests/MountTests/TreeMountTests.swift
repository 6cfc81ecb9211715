import Foundation
import XCTest

/// The tree itself, through a real mount: layout, flavors, hosts, defaults, errnos, events.
final class TreeMountTests: MountTestCase {
    func testLayoutReadmeFlavorsAndHosts() {
        let top = ok("ls").split(separator: "\n").map(String.init)
        for entry in ["README", "defaults", "events", "flavors", "hosts", "images", "images.d", "instances"] {
            XCTAssertTrue(top.contains(entry), "missing /\(entry) in \(top)")
        }
        XCTAssertTrue(read("README").contains("mkdir instances/web1"))
        XCTAssertEqual(ok("ls flavors").split(separator: "\n"), ["m1.large", "m1.medium", "m1.nano", "m1.small", "m1.tiny", "m1.xlarge"])
        XCTAssertEqual(read("flavors/m1.tiny/ram_mb"), "512")
        XCTAssertEqual(read("flavors/m1.nano/ram_mb"), "128")
        XCTAssertEqual(read("flavors/m1.xlarge/vcpus"), "8")
        XCTAssertEqual(read("hosts/default/uri"), "test:///default")
        XCTAssertEqual(read("hosts/default/state"), "up")
        XCTAssertGreaterThan(Int(read("hosts/default/vcpus")) ?? 0, 0)
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "0")
        XCTAssertEqual(ok("ls instances"), "")
    }

    func testErrnosAndReasonsInEvents() {
        XCTAssertTrue(fails("mkdir instances/web1").contains("No such file"), "no image yet → ENOENT")
        XCTAssertTrue(read("events").contains("no active bootable image"))
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk")
        XCTAssertTrue(fails("mkdir 'instances/bad name'").contains("Invalid argument"))
        XCTAssertTrue(fails("mkdir instances/.hidden").contains("Invalid argument"))
        ok("mkdir instances/web1")
        XCTAssertTrue(fails("mkdir instances/web1").contains("File exists"))
        XCTAssertTrue(fails("echo ACTIVE > instances/web1/status").contains("Read-only file system"))
        XCTAssertTrue(fails("rmdir instances/nope").contains("No such file"))
        XCTAssertTrue(fails("echo m9.huge > defaults/flavor").contains("No such file"))
        XCTAssertTrue(fails("echo lots > flavors/m1.tiny/ram_mb").contains("Invalid argument"))
        let events = read("events")
        XCTAssertTrue(events.contains("errno=ENOENT"), events)   // EEXIST is answered from the kernel's entry cache
        XCTAssertTrue(events.contains("errno=EROFS"), events)
        XCTAssertTrue(events.contains("errno=EINVAL"), events)
    }

    func testFlavorCreatedWithMkdirAndWrites() {
        ok("mkdir flavors/m2.custom && echo 3 > flavors/m2.custom/vcpus && echo 700 > flavors/m2.custom/ram_mb && echo 5 > flavors/m2.custom/disk_gb")
        XCTAssertEqual(read("flavors/m2.custom/vcpus"), "3")
        XCTAssertEqual(read("flavors/m2.custom/ram_mb"), "700")
        XCTAssertEqual(read("flavors/m2.custom/disk_gb"), "5")
        ok("rmdir flavors/m2.custom")
        XCTAssertFalse(ok("ls flavors").contains("m2.custom"))
    }

    func testEventsGrowAndTailFollows() {
        let before = Int(ok("stat -c %s events").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(before, 0)
        // tail -f must see a line appended while it follows the file.
        let r = sh("cd '\(mnt)' && (timeout 4 tail -n 0 -f events > '\(work)/tail.out' &) ; sleep 1; echo m1.small > defaults/flavor; sleep 3; cat '\(work)/tail.out'")
        XCTAssertTrue(r.out.contains("defaults.set flavor value=m1.small"), "tail -f saw: \(r.out)")
        let after = Int(ok("stat -c %s events").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(after, before)
    }
}
