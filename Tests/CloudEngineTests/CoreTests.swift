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
        var config = engineConfiguration(hostURIs: ["test:///default"])
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
        return try Engine(config: engineConfiguration(hostURIs: ["test:///default"] + hosts), driver: driver)
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

/// The one authorization seam: Keystone's roles in the object's project, the admin, and
/// Nova's lock, the same for every request; another project's objects are not there.
final class AuthorizationTests: EngineTestCase {
    func testRolesProjectsAdminsAndLocksAcrossTheAPI() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        let member = try register("alice")
        let reader = try register("bob", .reader)
        let manager = try register("carol", .manager)
        let stranger = try register("dave", in: "other")
        let unknown = Caller(uid: 4242, gid: 4242, pid: 1)
        _ = try engine.instances.create("mine", member)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        XCTAssertEqual(engine.instances.get("mine", root)?.project, "default")

        // Visibility: the project's members see it; another project's user does not.
        XCTAssertEqual(engine.instances.list(reader).map(\.name), ["mine"])
        XCTAssertEqual(engine.instances.list(stranger).map(\.name), [])
        XCTAssertNil(engine.instances.get("mine", stranger))
        XCTAssertEqual(engine.instances.actions("mine", stranger), [])
        assertErrno(.noEntry) { try self.engine.instances.perform(.power(.stop), on: "mine", stranger) }
        assertErrno(.noEntry) { try self.engine.instances.delete("mine", stranger) }
        // A reader sees but may not act.
        assertErrno(.accessDenied) { try self.engine.instances.perform(.power(.stop), on: "mine", reader) }
        assertErrno(.accessDenied) { try self.engine.instances.change("mine", .securityGroups(["default"]), reader) }
        assertErrno(.accessDenied) { _ = try self.engine.instances.create("r1", reader) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("needs the member role") })
        // Unregistered: nothing at all.
        assertErrno(.accessDenied) { _ = try self.engine.instances.create("u1", unknown) }
        XCTAssertEqual(engine.instances.list(unknown).map(\.name), [])
        // Admin only: EACCES with what only an admin may do.
        assertErrno(.accessDenied) { try self.engine.flavors.create("f", member) }
        assertErrno(.accessDenied) { try self.engine.hosts.perform(.disable, on: "default", manager) }
        assertErrno(.accessDenied) { try self.engine.scheduler.set("max_attempts", "2", member) }
        assertErrno(.accessDenied) { try self.engine.settings.setConfig(.shutdownTimeout, "5", member) }
        assertErrno(.accessDenied) { try self.engine.networks.create("n", member) }
        assertErrno(.accessDenied) { try self.engine.instances.perform(.migrate(host: nil), on: "mine", member) }
        assertErrno(.accessDenied) { try self.engine.projects.create("p", manager) }
        assertErrno(.accessDenied) { try self.engine.projects.setQuota("default", .instances, 100, manager) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("only an admin may create flavors") })
        XCTAssertEqual(engine.hosts.list(member).map(\.name), [], "hosts are the admin's")
        XCTAssertEqual(engine.flavors.get("m1.nano", member)?.vcpus, 1, "flavors are everyone's to read")
        // Members: a manager edits them, a member may not, and only an admin grants admin.
        assertErrno(.accessDenied) { try self.engine.projects.setMembers("default", ["alice": .manager], member) }
        var members = try XCTUnwrap(engine.projects.get("default", manager)).members
        members["erin"] = .reader
        assertErrno(.invalid) { try self.engine.projects.setMembers("default", members, manager) }   // erin is not a user yet
        _ = try register("erin", .reader, in: "other")
        try engine.projects.setMembers("default", members, manager)
        XCTAssertEqual(engine.projects.get("default", root)?.members["erin"], .reader)
        members["erin"] = .admin
        assertErrno(.accessDenied) { try self.engine.projects.setMembers("default", members, manager) }
        // The admin role, granted by an admin, is cloud-wide (Keystone's admin).
        try engine.projects.setMembers("default", members, root)
        let erin = Caller(uid: 7, gid: 7, pid: 1)
        try engine.flavors.create("f-erin", erin)
        XCTAssertEqual(engine.instances.list(erin).map(\.name), ["mine"])
        XCTAssertEqual(engine.hosts.list(erin).count, 1)
        members["erin"] = .reader
        try engine.projects.setMembers("default", members, root)
        assertErrno(.accessDenied) { try self.engine.flavors.create("f-erin2", erin) }
        // A user chooses among their own projects.
        XCTAssertEqual(engine.users.get("erin", root)?.project, "default", "the first by name until chosen")
        try engine.users.setProject("erin", "other", Caller(uid: 7, gid: 7, pid: 1))
        XCTAssertEqual(engine.users.get("erin", root)?.project, "other")
        assertErrno(.invalid) { try self.engine.users.setProject("erin", "nowhere", Caller(uid: 7, gid: 7, pid: 1)) }
        assertErrno(.noEntry) { try self.engine.users.setProject("erin", "default", member) }   // alice does not see erin
        XCTAssertEqual(engine.users.list(member).map(\.name), ["alice"], "a user sees their own entry")

        // Locked by the admin: members may no longer act on it; the admin may.
        try engine.instances.perform(.lock, on: "mine", root)
        assertErrno(.notPermitted) { try self.engine.instances.perform(.power(.stop), on: "mine", member) }
        assertErrno(.notPermitted) { try self.engine.instances.delete("mine", member) }
        assertErrno(.notPermitted) { try self.engine.instances.perform(.unlock, on: "mine", member) }
        try engine.instances.perform(.power(.stop), on: "mine", root)
        XCTAssertEqual(waitStable("mine")?.status, .SHUTOFF)
        try engine.instances.perform(.unlock, on: "mine", root)
        try engine.instances.perform(.power(.start), on: "mine", member)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        // Another member of the project may act on it too (Nova: the project's server).
        try engine.instances.perform(.power(.stop), on: "mine", manager)
        XCTAssertEqual(waitStable("mine")?.status, .SHUTOFF)
    }

    /// /events per user: only the lines about their projects; the admin reads all.
    func testEventsAreFilteredByProject() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.images.setVisibility("tiny", .public, root)
        let alice = try register("alice")
        let dave = try register("dave", in: "other")
        _ = try engine.instances.create("a1", alice)
        _ = try engine.instances.create("d1", dave)
        XCTAssertEqual(waitStable("a1")?.status, .ACTIVE)
        XCTAssertEqual(waitStable("d1")?.status, .ACTIVE)
        assertErrno(.exists) { _ = try self.engine.instances.create("a1", dave) }
        try engine.instances.delete("a1", alice)
        waitGone("a1")
        let seenByAlice = engine.events(for: alice).lines
        let seenByDave = engine.events(for: dave).lines
        XCTAssertTrue(seenByAlice.contains { $0.contains("instance.created a1") })
        XCTAssertTrue(seenByAlice.contains { $0.contains("instance.deleted a1") }, "lines after the object is gone keep its project")
        XCTAssertFalse(seenByAlice.contains { $0.contains(" d1 ") })
        XCTAssertTrue(seenByDave.contains { $0.contains("instance.created d1") })
        XCTAssertFalse(seenByDave.contains { $0.contains("instance.created a1") || $0.contains("instance.deleted a1") })
        XCTAssertTrue(seenByDave.contains { $0.contains("instance.refused a1") && $0.contains("errno=EEXIST") }, "the caller sees their own refusal")
        XCTAssertTrue(engine.events(for: root).lines.contains { $0.contains("instance.created d1") })
        // A value cannot pose as the project field (it is always last).
        try engine.images.setProperty("tiny", key: "note", value: "x project=other", root)
        XCTAssertFalse(engine.events(for: dave).lines.contains { $0.contains("image.property tiny") })
    }
}

/// A cloud an ordinary user runs for themselves (mounted without `--allow-other`) is
/// theirs: the daemon's uid is an admin of it, registered or not, like root.
final class OwnerTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        var config = engineConfiguration(hostURIs: ["test:///default"])
        config.ownerUID = 4242
        return try Engine(config: config, driver: driver)
    }

    func testTheMountingUserIsTheAdminOfTheirCloud() throws {
        let me = Caller(uid: 4242, gid: 4242, pid: 1)
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", me)
        _ = try engine.instances.create("mine", me)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        XCTAssertEqual(engine.instances.get("mine", me)?.project, "default")
        try engine.flavors.create("f-mine", me)
        XCTAssertEqual(engine.hosts.list(me).count, 1)
        assertErrno(.accessDenied) { _ = try self.engine.instances.create("x", Caller(uid: 4343, gid: 4343, pid: 1)) }
    }
}
