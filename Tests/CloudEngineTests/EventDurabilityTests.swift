import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import GRDB
import XCTest

/// An instance's change and its /events line are written by one transaction
/// (`EngineCore.commit` binds `Store.withEventLines`; a build's first steps hand their
/// lines to `insertInstance` and the fixed-IP allocation): once the change is visible, its
/// line is in SQLite, so a kill -9 cannot keep the one and lose the other.
final class EventDurabilityTests: EngineTestCase {
    func testAChangeAndItsEventAreCommittedTogether() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        var readOnly = Configuration()
        readOnly.readonly = true
        let db = try DatabaseQueue(path: stateDir + "/cloudfs.db", configuration: readOnly)
        func persisted() throws -> [String] { try db.read { try String.fetchAll($0, sql: "SELECT line FROM event ORDER BY id") } }
        // Every step of the build wrote its event with its own commit: all are in SQLite
        // when `wait` wakes, and the same as /events shows.
        let built = try persisted()
        for kind in ["instance.created", "instance.scheduled", "instance.networked", "instance.active"] {
            XCTAssertEqual(built.filter { $0.contains(" \(kind) vm ") }.count, 1, "\(kind) in SQLite: \(built.suffix(4))")
            XCTAssertEqual(engine.events.lines.filter { $0.contains(" \(kind) vm ") }, built.filter { $0.contains(" \(kind) vm ") })
        }
        XCTAssertTrue(built.filter { $0.contains(" instance.") }.allSatisfy { $0.hasSuffix(" project=default") },
                      "every instance line names its project: \(built)")
        // SQLite keeps the order /events showed (lines queued earlier go in first).
        XCTAssertEqual(built, Array(engine.events.lines.prefix(built.count)))
        for round in 1...5 {
            for (verb, kind, status) in [("stop", "instance.stop", "SHUTOFF"), ("start", "instance.start", "ACTIVE")] {
                try engine.instances.perform(try InstanceAction(parsing: verb), on: "vm", root)
                XCTAssertEqual(waitStable("vm")?.status.rawValue, status)
                // Read at once: no flush of queued lines is due for another 2 ms.
                let lines = try persisted()
                XCTAssertEqual(lines.filter { $0.contains(" \(kind) vm ") }.count, round, "\(verb), round \(round): \(lines.suffix(3))")
                // The line is in /events too, once, and the same as in SQLite.
                XCTAssertEqual(engine.events.lines.filter { $0.contains(" \(kind) vm ") }, lines.filter { $0.contains(" \(kind) vm ") })
            }
        }
    }
}
