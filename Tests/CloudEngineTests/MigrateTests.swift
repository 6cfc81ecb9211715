import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Cold migration through the scheduler, and evacuation of a down host.
final class MigrateTests: EngineTestCase {
    var fileHosts: [String] { ["small", "medium"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" } }

    override func makeEngine() throws -> Engine {
        try Engine(config: engineConfiguration(hostURIs: ["test:///default"] + fileHosts,
                                               hostCheckInterval: 0.2), driver: driver)
    }

    func testMigrateMovesTheInstanceAndItsClaim() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        _ = try engine.instances.create("m", root)
        let before = try XCTUnwrap(waitStable("m"))
        try engine.instances.perform(try InstanceAction(parsing: "migrate"), on: "m", root)
        let after = try XCTUnwrap(waitStable("m"))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertNotEqual(after.host, before.host)
        XCTAssertEqual(after.ips, before.ips)
        XCTAssertEqual(engine.hosts.get(before.host, .system)?.ramMBUsed, 0, "the source's claim was released")
        XCTAssertEqual(engine.hosts.get(after.host, .system)?.instances, ["m"])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.migrated m from=\(before.host) to=\(after.host)") })
        // To a named host.
        let target = ["default", "small", "medium"].first { $0 != after.host }!
        try engine.instances.perform(try InstanceAction(parsing: "migrate \(target)"), on: "m", root)
        XCTAssertEqual(waitStable("m")?.host, target)
        // Refusals.
        assertErrno(.invalid) { try self.engine.instances.perform(try InstanceAction(parsing: "teleport"), on: "m", self.root) }
        assertErrno(.noEntry) { try self.engine.instances.perform(try InstanceAction(parsing: "migrate nowhere"), on: "m", self.root) }
        assertErrno(.invalid) { try self.engine.instances.perform(try InstanceAction(parsing: "migrate \(target)"), on: "m", self.root) }
        let member = try register("alice")
        assertErrno(.accessDenied) { try self.engine.instances.perform(try InstanceAction(parsing: "migrate"), on: "m", member) }
    }

    func testMigrationWithNowhereToGoStaysActiveWithAFault() throws {
        try upload("tiny", rawDisk())
        try engine.flavors.create("big", root)
        try engine.flavors.change("big", try FlavorChange(field: "ram_mb", parsing: "20000"), root)   // only medium (32 GiB) fits
        try engine.settings.setDefault(.flavor, "big", root)
        _ = try engine.instances.create("stuck", root)
        XCTAssertEqual(waitStable("stuck")?.host, "medium")
        try engine.instances.perform(try InstanceAction(parsing: "migrate"), on: "stuck", root)
        let info = try XCTUnwrap(waitStable("stuck"))
        XCTAssertEqual(info.status, .ACTIVE)
        XCTAssertEqual(info.host, "medium")
        XCTAssertTrue(info.fault.contains("No valid host"), info.fault)
    }

    func testEvacuateRebuildsElsewhereAndCleansTheSourceWhenItReturns() throws {
        let hostKeepsRunning = try driver.connect(uri: "test:///default")
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        for h in ["small", "medium"] { try engine.hosts.perform(try HostAction(parsing: "disable"), on: h, root) }
        _ = try engine.instances.create("ev", root)
        let before = try XCTUnwrap(waitStable("ev"))
        XCTAssertEqual(before.host, "default")
        for h in ["small", "medium"] { try engine.hosts.perform(try HostAction(parsing: "enable"), on: h, root) }
        assertErrno(.busy) { try self.engine.hosts.perform(try HostAction(parsing: "evacuate"), on: "default", self.root) }   // still up

        driver.setFault(.dead(uri: "test:///default"))
        eventually("default goes down") { engine.hosts.get("default", .system)?.state == .down }
        try engine.hosts.perform(try HostAction(parsing: "evacuate"), on: "default", root)
        eventually("ev is rebuilt elsewhere") { engine.instances.get("ev", .system).map { $0.isStable && $0.host != "default" } ?? false }
        let after = try XCTUnwrap(engine.instances.get("ev", .system))
        XCTAssertEqual(after.status, .ACTIVE, after.fault)
        XCTAssertEqual(after.powerState, .running)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.evacuated ev from=default") })

        driver.setFault(.none)
        eventually("default comes back") { engine.hosts.get("default", .system)?.state == .up }
        eventually("the stale domain on default is destroyed") {
            !((try? hostKeepsRunning.listDomains()) ?? []).contains { $0.uuid == before.id }
        }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.cleaned default") })
    }
}
