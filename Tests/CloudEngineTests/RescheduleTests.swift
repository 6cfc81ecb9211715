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
        try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: ["test:///default", smallURI]), driver: driver)
    }

    /// Makes `default` (16 vCPUs) win over `small` (4 vCPUs): weigh free vCPUs only.
    func preferDefault() throws {
        try engine.setSchedulerValue("ram_weight_multiplier", "0", caller: root)
        try engine.setSchedulerValue("disk_weight_multiplier", "0", caller: root)
    }

    func testSpawnFailureIsRescheduledOntoAnotherHost() throws {
        try upload("tiny", rawDisk())
        try preferDefault()
        driver.setFault(.spawnOn(uri: "test:///default", "injected: default is broken"))
        _ = try engine.createInstance("r1", caller: root)
        let info = try XCTUnwrap(waitStable("r1"))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        XCTAssertEqual(info.host, "small")
        XCTAssertEqual(info.ips, ["10.0.0.2"], "the fixed IP is kept across the reschedule")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.rescheduled r1 from=default") })
        XCTAssertEqual(engine.host("default")?.ramMBUsed, 0)
        XCTAssertTrue(engine.schedulerLast.contains("instance r1 (attempt 2)"), engine.schedulerLast)
        XCTAssertTrue(engine.schedulerLast.contains("RetryFilter"), engine.schedulerLast)
    }

    func testMaxAttemptsBoundsTheRetries() throws {
        try upload("tiny", rawDisk())
        try engine.setSchedulerValue("max_attempts", "1", caller: root)
        driver.setFault(.spawn("injected: nothing starts"))
        _ = try engine.createInstance("r2", caller: root)
        let info = try XCTUnwrap(waitStable("r2"))
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertEqual(info.fault, "injected: nothing starts")
        XCTAssertFalse(engine.events.lines.contains { $0.contains("instance.rescheduled r2") })
    }

    func testDisabledHostGetsNothingAndOptionsSurviveRestart() throws {
        try upload("tiny", rawDisk())
        try engine.hostAction("default", action: "disable", caller: root)
        XCTAssertEqual(engine.host("default")?.state, .disabled)
        for i in 0..<3 { _ = try engine.createInstance("d\(i)", caller: root) }
        for i in 0..<3 { XCTAssertEqual(waitStable("d\(i)")?.host, "small") }
        assertErrno(.invalid) { try self.engine.hostAction("default", action: "reboot", caller: self.root) }
        assertErrno(.notPermitted) { try self.engine.hostAction("default", action: "enable", caller: Caller(uid: 7, gid: 7, pid: 1)) }
        assertErrno(.invalid) { try self.engine.setSchedulerValue("filters", "RamFilter NoSuchFilter", caller: self.root) }
        try engine.setSchedulerValue("ram_weight_multiplier", "-1.5", caller: root)
        try engine.setHostField("small", field: "availability_zone", value: "az1", caller: root)
        engine.drain()
        let keep = try driver.connect(uri: "test:///default")
        engine = nil
        engine = try makeEngine()
        _ = keep
        XCTAssertEqual(engine.host("default")?.state, .disabled)
        XCTAssertEqual(engine.host("small")?.availabilityZone, "az1")
        XCTAssertEqual(engine.schedulerValue("ram_weight_multiplier"), "-1.5\n")
    }
}

/// Nova's AvailabilityZoneFilter: an instance asked for a zone runs only there, keeps the
/// zone it was created with, and a zone no host is in is refused.
final class AvailabilityZoneTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        let hosts = ["small", "medium", "large"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" }
        return try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: hosts), driver: driver)
    }

    func testInstancesLandInTheirZone() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        assertErrno(.noEntry) { try self.engine.setDefault(.availabilityZone, "az1", caller: self.root) }
        try engine.setHostField("small", field: "availability_zone", value: "az1", caller: root)
        try engine.setDefault(.availabilityZone, "az1", caller: root)
        for i in 0..<3 { _ = try engine.createInstance("z\(i)", caller: root) }
        for i in 0..<3 {
            let info = try XCTUnwrap(waitStable("z\(i)"))
            XCTAssertEqual(info.host, "small", "spread would pick large; the zone keeps it on small")
            XCTAssertEqual(info.availabilityZone, "az1")
        }
        XCTAssertTrue(engine.schedulerLast.contains("AvailabilityZoneFilter"), engine.schedulerLast)
        // The zone is the instance's, not the default's: clearing the default changes nothing for it.
        try engine.setDefault(.availabilityZone, "", caller: root)
        try engine.instanceAction("z0", action: "migrate", caller: root)
        let after = try XCTUnwrap(waitStable("z0"))
        XCTAssertEqual(after.host, "small")
        XCTAssertTrue(after.fault.contains("No valid host"), "no other host is in az1: \(after.fault)")
        _ = try engine.createInstance("anywhere", caller: root)
        XCTAssertEqual(waitStable("anywhere")?.host, "large")
    }
}
