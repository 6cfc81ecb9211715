import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova's resize (flavor write → VERIFY_RESIZE → confirm or revert) and rebuild, on
/// libvirt's test driver: claims, disks and states at each step.
final class ResizeRebuildTests: EngineTestCase {
    func boot(_ name: String, flavor: String = "m1.tiny") throws -> InstanceInfo {
        if engine.image("tiny") == nil { try upload("tiny", rawDisk()) }
        try engine.setDefault(.flavor, flavor, caller: root)
        _ = try engine.createInstance(name, caller: root)
        return try XCTUnwrap(waitStable(name))
    }

    func used(_ host: String = "default") -> (Int, Int) {
        let h = engine.host(host)!
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
        try engine.setInstanceField("vm", field: "flavor", value: "m1.small", caller: root)
        let resized = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(resized.status, .VERIFY_RESIZE, resized.fault)
        XCTAssertEqual(resized.flavor, "m1.small")
        XCTAssertEqual(resized.ips, before.ips, "the fixed IP stays")
        XCTAssertEqual(used(host).1, 512 + 2048, "old and new claims are both held on the same host")
        XCTAssertTrue(FileManager.default.fileExists(atPath: stateDir + "/instances/\(before.id)/disk.resize"))
        assertErrno(.busy) { try self.engine.instanceAction("vm", action: "stop", caller: self.root) }
        try engine.instanceAction("vm", action: "confirm-resize", caller: root)
        let confirmed = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(confirmed.status, .ACTIVE)
        XCTAssertEqual(used(host).1, 2048, "confirm releases the old claim")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stateDir + "/instances/\(before.id)/disk.resize"))
        assertErrno(.busy) { try self.engine.instanceAction("vm", action: "confirm-resize", caller: self.root) }
        let history = engine.instanceActions("vm").joined(separator: "\n")
        XCTAssertTrue(history.contains("resize(m1.small) done"), history)
        eventually("the confirm task is recorded as done") { engine.instanceActions("vm").first?.contains("confirm_resize done") ?? false }
    }

    func testRevertRestoresFlavorDiskAndClaim() throws {
        let before = try boot("vm")
        let host = try XCTUnwrap(before.host)
        let disk = stateDir + "/instances/\(before.id)/disk"
        let originalSize = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: disk)[.size] as? Int)
        try engine.setInstanceField("vm", field: "flavor", value: "m1.small", caller: root)
        XCTAssertEqual(waitStable("vm")?.status, .VERIFY_RESIZE)
        try engine.instanceAction("vm", action: "revert-resize", caller: root)
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
        try engine.createFlavor("m1.zero", caller: root)
        try engine.setFlavorField("m1.zero", field: "disk_gb", value: "0", caller: root)
        assertErrno(.invalid) { try self.engine.setInstanceField("vm", field: "flavor", value: "m1.zero", caller: self.root) }
        assertErrno(.invalid) { try self.engine.setInstanceField("vm", field: "flavor", value: "m1.tiny", caller: self.root) }
        assertErrno(.noEntry) { try self.engine.setInstanceField("vm", field: "flavor", value: "m9.huge", caller: self.root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("resize to a smaller disk is not allowed") })
        try engine.instanceAction("vm", action: "stop", caller: root)
        XCTAssertEqual(waitStable("vm")?.status, .SHUTOFF)
        try engine.createFlavor("m1.small2", caller: root)
        try engine.setFlavorField("m1.small2", field: "vcpus", value: "2", caller: root)
        try engine.setFlavorField("m1.small2", field: "ram_mb", value: "1024", caller: root)
        try engine.setFlavorField("m1.small2", field: "disk_gb", value: "2", caller: root)
        try engine.setInstanceField("vm", field: "flavor", value: "m1.small2", caller: root)
        let verify = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(verify.status, .VERIFY_RESIZE, verify.fault)
        try engine.instanceAction("vm", action: "confirm-resize", caller: root)
        let i = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(i.status, .SHUTOFF, "a stopped instance stays stopped through a resize")
        XCTAssertEqual(i.flavor, "m1.small2")
        assertErrno(.busy) { try self.engine.instanceAction("vm", action: "revert-resize", caller: self.root) }
    }

    func testResizeThatFitsNowhereLeavesTheInstanceAsItWas() throws {
        _ = try boot("vm")
        try engine.createFlavor("giant", caller: root)
        try engine.setFlavorField("giant", field: "ram_mb", value: "16777216", caller: root)
        try engine.setInstanceField("vm", field: "flavor", value: "giant", caller: root)
        let i = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(i.status, .ACTIVE)
        XCTAssertEqual(i.flavor, "m1.tiny")
        XCTAssertTrue(i.fault.contains("resize to giant failed"), i.fault)
    }

    func testAutoConfirmAfterTheWindow() throws {
        _ = try boot("vm")
        try engine.setConfig(.resizeConfirmWindow, "1", caller: root)
        try engine.setInstanceField("vm", field: "flavor", value: "m1.small", caller: root)
        XCTAssertEqual(waitStable("vm")?.status, .VERIFY_RESIZE)
        Thread.sleep(forTimeInterval: 1.1)
        engine.reconcileNow()
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.resize_auto_confirm vm") })
        assertErrno(.invalid) { try self.engine.setConfig(.resizeConfirmWindow, "soon", caller: self.root) }
        assertErrno(.notPermitted) { try self.engine.setConfig(.resizeConfirmWindow, "5", caller: Caller(uid: 1000, gid: 1000, pid: 2)) }
    }

    func testRebuildMakesAFreshDiskAndKeepsIPAndName() throws {
        let before = try boot("vm")
        // What the guest wrote: the rebuilt disk must not have it.
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: stateDir + "/instances/\(before.id)/disk"))
        try h.seek(toOffset: 8 << 20); h.write(Data("guest data".utf8)); try h.close()
        XCTAssertGreaterThan(diskSize(before), 8 << 20)
        try engine.instanceAction("vm", action: "rebuild", caller: root)
        let after = try XCTUnwrap(waitStable("vm"), "\(String(describing: engine.instance("vm")))\n" + engine.events.lines.suffix(8).joined(separator: "\n") + "\n" + engine.instanceActions("vm").joined(separator: "\n"))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertEqual(after.ips, before.ips)
        XCTAssertEqual(after.id, before.id)
        XCTAssertLessThan(diskSize(after), 1 << 20, "the overlay was made again")
        // A new image by writing `image`; a stopped instance stays stopped.
        try upload("other", rawDisk(2 << 20))
        try engine.instanceAction("vm", action: "stop", caller: root)
        _ = waitStable("vm")
        try engine.setInstanceField("vm", field: "image", value: "other", caller: root)
        let rebuilt = try XCTUnwrap(waitStable("vm"), engine.events.lines.suffix(8).joined(separator: "\n") + "\n" + engine.instanceActions("vm").joined(separator: "\n"))
        XCTAssertEqual(rebuilt.status, .SHUTOFF)
        XCTAssertEqual(rebuilt.image, "other")
        assertErrno(.busy) { try self.engine.instanceAction("vm", action: "pause", caller: self.root) }
        eventually("the rebuild task is recorded as done") { engine.instanceActions("vm").first?.contains("rebuild done") ?? false }
    }
}
