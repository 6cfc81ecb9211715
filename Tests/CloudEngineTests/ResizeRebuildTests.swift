import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova's resize (flavor write → VERIFY_RESIZE → confirm or revert) and rebuild, on
/// libvirt's test driver: claims, disks and states at each step.
final class ResizeRebuildTests: EngineTestCase {
    func boot(_ name: String, flavor: String = "m1.tiny") throws -> InstanceInfo {
        if engine.images.get("tiny", .system) == nil { try upload("tiny", rawDisk()) }
        try engine.settings.setDefault(.flavor, flavor, root)
        _ = try engine.instances.create(name, root)
        return try XCTUnwrap(waitStable(name))
    }

    func used(_ host: String = "default") -> (Int, Int) {
        let h = engine.hosts.get(host, .system)!
        return (h.vcpusUsed, h.ramMBUsed)
    }

    func diskSize(_ i: InstanceInfo) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: stateDir + "/instances/\(i.id)/disk"))?[.size] as? Int) ?? -1
    }

    func testResizeHoldsBothClaimsUntilConfirm() throws {
        let before = try boot("vm")
        XCTAssertEqual(before.status, .ACTIVE)
        let host = try XCTUnwrap(before.host)
        XCTAssertEqual(used(host).1, 512)
        try engine.instances.change("vm", .flavor("m1.small"), root)
        let resized = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(resized.status, .VERIFY_RESIZE, resized.fault)
        XCTAssertEqual(resized.flavor, "m1.small")
        XCTAssertEqual(resized.ips, before.ips, "the fixed IP stays")
        XCTAssertEqual(used(host).1, 512 + 2048, "old and new claims are both held on the same host")
        XCTAssertTrue(FileManager.default.fileExists(atPath: stateDir + "/instances/\(before.id)/disk.resize"))
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "stop"), on: "vm", self.root) }
        try engine.instances.perform(try InstanceAction(parsing: "confirm-resize"), on: "vm", root)
        let confirmed = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(confirmed.status, .ACTIVE)
        XCTAssertEqual(used(host).1, 2048, "confirm releases the old claim")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stateDir + "/instances/\(before.id)/disk.resize"))
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "confirm-resize"), on: "vm", self.root) }
        let history = engine.instances.actions("vm", .system).joined(separator: "\n")
        XCTAssertTrue(history.contains("resize(m1.small) done"), history)
        eventually("the confirm task is recorded as done") { engine.instances.actions("vm", .system).first?.contains("confirm_resize done") ?? false }
    }

    func testRevertRestoresFlavorDiskAndClaim() throws {
        let before = try boot("vm")
        let host = try XCTUnwrap(before.host)
        let disk = stateDir + "/instances/\(before.id)/disk"
        let originalSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: disk)[.size] as? Int)
        try engine.instances.change("vm", .flavor("m1.small"), root)
        XCTAssertEqual(waitStable("vm")?.status, .VERIFY_RESIZE)
        try engine.instances.perform(try InstanceAction(parsing: "revert-resize"), on: "vm", root)
        let reverted = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(reverted.status, .ACTIVE, reverted.fault)
        XCTAssertEqual(reverted.flavor, "m1.tiny")
        XCTAssertEqual(reverted.powerState, .running)
        XCTAssertEqual(used(host).1, 512)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: disk)[.size] as? Int, originalSize)
        XCTAssertFalse(FileManager.default.fileExists(atPath: disk + ".resize"))
    }

    func testResizePreconditionsAndStoppedInstanceStaysStopped() throws {
        _ = try boot("vm", flavor: "m1.tiny")
        try engine.flavors.create("m1.zero", root)
        try engine.flavors.change("m1.zero", try FlavorChange(field: "disk_gb", parsing: "0"), root)
        assertErrno(.invalid) { try self.engine.instances.change("vm", .flavor("m1.zero"), self.root) }
        assertErrno(.invalid) { try self.engine.instances.change("vm", .flavor("m1.tiny"), self.root) }
        assertErrno(.noEntry) { try self.engine.instances.change("vm", .flavor("m9.huge"), self.root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("resize to a smaller disk is not allowed") })
        try engine.instances.perform(try InstanceAction(parsing: "stop"), on: "vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .SHUTOFF)
        try engine.flavors.create("m1.small2", root)
        try engine.flavors.change("m1.small2", try FlavorChange(field: "vcpus", parsing: "2"), root)
        try engine.flavors.change("m1.small2", try FlavorChange(field: "ram_mb", parsing: "1024"), root)
        try engine.flavors.change("m1.small2", try FlavorChange(field: "disk_gb", parsing: "2"), root)
        try engine.instances.change("vm", .flavor("m1.small2"), root)
        let verify = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(verify.status, .VERIFY_RESIZE, verify.fault)
        try engine.instances.perform(try InstanceAction(parsing: "confirm-resize"), on: "vm", root)
        let i = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(i.status, .SHUTOFF, "a stopped instance stays stopped through a resize")
        XCTAssertEqual(i.flavor, "m1.small2")
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "revert-resize"), on: "vm", self.root) }
    }

    func testResizeThatFitsNowhereLeavesTheInstanceAsItWas() throws {
        _ = try boot("vm")
        try engine.flavors.create("giant", root)
        try engine.flavors.change("giant", try FlavorChange(field: "ram_mb", parsing: "16777216"), root)
        try engine.instances.change("vm", .flavor("giant"), root)
        let i = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(i.status, .ACTIVE)
        XCTAssertEqual(i.flavor, "m1.tiny")
        XCTAssertTrue(i.fault.contains("resize to giant failed"), i.fault)
    }

    func testAutoConfirmAfterTheWindow() throws {
        _ = try boot("vm")
        try engine.settings.setConfig(.resizeConfirmWindow, "1", root)
        try engine.instances.change("vm", .flavor("m1.small"), root)
        XCTAssertEqual(waitStable("vm")?.status, .VERIFY_RESIZE)
        Thread.sleep(forTimeInterval: 1.1)
        engine.reconcileNow()
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.resize_auto_confirm vm") })
        assertErrno(.invalid) { try self.engine.settings.setConfig(.resizeConfirmWindow, "soon", self.root) }
        assertErrno(.accessDenied) { try self.engine.settings.setConfig(.resizeConfirmWindow, "5", try self.register("alice")) }
    }

    func testRebuildMakesAFreshDiskAndKeepsIPAndName() throws {
        let before = try boot("vm")
        // What the guest wrote: the rebuilt disk must not have it.
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: stateDir + "/instances/\(before.id)/disk"))
        try h.seek(toOffset: 8 << 20); h.write(Data("guest data".utf8)); try h.close()
        XCTAssertGreaterThan(diskSize(before), 8 << 20)
        try engine.instances.perform(try InstanceAction(parsing: "rebuild"), on: "vm", root)
        let after = try XCTUnwrap(waitStable("vm"), "\(String(describing: engine.instances.get("vm", .system)))\n" + engine.events.lines.suffix(8).joined(separator: "\n") + "\n" + engine.instances.actions("vm", .system).joined(separator: "\n"))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertEqual(after.ips, before.ips)
        XCTAssertEqual(after.id, before.id)
        XCTAssertLessThan(diskSize(after), 1 << 20, "the overlay was made again")
        // A new image by writing `image`; a stopped instance stays stopped.
        try upload("other", rawDisk(2 << 20))
        try engine.instances.perform(try InstanceAction(parsing: "stop"), on: "vm", root)
        _ = waitStable("vm")
        try engine.instances.change("vm", .image("other"), root)
        let rebuilt = try XCTUnwrap(waitStable("vm"), engine.events.lines.suffix(8).joined(separator: "\n") + "\n" + engine.instances.actions("vm", .system).joined(separator: "\n"))
        XCTAssertEqual(rebuilt.status, .SHUTOFF)
        XCTAssertEqual(rebuilt.image, "other")
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "pause"), on: "vm", self.root) }
        eventually("the rebuild task is recorded as done") { engine.instances.actions("vm", .system).first?.contains("rebuild done") ?? false }
    }
}
