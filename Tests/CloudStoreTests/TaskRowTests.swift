@testable import CloudStore
import CloudCore
import Foundation
import GRDB
import XCTest

/// `TaskRecord`'s hand-written row coding (TaskRecord+Row.swift) against GRDB's Codable
/// coding it replaced: rows written before this change read back, and rows written now
/// read back through the Codable decoding.
final class TaskRowTests: StoreTestCase {
    /// A task with every field set to something other than its default.
    func fullTask(_ command: InstanceTask) -> TaskRecord {
        var t = TaskRecord(instanceID: "i-1", instanceName: "web1", command: command)
        t.state = .failed; t.step = "spawning"; t.created = 1234.5; t.updated = 1240.25; t.result = "ERROR: oops"
        return t
    }

    let commands: [InstanceTask] = [.build, .power(.stop), .migrate(host: "h2"), .liveMigrate(host: nil), .resize(flavor: "m1.small")]

    func rows(_ sql: String) throws -> [Row] { try store.db.read { db in try Row.fetchAll(db, sql: sql) } }

    func testInsertRowWritesWhatTheCodableInsertWrote() throws {
        for command in commands {
            var codable = fullTask(command), manual = fullTask(command)
            try store.db.write { db in
                try codable.insert(db)   // GRDB's Encodable path (the default encode(to:))
                try manual.insertRow(db)
            }
            XCTAssertEqual(manual.id, try XCTUnwrap(codable.id) + 1, "insertRow takes the id SQLite gave")
            let written = try rows("SELECT * FROM task WHERE id IN (\(codable.id!), \(manual.id!)) ORDER BY id")
            XCTAssertEqual(written.count, 2)
            for column in TaskRecord.columnNames.dropFirst() {
                XCTAssertEqual(written[0][column] as DatabaseValue, written[1][column] as DatabaseValue, "\(command): \(column)")
            }
        }
    }

    func testRowDecodingAgreesWithTheCodableDecoding() throws {
        for command in commands {
            var t = fullTask(command)
            try store.db.write { db in try t.insertRow(db) }
            let row = try XCTUnwrap(try rows("SELECT * FROM task WHERE id = \(t.id!)").first)
            XCTAssertEqual(try TaskRecord(row: row), t)
            XCTAssertEqual(try CodableTask(row: row).task, t, "\(command)")
        }
        XCTAssertThrowsError(try TaskRecord(row: Row(["id": 1, "instance_id": "i", "instance_name": "n", "kind": "build",
                                                      "command": #"{"build":{}}"#, "state": "lost", "step": "",
                                                      "created": 0.0, "updated": 0.0, "result": ""])))
    }
}

/// The Codable decoding `TaskRecord` had (GRDB's defaults with snake_case columns).
private struct CodableTask: Decodable, FetchableRecord {
    static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    let task: TaskRecord
    init(from decoder: any Decoder) throws { task = try TaskRecord(from: decoder) }
}
