import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import GRDB
import XCTest

/// The engine's core: storage failures keep their meaning (EIO with SQLite's reason,
/// never EBUSY), and a failure no caller waits for is recorded and settled.
final class StorageFailureTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        var config = EngineConfiguration(stateDir: stateDir, hostURIs: ["test:///default"])
        config.databaseBusyTimeout = 0.2
        return try Engine(config: config, driver: driver)
    }

    /// Another process holding SQLite's write lock: every write of the engine fails.
    func lockDatabase() throws -> DatabaseQueue {
        var config = Configuration()
        config.allowsUnsafeTransactions = true   // the lock is held across accesses on purpose
        config.busyMode = .timeout(5)
        let other = try DatabaseQueue(path: stateDir + "/cloudfs.db", configuration: config)
        try other.inDatabase { db in try db.execute(sql: "BEGIN EXCLUSIVE") }
        return other
    }

    func unlock(_ other: DatabaseQueue) throws {
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
    }

    func testASQLiteFailureIsEIOWithItsReasonAndChangesNothing() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        let lock = try lockDatabase()
        // Not EBUSY "is busy" (a compare-and-set miss): the store failed.
        assertErrno(.io) { try self.engine.instances.perform(.power(.stop), on: "vm", self.root) }
        assertErrno(.io) { try self.engine.flavors.create("f1", self.root) }
        assertErrno(.io) { _ = try self.engine.instances.create("vm2", self.root) }
        let refusal = engine.events.lines.last { $0.contains("instance.refused vm ") } ?? ""
        XCTAssertTrue(refusal.contains("errno=EIO") && refusal.contains("database is locked"), refusal)
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .ACTIVE, "a refused request changes nothing")
        XCTAssertNil(engine.instances.get("vm2", .system), "no half-made instance")
        XCTAssertNil(engine.flavors.get("f1", .system))
        try unlock(lock)
        try engine.instances.perform(.power(.stop), on: "vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .SHUTOFF)
    }

    func testAWorkerThatCannotCommitRecordsItAndTheNextStartResumes() throws {
        try upload("tiny", rawDisk())
        driver.hold()
        _ = try engine.instances.create("vm", root)
        eventually("the build reaches its spawn") { engine.instances.get("vm", .system)?.taskState == .spawning }
        let lock = try lockDatabase()
        driver.release()
        eventually("the failed commit is in /events") {
            engine.events.lines.contains { $0.contains("instance.failed vm") && $0.contains("database is locked") }
        }
        engine.drain()
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .BUILD, "nothing was committed")
        XCTAssertEqual(engine.instances.get("vm", .system)?.taskState, .spawning)
        try unlock(lock)
        // The task row stayed open: the next sweep resumes the build, which adopts the
        // domain its spawn started, so the guest is never restarted.
        engine.reconcileNow()
        let info = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.resumed vm task=build") })
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.adopted vm") })
        XCTAssertTrue(try domainUUIDs().contains(info.id))
        eventually("the build task ends done: " + engine.instances.actions("vm", .system).joined(separator: "; ")) {
            engine.instances.actions("vm", .system).first?.contains("build done") == true
        }
    }
}

/// Usage is summed in one place, SQL; the catalog caches what it says. After any mix of
/// builds, resizes (both claims held), migrations, reverts and deletes they agree.
final class UsageTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        let hosts = ["small", "medium"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" }
        return try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: ["test:///default"] + hosts), driver: driver)
    }

    func assertUsageAgrees(_ step: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let (catalog, store) = try engine.usageCheck()
        XCTAssertEqual(catalog, store, step, file: file, line: line)
        for h in engine.hosts.list(.system) {
            XCTAssertEqual(h.vcpusUsed, store[h.name]?.vcpus ?? 0, "\(step): \(h.name)", file: file, line: line)
            XCTAssertEqual(h.ramMBUsed, store[h.name]?.ramMB ?? 0, "\(step): \(h.name)", file: file, line: line)
        }
    }

    func testCatalogUsageMatchesTheSQLSumsThroughEveryMove() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        for i in 0..<4 { _ = try engine.instances.create("u\(i)", root) }
        for i in 0..<4 { XCTAssertEqual(waitStable("u\(i)")?.status, .ACTIVE) }
        try assertUsageAgrees("after four builds")
        try engine.instances.change("u0", .flavor("m1.tiny"), root)
        XCTAssertEqual(waitStable("u0")?.status, .VERIFY_RESIZE)
        try assertUsageAgrees("a resize holds both claims")
        try engine.instances.perform(.revertResize, on: "u0", root)
        XCTAssertEqual(waitStable("u0")?.status, .ACTIVE)
        try assertUsageAgrees("after a revert")
        try engine.instances.change("u1", .flavor("m1.tiny"), root)
        XCTAssertEqual(waitStable("u1")?.status, .VERIFY_RESIZE)
        try engine.instances.perform(.confirmResize, on: "u1", root)
        XCTAssertEqual(waitStable("u1")?.status, .ACTIVE)
        try assertUsageAgrees("after a confirm")
        try engine.instances.perform(.migrate(host: nil), on: "u2", root)
        XCTAssertEqual(waitStable("u2")?.status, .ACTIVE)
        try assertUsageAgrees("after a migration")
        try engine.instances.delete("u3", root)
        waitGone("u3")
        try assertUsageAgrees("after a delete")
        // And after a restart, which reads it all from the store.
        engine.drain()
        let hostStaysUp = try driver.connect(uri: "test:///default")
        engine = nil
        engine = try makeEngine()
        _ = hostStaysUp
        try assertUsageAgrees("after a restart")
    }
}

/// The one authorization seam: ownership, the admin, and the lock, the same for every
/// request; reads show everything (the projects work narrows them there).
final class AuthorizationTests: EngineTestCase {
    let user = Caller(uid: 1000, gid: 1000, pid: 1)
    let other = Caller(uid: 1001, gid: 1001, pid: 1)

    func testOwnersAdminsAndLocksAcrossTheAPI() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        _ = try engine.instances.create("mine", user)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        // Not yours: EACCES, whatever the request.
        assertErrno(.accessDenied) { try self.engine.instances.perform(.power(.stop), on: "mine", self.other) }
        assertErrno(.accessDenied) { try self.engine.instances.change("mine", .image("tiny"), self.other) }
        assertErrno(.accessDenied) { try self.engine.instances.change("mine", .securityGroups(["default"]), self.other) }
        assertErrno(.accessDenied) { try self.engine.instances.change("mine", .floatingIP(.auto), self.other) }
        assertErrno(.accessDenied) { try self.engine.instances.delete("mine", self.other) }
        assertErrno(.accessDenied) { try self.engine.images.delete("tiny", self.other) }
        // Admin only: EPERM with what only an admin may do.
        assertErrno(.notPermitted) { try self.engine.flavors.create("f", self.user) }
        assertErrno(.notPermitted) { try self.engine.hosts.perform(.disable, on: "default", self.user) }
        assertErrno(.notPermitted) { try self.engine.scheduler.set("max_attempts", "2", self.user) }
        assertErrno(.notPermitted) { try self.engine.settings.setConfig(.shutdownTimeout, "5", self.user) }
        assertErrno(.notPermitted) { try self.engine.networks.create("n", self.user) }
        assertErrno(.notPermitted) { try self.engine.instances.perform(.migrate(host: nil), on: "mine", self.user) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("only an admin may create flavors") })
        // Locked by the admin: the owner may no longer act on it; the admin may.
        try engine.instances.perform(.lock, on: "mine", root)
        assertErrno(.notPermitted) { try self.engine.instances.perform(.power(.stop), on: "mine", self.user) }
        assertErrno(.notPermitted) { try self.engine.instances.delete("mine", self.user) }
        try engine.instances.perform(.power(.stop), on: "mine", root)
        XCTAssertEqual(waitStable("mine")?.status, .SHUTOFF)
        try engine.instances.perform(.unlock, on: "mine", user)
        try engine.instances.perform(.power(.start), on: "mine", user)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        // Reads: everyone sees everything today.
        XCTAssertEqual(engine.instances.list(other).map(\.name), ["mine"])
        XCTAssertNotNil(engine.instances.get("mine", other))
        XCTAssertFalse(engine.instances.actions("mine", other).isEmpty)
    }
}
