@testable import CloudStore
import CloudCore
import Foundation
import GRDB
import XCTest

/// One write transaction fewer per task: a build or power task ends in the commit that
/// settles its instance, and the take tells a worker whether it must look for more work.
final class TaskEndingTests: StoreTestCase {
    func task(_ id: Int64) throws -> TaskRecord? {
        try store.db.read { db in try TaskRecord.fetchOne(db, key: id) }
    }

    func hasOpenTask(_ instanceID: String) throws -> Bool { try store.openTasks().contains { $0.instanceId == instanceID } }

    func testASettlingCommitEndsTheRegisteredTaskInItsTransaction() throws {
        let r = try newInstance("web1")
        XCTAssertTrue(try hasOpenTask(r.id))
        let t = try XCTUnwrap(store.takeTask(instanceID: r.id))
        let tid = try XCTUnwrap(t.id)
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: tid, faultBefore: "")

        // A step that leaves the instance busy ends nothing.
        _ = try store.update(instanceID: r.id) { $0.taskState = .spawning }
        XCTAssertEqual(try task(tid)?.state, .running)

        _ = try store.update(instanceID: r.id, expecting: [.spawning]) { $0.vmState = .active; $0.taskState = .none }
        XCTAssertEqual(try task(tid)?.state, .done)
        XCTAssertEqual(try task(tid)?.result, "ACTIVE")
        XCTAssertFalse(try hasOpenTask(r.id))
        XCTAssertTrue(store.taskEndedByItsLastCommit(instanceID: r.id), "the worker has nothing left to finish")
        XCTAssertFalse(store.taskEndedByItsLastCommit(instanceID: r.id), "the registration is gone")

        // Later commits (another request's) end no task.
        _ = try store.update(instanceID: r.id, queue: .power(.stop)) { $0.taskState = .poweringOff }
        _ = try store.update(instanceID: r.id) { $0.taskState = .none }
        XCTAssertTrue(try hasOpenTask(r.id), "the queued stop is untouched")
    }

    func testFinishingATaskSaysWhetherAnotherIsOpen() throws {
        let r = try newInstance("web1")
        _ = try store.update(instanceID: r.id, queue: .power(.stop)) { $0.taskState = .scheduling }
        let build = try XCTUnwrap(store.takeTask(instanceID: r.id))
        XCTAssertEqual(build.command, .build)
        XCTAssertTrue(try store.finishTask(id: try XCTUnwrap(build.id), .done, result: "ACTIVE"), "the stop waits behind it")
        let stop = try XCTUnwrap(store.takeTask(instanceID: r.id))
        XCTAssertEqual(stop.command, .power(.stop))
        XCTAssertFalse(try store.finishTask(id: try XCTUnwrap(stop.id), .done, result: "SHUTOFF"))
        XCTAssertNil(try store.takeTask(instanceID: r.id))
    }

    func testANewFaultFailsTheTaskAndAnOldOneDoesNot() throws {
        let r = try newInstance("web1")
        _ = try store.update(instanceID: r.id) { $0.fault = "an earlier fault" }
        let t = try XCTUnwrap(store.takeTask(instanceID: r.id))
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: try XCTUnwrap(t.id), faultBefore: "an earlier fault")
        _ = try store.update(instanceID: r.id) { $0.vmState = .error; $0.taskState = .none; $0.fault = "No valid host" }
        XCTAssertEqual(try task(try XCTUnwrap(t.id))?.state, .failed)
        XCTAssertEqual(try task(try XCTUnwrap(t.id))?.result, "ERROR: No valid host")
        XCTAssertTrue(store.taskEndedByItsLastCommit(instanceID: r.id))

        _ = try store.update(instanceID: r.id, queue: .power(.start)) { $0.taskState = .poweringOn }
        let start = try XCTUnwrap(store.takeTask(instanceID: r.id))
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: try XCTUnwrap(start.id), faultBefore: "No valid host")
        _ = try store.update(instanceID: r.id) { $0.vmState = .stopped; $0.taskState = .none }
        XCTAssertEqual(try task(try XCTUnwrap(start.id))?.state, .done, "the fault it kept is not this task's")
        XCTAssertEqual(try task(try XCTUnwrap(start.id))?.result, "SHUTOFF")
    }

    func testALostCompareAndSetLeavesTheTaskForTheWorker() throws {
        let r = try newInstance("web1")
        let t = try XCTUnwrap(store.takeTask(instanceID: r.id))
        let tid = try XCTUnwrap(t.id)
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: tid, faultBefore: "")
        _ = try store.requestDelete(instanceID: r.id)
        // The build's last commit loses to the delete: no row change, so no task end.
        XCTAssertNil(try store.update(instanceID: r.id, expecting: [.spawning]) { $0.taskState = .none })
        XCTAssertEqual(try task(tid)?.state, .running)
        XCTAssertFalse(store.taskEndedByItsLastCommit(instanceID: r.id))
        try store.finishTask(id: tid, .cancelled, result: "a delete was requested")
        XCTAssertEqual(try task(tid)?.state, .cancelled)
    }

    func testAQueueingCommitTakesItsTaskForAnIdleWorker() throws {
        // A build handed over: running from its insert, claimed once, never taken again.
        let r = try newInstance("web1", handOver: true)
        XCTAssertTrue(store.hasHandedTask(instanceID: r.id))
        let build = try XCTUnwrap(store.claimHandedTask(instanceID: r.id))
        XCTAssertEqual(build.command, .build)
        XCTAssertEqual(try task(try XCTUnwrap(build.id))?.state, .running, "taken by the insert's own transaction")
        XCTAssertEqual(try task(try XCTUnwrap(build.id))?.updated, build.updated, "written once")
        XCTAssertNil(store.claimHandedTask(instanceID: r.id), "claimed once")
        XCTAssertFalse(store.hasHandedTask(instanceID: r.id))

        // Another task open: the new one waits queued and nothing is handed over.
        _ = try store.update(instanceID: r.id, queue: .power(.stop), handOver: true) { $0.taskState = .poweringOff }
        XCTAssertNil(store.claimHandedTask(instanceID: r.id), "the build is still open")
        try store.finishTask(id: try XCTUnwrap(build.id), .done, result: "ACTIVE")
        let stop = try XCTUnwrap(store.takeTask(instanceID: r.id))
        XCTAssertEqual(stop.command, .power(.stop))
        try store.finishTask(id: try XCTUnwrap(stop.id), .done, result: "SHUTOFF")

        // None open: the action's commit takes it.
        _ = try store.update(instanceID: r.id, queue: .power(.start), handOver: true) { $0.taskState = .poweringOn }
        let start = try XCTUnwrap(store.claimHandedTask(instanceID: r.id))
        XCTAssertEqual(start.command, .power(.start))
        XCTAssertEqual(try task(try XCTUnwrap(start.id))?.state, .running)

        // A refused update (precondition) hands nothing over and queues nothing.
        let before = try store.openTasks().count
        XCTAssertNil(try store.update(instanceID: r.id, expecting: [.none], queue: .power(.stop), handOver: true) { $0.taskState = .poweringOff })
        XCTAssertFalse(store.hasHandedTask(instanceID: r.id))
        XCTAssertEqual(try store.openTasks().count, before)
    }

    func testTheEndingCommitSaysWhetherAnotherTaskIsOpen() throws {
        let r = try newInstance("web1")
        let build = try XCTUnwrap(store.takeTask(instanceID: r.id))
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: try XCTUnwrap(build.id), faultBefore: "")
        _ = try store.update(instanceID: r.id, queue: .power(.stop)) { _ in }   // queued behind the build
        _ = try store.update(instanceID: r.id) { $0.vmState = .active; $0.taskState = .none }
        XCTAssertEqual(store.othersOpenAfterItsLastCommit(instanceID: r.id), true, "the stop is open")
        XCTAssertNil(store.othersOpenAfterItsLastCommit(instanceID: r.id), "the registration is gone")

        let stop = try XCTUnwrap(store.takeTask(instanceID: r.id))
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: try XCTUnwrap(stop.id), faultBefore: "")
        _ = try store.update(instanceID: r.id) { $0.taskState = .poweringOff }
        _ = try store.update(instanceID: r.id) { $0.vmState = .stopped; $0.taskState = .none }
        XCTAssertEqual(store.othersOpenAfterItsLastCommit(instanceID: r.id), false)
        XCTAssertFalse(try hasOpenTask(r.id))

        // A commit that did not end the task tells nothing.
        store.endTaskWithItsLastCommit(instanceID: r.id, taskID: try XCTUnwrap(stop.id), faultBefore: "")
        _ = try store.update(instanceID: r.id) { $0.fault = "x" }
        XCTAssertNil(store.othersOpenAfterItsLastCommit(instanceID: r.id))
    }
}

