import CloudTesting
import Foundation
import XCTest

/// The scheduler through the tree, on three fake hosts of different sizes
/// (examples/hosts: small 4 vCPU/8 GiB, medium 16/32 GiB, large 64/128 GiB).
final class SchedulerMountTests: MountTestCase {
    override var hostArgs: [String] {
        ["small", "medium", "large"].flatMap { ["--host", "test://\(TestPaths.packageRoot)/examples/hosts/\($0).xml"] }
    }

    override func setUpWithError() throws {
        try super.setUpWithError()
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.small > defaults/flavor")
    }

    func hostOf(_ name: String) -> String {
        ok("mkdir instances/\(name) && timeout 30 cat instances/\(name)/wait")
        return read("instances/\(name)/host")
    }

    func testSpreadByDefaultAndLastExplainsWhy() {
        let files = ok("ls scheduler").split(separator: "\n").map(String.init)
        for f in ["driver", "filters", "weighers", "host_subset_size", "ram_allocation_ratio", "ram_weight_multiplier", "last"] {
            XCTAssertTrue(files.contains(f), "scheduler/ lacks \(f): \(files)")
        }
        XCTAssertEqual(hostOf("a"), "large")
        let last = read("scheduler/last")
        XCTAssertTrue(last.contains("instance a (attempt 1)"), last)
        XCTAssertTrue(last.contains("RamFilter"), last)
        XCTAssertTrue(last.contains("pick:") && last.contains("large"), last)
        XCTAssertEqual(read("hosts/large/instances"), "a")
    }

    func testNegativeRAMMultiplierStacks() {
        ok("echo -1 > scheduler/ram_weight_multiplier && echo 0 > scheduler/cpu_weight_multiplier && echo 0 > scheduler/disk_weight_multiplier")
        XCTAssertEqual(read("scheduler/ram_weight_multiplier"), "-1.0")
        XCTAssertEqual(hostOf("s1"), "small")
        XCTAssertEqual(hostOf("s2"), "small")
    }

    func testDisabledHostGetsNothing() {
        ok("echo disable > hosts/large/ctl")
        XCTAssertEqual(read("hosts/large/state"), "disabled")
        for i in 0..<3 { XCTAssertNotEqual(hostOf("n\(i)"), "large") }
        XCTAssertEqual(read("hosts/large/instances"), "")
        ok("echo enable > hosts/large/ctl")
        XCTAssertEqual(read("hosts/large/state"), "up")
        XCTAssertTrue(read("events").contains("host.disabled large"))
    }

    func testBadWritesAreRefusedWithReasons() {
        XCTAssertTrue(fails("echo 'RamFilter NoSuchFilter' > scheduler/filters").contains("Invalid argument"))
        XCTAssertTrue(read("events").contains("NoSuchFilter"), "the reason is in /events")
        XCTAssertFalse(read("scheduler/filters").contains("NoSuchFilter"))
        XCTAssertTrue(fails("echo -2 > scheduler/ram_allocation_ratio").contains("Invalid argument"))
        XCTAssertTrue(fails("echo chaos > scheduler/driver").contains("Invalid argument"))
        XCTAssertTrue(fails("echo reboot > hosts/small/ctl").contains("Invalid argument"))
        XCTAssertTrue(fails("echo x > scheduler/last").contains("Read-only file system"))
        XCTAssertTrue(fails("echo 99 > hosts/small/vcpus").contains("Read-only file system"))
        ok("echo az1 > hosts/small/availability_zone")
        XCTAssertEqual(read("hosts/small/availability_zone"), "az1")
        XCTAssertEqual(read("hosts/medium/availability_zone"), "nova")
    }
}

/// Server groups through the tree.
final class GroupMountTests: MountTestCase {
    override var hostArgs: [String] {
        ["small", "medium", "large"].flatMap { ["--host", "test://\(TestPaths.packageRoot)/examples/hosts/\($0).xml"] }
    }

    func testAntiAffinityGroupOfFourOnThreeHosts() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir groups/web && echo anti-affinity > groups/web/policy && echo web > defaults/group")
        XCTAssertTrue(fails("echo sideways > groups/web/policy").contains("Invalid argument"))
        for i in 1...4 { ok("mkdir instances/w\(i)") }
        let statuses = (1...4).map { ok("timeout 30 cat instances/w\($0)/wait").trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(statuses.filter { $0 == "ACTIVE" }.count, 3)
        XCTAssertEqual(statuses.filter { $0 == "ERROR" }.count, 1)
        let hosts = (1...4).map { read("instances/w\($0)/host") }.filter { !$0.isEmpty }
        XCTAssertEqual(Set(hosts).count, 3)
        XCTAssertEqual(read("groups/web/members"), "w1\nw2\nw3\nw4")
        XCTAssertEqual(read("instances/w1/group"), "web")
        XCTAssertTrue(fails("rmdir groups/web").contains("Device or resource busy"))
    }

    func testAffinityGroupStaysOnOneHost() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir groups/db && echo affinity > groups/db/policy && echo db > defaults/group")
        for i in 1...4 { ok("mkdir instances/d\(i) && timeout 30 cat instances/d\(i)/wait") }
        let hosts = Set((1...4).map { read("instances/d\($0)/host") })
        XCTAssertEqual(hosts.count, 1, "\(hosts)")
        XCTAssertEqual(read("groups/db/policy"), "affinity")
        XCTAssertTrue(fails("echo anti-affinity > groups/db/policy").contains("Device or resource busy"))
    }
}

/// Cold migration through `ctl`.
final class MigrateMountTests: MountTestCase {
    override var hostArgs: [String] {
        ["small", "medium", "large"].flatMap { ["--host", "test://\(TestPaths.packageRoot)/examples/hosts/\($0).xml"] }
    }

    func testEchoMigrateToCtl() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir instances/m && timeout 30 cat instances/m/wait")
        XCTAssertEqual(read("instances/m/host"), "large")
        ok("echo 'migrate small' > instances/m/ctl")
        XCTAssertEqual(ok("timeout 30 cat instances/m/wait"), "ACTIVE\n")
        XCTAssertEqual(read("instances/m/host"), "small")
        XCTAssertEqual(read("hosts/large/ram_mb_used"), "0")
        XCTAssertTrue(fails("echo teleport > instances/m/ctl").contains("Invalid argument"))
        XCTAssertEqual(sh("stat -c %a '\(mnt)/instances/m/ctl'").out, "200\n")
    }
}
