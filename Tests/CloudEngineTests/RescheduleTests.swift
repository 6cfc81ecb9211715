import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova's RetryFilter and max_attempts: a spawn that fails on one host is rebuilt on
/// another, keeping its fixed IP; the live scheduler options steer the choice.
final class RescheduleTests: EngineTestCase {
    var smallURI: String { "test://" + TestPaths.packageRoot + "/examples/hosts/small.xml" }

    override func makeEngine() throws -> Engine {
        try Engine(config: engineConfiguration(hostURIs: ["test:///default", smallURI]), driver: driver)
    }

    /// Makes `default` (16 vCPUs) win over `small` (4 vCPUs): weigh free vCPUs only.
    func preferDefault() throws {
        try engine.scheduler.set("ram_weight_multiplier", "0", root)
        try engine.scheduler.set("disk_weight_multiplier", "0", root)
    }

    func testSpawnFailureIsRescheduledOntoAnotherHost() throws {
        try upload("tiny", rawDisk())
        try preferDefault()
        driver.setFault(.spawnOn(uri: "test:///default", "injected: default is broken"))
        _ = try engine.instances.create("r1", root)
        let info = try XCTUnwrap(waitStable("r1"))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        XCTAssertEqual(info.host, "small")
        XCTAssertEqual(info.ips, ["10.0.0.2"], "the fixed IP is kept across the reschedule")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.rescheduled r1 from=default") })
        XCTAssertEqual(engine.hosts.get("default", .system)?.ramMBUsed, 0)
        XCTAssertTrue(engine.scheduler.last(.system).contains("instance r1 (attempt 2)"), engine.scheduler.last(.system))
        XCTAssertTrue(engine.scheduler.last(.system).contains("RetryFilter"), engine.scheduler.last(.system))
    }

    /// The scheduler is built once per change of its options: a change made between two
    /// placements steers the second.
    func testAnOptionChangedBetweenPlacementsSteersTheNextOne() throws {
        try upload("tiny", rawDisk())
        try preferDefault()
        try engine.scheduler.set("image_cache_weight_multiplier", "0", root)
        _ = try engine.instances.create("p1", root)
        XCTAssertEqual(waitStable("p1")?.host, "default")
        try engine.scheduler.set("cpu_weight_multiplier", "-1", root)   // stack: the fewest free vCPUs wins
        _ = try engine.instances.create("p2", root)
        XCTAssertEqual(waitStable("p2")?.host, "small", engine.scheduler.last(.system))
    }

    func testMaxAttemptsBoundsTheRetries() throws {
        try upload("tiny", rawDisk())
        try engine.scheduler.set("max_attempts", "1", root)
        driver.setFault(.spawn("injected: nothing starts"))
        _ = try engine.instances.create("r2", root)
        let info = try XCTUnwrap(waitStable("r2"))
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertEqual(info.fault, "injected: nothing starts")
        XCTAssertFalse(engine.events.lines.contains { $0.contains("instance.rescheduled r2") })
    }

    func testDisabledHostGetsNothingAndOptionsSurviveRestart() throws {
        try upload("tiny", rawDisk())
        try engine.hosts.perform(try HostAction(parsing: "disable"), on: "default", root)
        XCTAssertEqual(engine.hosts.get("default", .system)?.state, .disabled)
        for i in 0..<3 { _ = try engine.instances.create("d\(i)", root) }
        for i in 0..<3 { XCTAssertEqual(waitStable("d\(i)")?.host, "small") }
        assertErrno(.invalid) { try self.engine.hosts.perform(try HostAction(parsing: "reboot"), on: "default", self.root) }
        assertErrno(.accessDenied) { try self.engine.hosts.perform(try HostAction(parsing: "enable"), on: "default", try self.register("erin")) }
        assertErrno(.invalid) { try self.engine.scheduler.set("filters", "RamFilter NoSuchFilter", self.root) }
        try engine.scheduler.set("ram_weight_multiplier", "-1.5", root)
        try engine.hosts.change("small", .availabilityZone("az1"), root)
        engine.drain()
        let keep = try driver.connect(uri: "test:///default")
        engine = nil
        engine = try makeEngine()
        _ = keep
        XCTAssertEqual(engine.hosts.get("default", .system)?.state, .disabled)
        XCTAssertEqual(engine.hosts.get("small", .system)?.availabilityZone, "az1")
        XCTAssertEqual(engine.scheduler.value("ram_weight_multiplier", .system), "-1.5\n")
    }
}

/// Nova's AvailabilityZoneFilter: an instance asked for a zone runs only there, keeps the
/// zone it was created with, and a zone no host is in is refused.
final class AvailabilityZoneTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        let hosts = ["small", "medium", "large"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" }
        return try Engine(config: engineConfiguration(hostURIs: hosts), driver: driver)
    }

    func testInstancesLandInTheirZone() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        assertErrno(.noEntry) { try self.engine.settings.setDefault(.availabilityZone, "az1", self.root) }
        try engine.hosts.change("small", .availabilityZone("az1"), root)
        try engine.settings.setDefault(.availabilityZone, "az1", root)
        for i in 0..<3 { _ = try engine.instances.create("z\(i)", root) }
        for i in 0..<3 {
            let info = try XCTUnwrap(waitStable("z\(i)"))
            XCTAssertEqual(info.host, "small", "spread would pick large; the zone keeps it on small")
            XCTAssertEqual(info.availabilityZone, "az1")
        }
        XCTAssertTrue(engine.scheduler.last(.system).contains("AvailabilityZoneFilter"), engine.scheduler.last(.system))
        // The zone is the instance's, not the default's: clearing the default changes nothing for it.
        try engine.settings.setDefault(.availabilityZone, "", root)
        try engine.instances.perform(try InstanceAction(parsing: "migrate"), on: "z0", root)
        let after = try XCTUnwrap(waitStable("z0"))
        XCTAssertEqual(after.host, "small")
        XCTAssertTrue(after.fault.contains("No valid host"), "no other host is in az1: \(after.fault)")
        _ = try engine.instances.create("anywhere", root)
        XCTAssertEqual(waitStable("anywhere")?.host, "large")
    }
}
