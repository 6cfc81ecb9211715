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
