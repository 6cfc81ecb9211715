import CloudCore
import Foundation
import GRDB

/// `TaskRecord` to and from its `task` row without Codable: every action inserts a task
/// and every worker takes one, and GRDB's Codable path (a keyed coder per row, snake_case
/// conversion of every key, the INSERT built again each time) was most of the cost of
/// both. The `command` column keeps GRDB's JSON for a nested Codable value
/// (`databaseJSONEncoder`), so rows written either way read back alike; `TaskRowTests`
/// checks that against the Codable coding.
extension TaskRecord {
    /// The table's columns, `id` first.
    static let columnNames = ["id", "instance_id", "instance_name", "kind", "command", "state", "step",
                              "created", "updated", "result"]
    private static let insertSQL = "INSERT INTO task (" + columnNames.dropFirst().joined(separator: ", ")
        + ") VALUES (" + Array(repeating: "?", count: columnNames.count - 1).joined(separator: ", ") + ")"

    /// Decodes a row by column name (any `SELECT` of the table's columns).
    public init(row: Row) throws {
        let json: String = row["command"]
        guard let state = TaskRunState(rawValue: row["state"]) else {
            throw DatabaseError(message: "a task row with state \(String(describing: row["state"] as String?))")
        }
        self.init(id: row["id"], instanceId: row["instance_id"], instanceName: row["instance_name"], kind: row["kind"],
                  command: try Self.databaseJSONDecoder(for: "command").decode(InstanceTask.self, from: Data(json.utf8)),
                  state: state, step: row["step"], created: row["created"], updated: row["updated"], result: row["result"])
    }

    /// Inserts the row through one statement compiled once per connection, and takes the
    /// id SQLite gave it.
    mutating func insertRow(_ db: Database) throws {
        let json = String(decoding: try Self.databaseJSONEncoder(for: "command").encode(command), as: UTF8.self)
        try db.cachedStatement(sql: Self.insertSQL).execute(arguments: [
            instanceId, instanceName, kind, json, state.rawValue, step, created, updated, result,
        ])
        id = db.lastInsertedRowID
    }
}
