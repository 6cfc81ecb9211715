import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Cold migration through the scheduler, and evacuation of a down host.
final class MigrateTests: EngineTestCase {
    var fileHosts: [String] { ["small", "medium"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" } }

    override func makeEngine() throws -> Engine {
        try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: ["test:///default"] + fileHosts,
                                               hostCheckInterval: 0.2), driver: driver)
    }

    func testMigrateMovesTheInstanceAndItsClaim() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        _ = try engine.createInstance("m", caller: root)
        let before = try XCTUnwrap(waitStable("m"))
        try engine.instanceAction("m", action: "migrate", caller: root)
        let after = try XCTUnwrap(waitStable("m"))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertNotEqual(after.host, before.host)
        XCTAssertEqual(after.ips, before.ips)
        XCTAssertEqual(engine.host(before.host)?.ramMBUsed, 0, "the source's claim was released")
        XCTAssertEqual(engine.host(after.host)?.instances, ["m"])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.migrated m from=\(before.host) to=\(after.host)") })
        // To a named host.
        let target = ["default", "small", "medium"].first { $0 != after.host }!
        try engine.instanceAction("m", action: "migrate \(target)", caller: root)
        XCTAssertEqual(waitStable("m")?.host, target)
        // Refusals.
        assertErrno(.invalid) { try self.engine.instanceAction("m", action: "teleport", caller: self.root) }
        assertErrno(.noEntry) { try self.engine.instanceAction("m", action: "migrate nowhere", caller: self.root) }
        assertErrno(.invalid) { try self.engine.instanceAction("m", action: "migrate \(target)", caller: self.root) }
        assertErrno(.accessDenied) { try self.engine.instanceAction("m", action: "migrate", caller: Caller(uid: 1000, gid: 0, pid: 1)) }
    }

    func testMigrationWithNowhereToGoStaysActiveWithAFault() throws {
        try upload("tiny", rawDisk())
        try engine.createFlavor("big", caller: root)
        try engine.setFlavorField("big", field: "ram_mb", value: "20000", caller: root)   // only medium (32 GiB) fits
        try engine.setDefault(.flavor, "big", caller: root)
        _ = try engine.createInstance("stuck", caller: root)
        XCTAssertEqual(waitStable("stuck")?.host, "medium")
        try engine.instanceAction("stuck", action: "migrate", caller: root)
        let info = try XCTUnwrap(waitStable("stuck"))
        XCTAssertEqual(info.status, .ACTIVE)
        XCTAssertEqual(info.host, "medium")
        XCTAssertTrue(info.fault.contains("No valid host"), info.fault)
    }

    func testEvacuateRebuildsElsewhereAndCleansTheSourceWhenItReturns() throws {
        let hostKeepsRunning = try driver.connect(uri: "test:///default")
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        for h in ["small", "medium"] { try engine.hostAction(h, action: "disable", caller: root) }
        _ = try engine.createInstance("ev", caller: root)
        let before = try XCTUnwrap(waitStable("ev"))
        XCTAssertEqual(before.host, "default")
        for h in ["small", "medium"] { try engine.hostAction(h, action: "enable", caller: root) }
        assertErrno(.busy) { try self.engine.hostAction("default", action: "evacuate", caller: self.root) }   // still up

        driver.setFault(.dead(uri: "test:///default"))
        eventually("default goes down") { engine.host("default")?.state == .down }
        try engine.hostAction("default", action: "evacuate", caller: root)
        eventually("ev is rebuilt elsewhere") { engine.instance("ev").map { $0.isStable && $0.host != "default" } ?? false }
        let after = try XCTUnwrap(engine.instance("ev"))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertEqual(after.powerState, .running)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.evacuated ev from=default") })

        driver.setFault(.none)
        eventually("default comes back") { engine.host("default")?.state == .up }
        eventually("the stale domain on default is destroyed") {
            !((try? hostKeepsRunning.listDomains()) ?? []).contains { $0.uuid == before.id }
        }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.cleaned default") })
    }
}
