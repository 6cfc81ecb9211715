import Foundation
import XCTest

/// Nova through the tree: mkdir builds, files report, rmdir releases, remount finds it again.
final class InstanceMountTests: MountTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        addDiskImage()
    }

    func testMkdirWaitFilesAndRmdir() throws {
        ok("mkdir instances/web1")
        XCTAssertEqual(ok("timeout 30 cat instances/web1/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/web1/status"), "ACTIVE")
        XCTAssertEqual(read("instances/web1/vm_state"), "active")
        XCTAssertEqual(read("instances/web1/task_state"), "none")
        XCTAssertEqual(read("instances/web1/power_state"), "running")
        XCTAssertEqual(read("instances/web1/ip"), "10.0.0.2")
        XCTAssertTrue(read("instances/web1/mac").hasPrefix("fa:16:3e:"))
        XCTAssertEqual(read("instances/web1/host"), "default")
        XCTAssertEqual(read("instances/web1/image"), "disk")
        XCTAssertEqual(read("instances/web1/flavor"), "m1.nano")
        XCTAssertEqual(read("instances/web1/fault"), "")
        XCTAssertEqual(read("instances/web1/id").count, 36)
        XCTAssertTrue(read("instances/web1/domain.xml").contains("<domain"))
        XCTAssertTrue(read("instances/web1/created").hasPrefix("20"))
        let json = try JSONSerialization.jsonObject(with: Data(read("instances/web1/info.json").utf8)) as? [String: Any]
        XCTAssertEqual(json?["status"] as? String, "ACTIVE")
        XCTAssertEqual(read("hosts/default/instances"), "web1")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "128")
        XCTAssertTrue(ok("ls -l instances").contains("web1"))
        XCTAssertEqual(sh("stat -c %u '\(mnt)/instances/web1'").out.trimmingCharacters(in: .whitespacesAndNewlines), "0")

        ok("rmdir instances/web1")
        var left = "web1"
        for _ in 0..<100 where !left.isEmpty { left = ok("ls instances"); usleep(50_000) }
        XCTAssertEqual(left, "")
        XCTAssertEqual(read("hosts/default/ram_mb_used"), "0")
        let events = read("events")
        for kind in ["instance.created web1", "instance.scheduled web1", "instance.networked web1",
                     "instance.active web1", "instance.deleting web1", "instance.deleted web1"] {
            XCTAssertTrue(events.contains(kind), "events lack \(kind)")
        }
    }

    func testForLoopOverInstancesIsSafe() {
        ok("for i in a b c; do mkdir instances/$i; done; for i in instances/*; do timeout 30 cat $i/wait; done")
        XCTAssertEqual(ok("cat instances/*/ip | sort").split(separator: "\n"), ["10.0.0.2", "10.0.0.3", "10.0.0.4"])
    }

    func testBuildFailureShowsFaultAndReleases() {
        ok("mkdir flavors/giant && echo 16000000 > flavors/giant/ram_mb && echo giant > defaults/flavor")
        ok("mkdir instances/big")
        XCTAssertEqual(ok("timeout 30 cat instances/big/wait"), "ERROR\n")
        XCTAssertTrue(read("instances/big/fault").contains("No valid host was found"))
        XCTAssertEqual(read("instances/big/ip"), "")
        ok("rmdir instances/big")
    }

    func testUnmountKeepsInstancesAndRemountFindsThem() throws {
        ok("mkdir instances/keep && timeout 30 cat instances/keep/wait")
        let id = read("instances/keep/id")
        unmount()
        XCTAssertFalse(isMounted())
        try mount()
        XCTAssertEqual(read("instances/keep/id"), id)
        XCTAssertEqual(read("instances/keep/ip"), "10.0.0.2")
        // libvirt's test:/// driver lives inside the daemon, so its domains went with it; the
        // instance says so instead of pretending (QemuBootMountTests shows a real guest surviving):
        // SHUTOFF with the reason, and `start` defines it again over its disk.
        XCTAssertEqual(read("instances/keep/status"), "SHUTOFF")
        XCTAssertEqual(read("instances/keep/power_state"), "nostate", read("events"))
        XCTAssertTrue(read("instances/keep/fault").contains("missing on host default"), read("instances/keep/fault"))
        XCTAssertTrue(read("events").contains("instance.missing keep"))
        ok("echo start > instances/keep/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/keep/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/keep/fault"), "")
    }
}

/// Lifecycle actions through `ctl`.
final class ActionMountTests: MountTestCase {
    func testStopStartAndRefusals() {
        addDiskImage()
        ok("mkdir instances/a && timeout 30 cat instances/a/wait")
        ok("echo stop > instances/a/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/a/wait"), "SHUTOFF\n")
        XCTAssertEqual(read("instances/a/power_state"), "shutdown")
        XCTAssertTrue(fails("echo stop > instances/a/ctl").contains("Device or resource busy"))
        XCTAssertTrue(read("events").contains("cannot stop a while it is SHUTOFF"))
        ok("echo start > instances/a/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/a/wait"), "ACTIVE\n")
        ok("echo pause > instances/a/ctl && timeout 30 cat instances/a/wait")
        XCTAssertEqual(read("instances/a/status"), "PAUSED")
        XCTAssertTrue(fails("echo dance > instances/a/ctl").contains("Invalid argument"))
    }
}
