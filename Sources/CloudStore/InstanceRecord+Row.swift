import CloudCore
import GRDB

/// `InstanceRecord` to and from its `instance` row by column name, without Codable:
/// every task step, the catalog load at mount and the tree's reads go through these
/// rows, and GRDB's Codable path (a keyed decoder per row, snake_case conversion of every
/// key) was a tenth of the daemon's time in a build. `RowCodingTests` checks that this
/// covers every column of the table and agrees with the Codable coding.
extension InstanceRecord {
    /// Decodes a row by column name (any `SELECT` of the table's columns).
    public init(row: Row) throws {
        let names = Array(row.columnNames)
        try self.init(row: row, positions: Self.columnNames.map { name in
            guard let i = names.firstIndex(of: name) else { throw DatabaseError(message: "an instance row without \(name)") }
            return i
        })
    }

    /// Decodes a row whose column `columnNames[k]` is at `positions[k]` (`Self.inOrder`
    /// for the store's own statements, which select `columnNames` in order: no lookup of
    /// 37 names, each lowercased, for every row).
    init(row: Row, positions: [Int]) throws {
        var c = Cursor(row: row, positions: positions)
        id = c.next()
        name = c.next()
        ownerUid = c.next()
        project = c.next()
        vmState = try c.state()
        taskState = try c.state()
        powerState = try c.state()
        fault = c.next()
        host = c.optional()
        imageId = c.next()
        imageName = c.next()
        flavor = c.next()
        vcpus = c.next()
        ramMb = c.next()
        diskGb = c.next()
        created = c.next()
        domainXml = c.next()
        deleteRequested = c.next()
        groupName = c.optional()
        locked = c.next()
        lockedBy = c.optional()
        availabilityZone = c.optional()
        oldFlavor = c.optional()
        oldVcpus = c.next()
        oldRamMb = c.next()
        oldDiskGb = c.next()
        oldHost = c.optional()
        oldVmState = try c.optionalState()
        resizedAt = c.optional()
        securityGroups = c.next()
        keyName = c.optional()
        publicKey = c.next()
        userData = c.next()
        metadata = c.next()
        requestedNetwork = c.optional()
        sshPort = c.optional()
        configDrive = c.next()
    }

    /// One column of the `instance` table: its name, the record's value for it, and
    /// whether two records agree on it (compared field to field, so an update converts
    /// only the columns it changed: boxing every value of both rows was 6% of an action).
    struct Column: Sendable {
        let name: String
        let value: @Sendable (InstanceRecord) -> DatabaseValue
        let same: @Sendable (InstanceRecord, InstanceRecord) -> Bool

        init<T: DatabaseValueConvertible & Equatable & Sendable>(_ name: String, _ field: KeyPath<InstanceRecord, T> & Sendable) {
            self.name = name
            value = { $0[keyPath: field].databaseValue }
            same = { $0[keyPath: field] == $1[keyPath: field] }
        }
    }

    /// The table's columns, `id` first.
    static let columns: [Column] = [
        Column("id", \.id), Column("name", \.name), Column("owner_uid", \.ownerUid), Column("project", \.project),
        Column("vm_state", \.vmState.rawValue), Column("task_state", \.taskState.rawValue),
        Column("power_state", \.powerState.rawValue), Column("fault", \.fault), Column("host", \.host),
        Column("image_id", \.imageId), Column("image_name", \.imageName), Column("flavor", \.flavor),
        Column("vcpus", \.vcpus), Column("ram_mb", \.ramMb), Column("disk_gb", \.diskGb), Column("created", \.created),
        Column("domain_xml", \.domainXml), Column("delete_requested", \.deleteRequested), Column("group_name", \.groupName),
        Column("locked", \.locked), Column("locked_by", \.lockedBy), Column("availability_zone", \.availabilityZone),
        Column("old_flavor", \.oldFlavor), Column("old_vcpus", \.oldVcpus), Column("old_ram_mb", \.oldRamMb),
        Column("old_disk_gb", \.oldDiskGb), Column("old_host", \.oldHost), Column("old_vm_state", \.oldVmState?.rawValue),
        Column("resized_at", \.resizedAt), Column("security_groups", \.securityGroups), Column("key_name", \.keyName),
        Column("public_key", \.publicKey), Column("user_data", \.userData), Column("metadata", \.metadata),
        Column("requested_network", \.requestedNetwork), Column("ssh_port", \.sshPort), Column("config_drive", \.configDrive),
    ]

    /// The names of `columns`, in order.
    static let columnNames = columns.map(\.name)

    /// This record's value for each of `columns`, in order.
    var columnValues: [DatabaseValue] { Self.columns.map { $0.value(self) } }

    public func encode(to container: inout PersistenceContainer) throws {
        for (column, value) in zip(Self.columnNames, columnValues) { container[column] = value }
    }

    /// `0..<columnNames.count`: the positions of a row that selects `columnNames` in order.
    static let inOrder = Array(columnNames.indices)

    /// Reads a row's columns in `columnNames` order.
    private struct Cursor {
        let row: Row
        let positions: [Int]
        var k = 0

        mutating func next<T: DatabaseValueConvertible>() -> T {
            defer { k += 1 }
            return row[positions[k]]
        }

        mutating func optional<T: DatabaseValueConvertible>() -> T? {
            defer { k += 1 }
            return row[positions[k]]
        }

        mutating func state<T: RawRepresentable>() throws -> T where T.RawValue == String {
            let raw: String = next()
            return try Self.state(raw, column: k - 1)
        }

        mutating func optionalState<T: RawRepresentable>() throws -> T? where T.RawValue == String {
            guard let raw: String = optional() else { return nil }
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
}
