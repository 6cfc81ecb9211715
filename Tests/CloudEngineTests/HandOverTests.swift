import CloudCore
@testable import CloudEngine
import CloudStore
import Foundation
import XCTest

/// A commit that queues a task for an instance no worker runs takes the task itself (one
/// write transaction fewer per build and action); the task still runs exactly once, and
/// a hand-over whose dispatch never came is run by the next sweep, not settled.
final class HandOverTests: EngineTestCase {
    func testBuildsAndActionsRunTheTaskTheirCommitTook() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        for verb in ["stop", "start", "reboot"] {
            try engine.instances.perform(try InstanceAction(parsing: verb), on: "vm", root)
            XCTAssertNotNil(waitStable("vm"))
        }
        engine.drain()
        let actions = engine.instances.actions("vm", .system)
        XCTAssertEqual(actions.count, 4, actions.joined(separator: "; "))
        for (line, (what, status)) in zip(actions, [("action(reboot)", "ACTIVE"), ("action(start)", "ACTIVE"),
                                                    ("action(stop)", "SHUTOFF"), ("build", "ACTIVE")]) {
            XCTAssertTrue(line.contains(" \(what) done ") && line.hasSuffix(" " + status), "\(line) (want \(what) done \(status))")
        }
        let id = try XCTUnwrap(engine.instances.get("vm", .system)?.id)
        XCTAssertFalse(engine.core.store.hasHandedTask(instanceID: id), "every hand-over was claimed")
        XCTAssertTrue(try engine.core.store.openTasks().isEmpty)
    }

    func testAHandOverWhoseDispatchNeverCameRunsAtTheNextSweep() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        let id = try XCTUnwrap(waitStable("vm")?.id)
        engine.drain()
        // A request's commit as `queue` makes it, without the dispatch that follows it.
        XCTAssertTrue(engine.worker.isIdle(id))
        _ = try engine.core.commit { (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [.none], queue: .power(.stop), handOver: true) { $0.taskState = .poweringOff }
        }
        XCTAssertTrue(engine.core.store.hasHandedTask(instanceID: id))
        XCTAssertEqual(try engine.core.store.openTasks().map(\.state), [.running], "taken by its commit")
        // The sweep finds the running task with no worker: it is handed over, so it runs
        // (a task a failed worker left would be settled as interrupted instead).
        engine.reconcileNow()
        XCTAssertEqual(waitStable("vm")?.status, .SHUTOFF)
        engine.drain()
        let last = engine.instances.actions("vm", .system).first ?? ""
        XCTAssertTrue(last.contains(" action(stop) done ") && last.hasSuffix(" SHUTOFF"),
                      engine.instances.actions("vm", .system).joined(separator: "; "))
        XCTAssertFalse(engine.core.store.hasHandedTask(instanceID: id))
    }

    /// The delete's dispatch starts the worker before the hand-over's own dispatch came
    /// (here: never): the worker runs the handed-over stop, then must still find the delete
    /// queued behind it (BuildTests.testDeleteDuringBuildLeavesNothing hit this by chance).
    func testATaskQueuedAfterAHandOverIsFoundByItsWorker() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        let id = try XCTUnwrap(waitStable("vm")?.id)
        engine.drain()
        _ = try engine.core.commit { (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [.none], queue: .power(.stop), handOver: engine.worker.isIdle(id)) {
                $0.taskState = .poweringOff
            }
        }
        XCTAssertTrue(engine.core.store.hasHandedTask(instanceID: id))
        try engine.instances.delete("vm", root)
        waitGone("vm", timeout: 10)
        engine.drain()
        XCTAssertNil(engine.instances.get("vm", .system))
        XCTAssertTrue(try engine.core.store.openTasks().isEmpty)
    }
}

