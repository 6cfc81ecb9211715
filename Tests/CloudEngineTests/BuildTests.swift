import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// mkdir → schedule → network → spawn → ACTIVE, and rmdir, against libvirt's test driver.
final class BuildTests: EngineTestCase {
    func testMkdirBuildsToActiveAndRmdirReleasesEverything() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        let created = try engine.instances.create("web1", Caller(uid: 0, gid: 0, pid: 42))
        XCTAssertEqual(created.status, .BUILD)
        let info = try XCTUnwrap(waitStable("web1"))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        XCTAssertEqual(info.powerState, .running)
        XCTAssertEqual(info.host, "default")
        XCTAssertEqual(info.ips, ["10.0.0.2"])
        XCTAssertTrue(info.macs[0].hasPrefix("fa:16:3e:"))
        XCTAssertEqual(info.flavor, "m1.nano")
        XCTAssertTrue(info.domainXML.contains(info.id), "domain.xml is what libvirt holds")
        XCTAssertTrue(try domainUUIDs().contains(info.id))
        XCTAssertTrue(FileManager.default.fileExists(atPath: stateDir + "/instances/\(info.id)/disk"))
        let host = try XCTUnwrap(engine.hosts.get("default", .system))
        XCTAssertEqual(host.ramMBUsed, 128)
        XCTAssertEqual(host.instances, ["web1"])
        let kinds = engine.events.lines.map { $0.split(separator: " ")[1] }
        for k in ["instance.created", "instance.scheduled", "instance.networked", "instance.active"] {
            XCTAssertTrue(kinds.contains(Substring(k)), k)
        }

        try engine.instances.delete("web1", root)
        waitGone("web1")
        XCTAssertFalse(try domainUUIDs().contains(info.id))
        XCTAssertEqual(instanceDirs(), [])
        XCTAssertEqual(engine.hosts.get("default", .system)?.ramMBUsed, 0)
        // The address is free again: the next instance gets it.
        _ = try engine.instances.create("web2", root)
        XCTAssertEqual(waitStable("web2")?.ips, ["10.0.0.2"])
    }

    func testSynchronousRefusalsHaveErrnoAndEvent() throws {
        assertErrno(.noEntry) { _ = try engine.instances.create("web1", root) }   // no image yet
        try upload("tiny", rawDisk())
        assertErrno(.invalid) { _ = try engine.instances.create("bad name", root) }
        assertErrno(.invalid) { _ = try engine.instances.create(".x", root) }
        _ = try engine.instances.create("web1", root)
        assertErrno(.exists) { _ = try engine.instances.create("web1", root) }
        assertErrno(.noEntry) { try engine.settings.setDefault(.flavor, "m9.huge", root) }
        assertErrno(.noEntry) { try engine.instances.delete("nope", root) }
        let refused = engine.events.lines.filter { $0.contains(".refused") }
        XCTAssertGreaterThanOrEqual(refused.count, 6)
        XCTAssertTrue(refused.contains { $0.contains("errno=EEXIST") && $0.contains("web1") && $0.contains("pid=1") })
        XCTAssertTrue(refused.contains { $0.contains("errno=ENOENT") && $0.contains("no active bootable image") })
    }

    func testFlavorMustFitImage() throws {
        try upload("big", rawDisk(3 << 20))
        try engine.flavors.create("f0", root)
        try engine.flavors.change("f0", try FlavorChange(field: "disk_gb", parsing: "0"), root)
        try engine.settings.setDefault(.flavor, "f0", root)
        XCTAssertNoThrow(try engine.instances.create("ok", root))   // disk_gb 0 = image size
        assertErrno(.invalid) { try engine.flavors.change("f0", try FlavorChange(field: "ram_mb", parsing: "lots"), root) }
        assertErrno(.accessDenied) { try engine.flavors.create("mine", try self.register("alice")) }
    }

    func testNoValidHostEndsInErrorWithFaultAndReleases() throws {
        try upload("tiny", rawDisk())
        try engine.flavors.create("huge", root)
        try engine.flavors.change("huge", try FlavorChange(field: "ram_mb", parsing: "16000000"), root)
        try engine.settings.setDefault(.flavor, "huge", root)
        _ = try engine.instances.create("big", root)
        let info = try XCTUnwrap(waitStable("big"))
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertTrue(info.fault.contains("No valid host was found"), info.fault)
        XCTAssertTrue(info.fault.contains("RamFilter removed 1"), info.fault)
        XCTAssertEqual(info.ips, [])
        XCTAssertEqual(info.host, "")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.error big") })
        try engine.instances.delete("big", root)
        waitGone("big")
    }

    func testSpawnFailureReleasesIPDiskAndClaim() throws {
        try upload("tiny", rawDisk())
        driver.setFault(.spawn("injected: QEMU refused to start"))
        _ = try engine.instances.create("doomed", root)
        let info = try XCTUnwrap(waitStable("doomed"))
        XCTAssertEqual(info.status, .ERROR)
        // The one host failed, the build was rescheduled, and RetryFilter left no other host.
        XCTAssertTrue(info.fault.hasPrefix("Build failed on default: injected: QEMU refused to start; rescheduling: No valid host"), info.fault)
        XCTAssertTrue(info.fault.contains("RetryFilter removed 1"), info.fault)
        XCTAssertEqual(info.ips, [])
        XCTAssertEqual(instanceDirs(), [])
        XCTAssertEqual(engine.hosts.get("default", .system)?.ramMBUsed, 0)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.rescheduled doomed from=default") })
        let line = try XCTUnwrap(engine.events.lines.first { $0.contains("instance.error doomed") })
        XCTAssertTrue(line.contains("released=ip"), line)
        driver.setFault(.none)
        _ = try engine.instances.create("fine", root)
        XCTAssertEqual(waitStable("fine")?.ips, ["10.0.0.2"], "the failed build's IP was released")
    }

    func testDeleteDuringBuildLeavesNothing() throws {
        try upload("tiny", rawDisk())
        for i in 0..<20 { _ = try engine.instances.create("b\(i)", root) }
        for i in 0..<20 { try engine.instances.delete("b\(i)", root) }
        for i in 0..<20 { waitGone("b\(i)") }
        engine.drain()
        XCTAssertEqual(instanceDirs(), [])
        XCTAssertTrue(engine.instances.list(.system).isEmpty)
        XCTAssertEqual(engine.hosts.get("default", .system)?.instances, [])
        let leftover = try driver.connect(uri: "test:///default").listDomains().filter { $0.name.hasPrefix("cloudfs-") }
        XCTAssertEqual(leftover, [], "no domain outlives its instance")
    }

    func testConcurrentMkdirsGetUniqueAddresses() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        // test:///default has 3 GiB: room for 24 m1.nano; the rest must end in ERROR, not oversubscribe.
        let names = (0..<40).map { "c\($0)" }
        let e = engine!, r = root
        DispatchQueue.concurrentPerform(iterations: names.count) { i in _ = try? e.instances.create(names[i], r) }
        let infos = names.compactMap { waitStable($0) }
        XCTAssertEqual(infos.count, 40)
        let active = infos.filter { $0.status == .ACTIVE }
        XCTAssertEqual(active.count, 24)
        XCTAssertTrue(infos.filter { $0.status == .ERROR }.allSatisfy { $0.fault.contains("No valid host") && $0.ips.isEmpty })
        XCTAssertEqual(engine.hosts.get("default", .system)?.ramMBUsed, 24 * 128)
        XCTAssertEqual(Set(active.flatMap(\.ips)).count, 24)
        XCTAssertEqual(Set(active.flatMap(\.macs)).count, 24)
    }

    func testRestartFindsRunningInstancesAgain() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("keep", root)
        let before = try XCTUnwrap(waitStable("keep"))
        engine.drain()
        // libvirt's test:///default forgets its domains when its last connection closes;
        // a real host keeps running them, which this connection stands in for.
        let hostStaysUp = try driver.connect(uri: "test:///default")
        engine = nil
        engine = try makeEngine()
        _ = hostStaysUp
        let after = try XCTUnwrap(engine.instances.get("keep", .system))
        XCTAssertEqual(after.id, before.id)
        XCTAssertEqual(after.status, .ACTIVE)
        XCTAssertEqual(after.powerState, .running)
        XCTAssertEqual(after.ips, before.ips)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.active keep") }, "history survives")
    }
}
