import CloudCore
import GRDB

/// The `instance` row's fetch, insert and update through statements compiled once per connection.
/// GRDB's query interface compiles a new statement for every `fetchOne(db, key:)`, and
/// each compilation runs its statement authorizer over every column: at 10,000 instances
/// that was a fifth of a restart (the power-state sweep) and most of a build's store time.
extension InstanceRecord {
    /// The table's columns in `columnNames` order, so rows decode by position.
    private static let quotedColumns = columnNames.map { "\"\($0)\"" }.joined(separator: ", ")
    private static let selectAllSQL = "SELECT " + quotedColumns + " FROM instance"
    private static let selectSQL = selectAllSQL + " WHERE id = ?"
    /// The row whose id is `id`, or nil. The cursor is drained (a second step ends it), so
    /// the statement holds no read lock once this returns.
    static func fetch(_ db: Database, id: String) throws -> InstanceRecord? {
        let rows = try InstanceRowCursor(db.cachedStatement(sql: selectSQL), arguments: [id])
        let record = try rows.next()
        if record != nil { _ = try rows.next() }
        return record
    }

    /// Every row (the catalog's load at mount).
    static func fetchEvery(_ db: Database) throws -> [InstanceRecord] {
        try Array(InstanceRowCursor(db.cachedStatement(sql: selectAllSQL)))
    }

    private static let insertSQL = "INSERT INTO instance (" + quotedColumns
        + ") VALUES (" + Array(repeating: "?", count: columnNames.count).joined(separator: ", ") + ")"
    /// Inserts the row through one statement compiled once per connection (GRDB's
    /// `insert(db)` builds its INSERT and a persistence container again for every row).
    func insertRow(_ db: Database) throws {
        try db.cachedStatement(sql: Self.insertSQL).execute(arguments: StatementArguments(columnValues))
    }

    /// Writes the columns whose values differ from `old`, the row as this transaction read
    /// it, over the row; nothing when none does. Not every column: SQLite rewrites the
    /// entries of every index on a column an UPDATE sets, changed or not, so a whole-row
    /// write dirtied six pages of the WAL where a task_state change needs one.
    /// GRDB's `recordNotFound` when the row is gone (as `update(db)` does).
    func write(_ db: Database, over old: InstanceRecord) throws {
        let changed = Self.columns.dropFirst().filter { !$0.same(self, old) }
        guard !changed.isEmpty else { return }
        // One cached statement per set of changed columns: a few dozen sets in practice.
        let statement = try db.cachedStatement(sql: "UPDATE instance SET "
            + changed.map { "\"\($0.name)\" = ?" }.joined(separator: ", ") + " WHERE id = ?")
        try statement.execute(arguments: StatementArguments(changed.map { $0.value(self) } + [id.databaseValue]))
        if db.changesCount == 0 {
            throw RecordError.recordNotFound(databaseTableName: Self.databaseTableName, key: ["id": id.databaseValue])
        }
    }
}
