import CloudCore
import GRDB

/// `InstanceRecord` to and from its `instance` row by column name, without Codable:
/// every task step, the catalog load at mount and the tree's reads go through these
/// rows, and GRDB's Codable path (a keyed decoder per row, snake_case conversion of every
/// key) was a tenth of the daemon's time in a build. `RowCodingTests` checks that this
/// covers every column of the table and agrees with the Codable coding.
extension InstanceRecord {
    /// Decodes a row by column name (any `SELECT` of the table's columns).
    /// The store's own statements read through `InstanceRowCursor` instead.
    public init(row: Row) throws {
        let names = Array(row.columnNames)
        var reader = RowReader(row: row, positions: try Self.columnNames.map { name in
            guard let i = names.firstIndex(of: name) else { throw DatabaseError(message: "an instance row without \(name)") }
            return i
        })
        try self.init(reading: &reader)
    }

    /// Decodes the row a statement that selects `columnNames` in order has just stepped
    /// onto, column by column from SQLite (`InstanceRowCursor`).
    init(sqliteStatement: SQLiteStatement) throws {
        var reader = StatementReader(sqliteStatement: sqliteStatement)
        try self.init(reading: &reader)
    }

    fileprivate init<Reader: ColumnReader>(reading c: inout Reader) throws {
        id = try c.next()
        name = try c.next()
        ownerUid = try c.next()
        project = try c.next()
        vmState = try c.state()
        taskState = try c.state()
        powerState = try c.state()
        fault = try c.next()
        host = try c.optional()
        imageId = try c.next()
        imageName = try c.next()
        flavor = try c.next()
        vcpus = try c.next()
        ramMb = try c.next()
        diskGb = try c.next()
        created = try c.next()
        domainXml = try c.next()
        deleteRequested = try c.next()
        groupName = try c.optional()
        locked = try c.next()
        lockedBy = try c.optional()
        availabilityZone = try c.optional()
        oldFlavor = try c.optional()
        oldVcpus = try c.next()
        oldRamMb = try c.next()
        oldDiskGb = try c.next()
        oldHost = try c.optional()
        oldVmState = try c.optionalState()
        resizedAt = try c.optional()
        securityGroups = try c.next()
        keyName = try c.optional()
        publicKey = try c.next()
        userData = try c.next()
        metadata = try c.next()
        requestedNetwork = try c.optional()
        sshPort = try c.optional()
        configDrive = try c.next()
    }

    /// One column of the `instance` table: its name, the record's value for it, and
    /// whether two records agree on it. An update compares fields and converts only the
    /// columns it sets (boxing every value of both rows was 6% of an action); the fields
    /// are read by closures, not key paths, whose projection cost more than that boxing.
    struct Column: Sendable {
        let name: String
        let value: @Sendable (InstanceRecord) -> DatabaseValue
        let same: @Sendable (InstanceRecord, InstanceRecord) -> Bool

        init<T: DatabaseValueConvertible & Equatable & Sendable>(_ name: String, _ field: @escaping @Sendable (InstanceRecord) -> T) {
            self.name = name
            value = { field($0).databaseValue }
            same = { field($0) == field($1) }
        }
    }

    /// The table's columns, `id` first.
    static let columns: [Column] = [
        Column("id") { $0.id }, Column("name") { $0.name }, Column("owner_uid") { $0.ownerUid }, Column("project") { $0.project },
        Column("vm_state") { $0.vmState.rawValue }, Column("task_state") { $0.taskState.rawValue },
        Column("power_state") { $0.powerState.rawValue }, Column("fault") { $0.fault }, Column("host") { $0.host },
        Column("image_id") { $0.imageId }, Column("image_name") { $0.imageName }, Column("flavor") { $0.flavor },
        Column("vcpus") { $0.vcpus }, Column("ram_mb") { $0.ramMb }, Column("disk_gb") { $0.diskGb }, Column("created") { $0.created },
        Column("domain_xml") { $0.domainXml }, Column("delete_requested") { $0.deleteRequested }, Column("group_name") { $0.groupName },
        Column("locked") { $0.locked }, Column("locked_by") { $0.lockedBy }, Column("availability_zone") { $0.availabilityZone },
        Column("old_flavor") { $0.oldFlavor }, Column("old_vcpus") { $0.oldVcpus }, Column("old_ram_mb") { $0.oldRamMb },
        Column("old_disk_gb") { $0.oldDiskGb }, Column("old_host") { $0.oldHost }, Column("old_vm_state") { $0.oldVmState?.rawValue },
        Column("resized_at") { $0.resizedAt }, Column("security_groups") { $0.securityGroups }, Column("key_name") { $0.keyName },
        Column("public_key") { $0.publicKey }, Column("user_data") { $0.userData }, Column("metadata") { $0.metadata },
        Column("requested_network") { $0.requestedNetwork }, Column("ssh_port") { $0.sshPort }, Column("config_drive") { $0.configDrive },
    ]

    /// The names of `columns`, in order.
    static let columnNames = columns.map(\.name)

    /// This record's value for each of `columns`, in order.
    var columnValues: [DatabaseValue] { Self.columns.map { $0.value(self) } }

    public func encode(to container: inout PersistenceContainer) throws {
        for (column, value) in zip(Self.columnNames, columnValues) { container[column] = value }
    }
}

/// Reads an `instance` row's columns one after the other, in `columnNames` order.
/// `StatementColumnConvertible`: GRDB's fast path reads the SQLite column directly
/// instead of making a `DatabaseValue` of each (about 1K instructions a column).
private protocol ColumnReader {
    /// The index, in `columnNames`, of the column the next read returns.
    var k: Int { get }
    mutating func next<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T
    mutating func optional<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T?
}

/// The columns of a `Row`, at `positions` (found by name).
private struct RowReader: ColumnReader {
    let row: Row
    let positions: [Int]
    var k = 0

    mutating func next<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T {
        defer { k += 1 }
        return try row.decode(T.self, atIndex: positions[k])
    }

    mutating func optional<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T? {
        defer { k += 1 }
        return try row.decode(T?.self, atIndex: positions[k])
    }
}

/// The columns of the statement's current row, which selects `columnNames` in order:
/// no `Row`, whose making lowercases every column name into a dictionary (about 50K
/// instructions for this table's 37).
private struct StatementReader: ColumnReader {
    let sqliteStatement: SQLiteStatement
    var k = 0

    mutating func next<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T {
        guard let value: T = try optional() else {
            throw DatabaseError(message: "instance.\(InstanceRecord.columnNames[k - 1]) is NULL")
        }
        return value
    }

    /// GRDB's `fromStatement` of an optional: `.some(nil)` for NULL, nil for a value
    /// that is not a `T`.
    mutating func optional<T: DatabaseValueConvertible & StatementColumnConvertible>() throws -> T? {
        defer { k += 1 }
        guard let value = T?.fromStatement(sqliteStatement, atUncheckedIndex: CInt(k)) else {
            throw DatabaseError(message: "instance.\(InstanceRecord.columnNames[k]) is not a \(T.self)")
        }
        return value
    }
}

extension ColumnReader {
    mutating func state<T: RawRepresentable>() throws -> T where T.RawValue == String {
        let raw: String = try next()
        return try Self.state(raw, column: k - 1)
    }

    mutating func optionalState<T: RawRepresentable>() throws -> T? where T.RawValue == String {
        guard let raw: String = try optional() else { return nil }
        return try Self.state(raw, column: k - 1)
    }

    /// `raw` as a state, or an error naming the column (`columnNames[column]`).
    static func state<T: RawRepresentable>(_ raw: String, column: Int) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else {
            throw DatabaseError(message: "instance.\(InstanceRecord.columnNames[column]) holds '\(raw)', which is not a \(T.self)")
        }
        return value
    }
}

/// A GRDB cursor over `instance` rows of a statement that selects `columnNames` in
/// order, each decoded from the SQLite statement (`InstanceRecord(sqliteStatement:)`).
final class InstanceRowCursor: DatabaseCursor {
    typealias Element = InstanceRecord
    let _statement: Statement
    var _isDone = false

    /// Resets the statement and binds `arguments` (GRDB's own cursors do the same).
    init(_ statement: Statement, arguments: StatementArguments = StatementArguments()) throws {
        _statement = statement
        try statement.setArguments(arguments)
    }

    /// A cursor left before its end (a decoding error) resets its statement, as GRDB's
    /// own cursors do, so a reader connection does not keep its snapshot.
    deinit { if !_isDone { try? _statement.setArguments(_statement.arguments) } }

    func _element(sqliteStatement: SQLiteStatement) throws -> InstanceRecord {
        try InstanceRecord(sqliteStatement: sqliteStatement)
    }
}
