import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova's server actions through `ctl`, with their preconditions, on libvirt's test driver.
final class ActionTests: EngineTestCase {

    func act(_ name: String, _ action: String, as caller: Caller? = nil) throws -> InstanceInfo {
        try engine.instances.perform(try InstanceAction(parsing: action), on: name, caller ?? root)
        return try XCTUnwrap(waitStable(name))
    }

    func testEveryActionAndItsPreconditions() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "start"), on: "vm", self.root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.refused vm") && $0.contains("cannot start vm while it is ACTIVE") })
        var i = try act("vm", "stop")
        XCTAssertEqual(i.status, .SHUTOFF); XCTAssertEqual(i.powerState, .shutdown)
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "pause"), on: "vm", self.root) }
        i = try act("vm", "start")
        XCTAssertEqual(i.status, .ACTIVE); XCTAssertEqual(i.powerState, .running)
        i = try act("vm", "pause")
        XCTAssertEqual(i.status, .PAUSED); XCTAssertEqual(i.powerState, .paused)
        i = try act("vm", "unpause")
        XCTAssertEqual(i.status, .ACTIVE); XCTAssertEqual(i.powerState, .running)
        i = try act("vm", "suspend")
        XCTAssertEqual(i.status, .SUSPENDED)
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "unpause"), on: "vm", self.root) }
        i = try act("vm", "resume")
        XCTAssertEqual(i.status, .ACTIVE); XCTAssertEqual(i.powerState, .running)
        i = try act("vm", "reboot")
        XCTAssertEqual(i.status, .ACTIVE); XCTAssertEqual(i.powerState, .running)
        i = try act("vm", "reboot   hard")
        XCTAssertEqual(i.status, .ACTIVE); XCTAssertEqual(i.powerState, .running)
        XCTAssertEqual(i.fault, "")
        assertErrno(.invalid) { try self.engine.instances.perform(try InstanceAction(parsing: "explode"), on: "vm", self.root) }
        assertErrno(.noEntry) { try self.engine.instances.perform(try InstanceAction(parsing: "stop"), on: "nope", self.root) }
        // A task's event line follows its commit (whoever sees it in /events then reads the
        // new state), so a wait answered at once may return just before the line is written.
        for kind in ["instance.stop vm", "instance.start vm", "instance.pause vm", "instance.suspend vm", "instance.reboot_hard vm"] {
            eventually(kind) { engine.events.lines.contains { $0.contains(kind) } }
        }
    }

    func testLockRefusesActionsAndDeleteFromNonAdmins() throws {
        try upload("tiny", rawDisk())
        let owner = try register("alice")
        let stranger = try register("dave", in: "other")
        _ = try engine.instances.create("mine", owner)
        XCTAssertEqual(waitStable("mine")?.status, .ACTIVE)
        _ = try act("mine", "lock")
        assertErrno(.notPermitted) { try self.engine.instances.perform(try InstanceAction(parsing: "stop"), on: "mine", owner) }
        assertErrno(.notPermitted) { try self.engine.instances.delete("mine", owner) }
        assertErrno(.noEntry) { try self.engine.instances.perform(try InstanceAction(parsing: "stop"), on: "mine", stranger) }
        XCTAssertEqual(try act("mine", "stop").status, .SHUTOFF, "an admin may act on a locked instance")
        // An admin's lock binds the project's members (Nova's locked_by=admin).
        assertErrno(.notPermitted) { try self.engine.instances.perform(try InstanceAction(parsing: "unlock"), on: "mine", owner) }
        try engine.instances.perform(try InstanceAction(parsing: "unlock"), on: "mine", root)
        XCTAssertEqual(try act("mine", "start", as: owner).status, .ACTIVE)
        // The owner's own lock is theirs to lift.
        try engine.instances.perform(try InstanceAction(parsing: "lock"), on: "mine", owner)
        try engine.instances.perform(try InstanceAction(parsing: "unlock"), on: "mine", owner)
        try engine.instances.delete("mine", owner)
        waitGone("mine")
    }

    func testActionsAreRefusedWhileAnotherRuns() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("b", root)
        // Still building: every action is refused with EBUSY and the reason.
        assertErrno(.busy) { try self.engine.instances.perform(try InstanceAction(parsing: "stop"), on: "b", self.root) }
        XCTAssertEqual(waitStable("b")?.status, .ACTIVE)
    }
}
