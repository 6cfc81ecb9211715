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

    /// The `instance` table's columns, `id` first, in the order of `columnValues`.
    static let columnNames: [String] = [
        "id", "name", "owner_uid", "project", "vm_state", "task_state", "power_state", "fault", "host",
        "image_id", "image_name", "flavor", "vcpus", "ram_mb", "disk_gb", "created", "domain_xml",
        "delete_requested", "group_name", "locked", "locked_by", "availability_zone", "old_flavor",
        "old_vcpus", "old_ram_mb", "old_disk_gb", "old_host", "old_vm_state", "resized_at",
        "security_groups", "key_name", "public_key", "user_data", "metadata", "requested_network",
        "ssh_port", "config_drive",
    ]

    /// This record's value for each of `columnNames`, in order.
    var columnValues: [(any DatabaseValueConvertible)?] {
        [id, name, ownerUid, project, vmState.rawValue, taskState.rawValue, powerState.rawValue, fault, host,
         imageId, imageName, flavor, vcpus, ramMb, diskGb, created, domainXml,
         deleteRequested, groupName, locked, lockedBy, availabilityZone, oldFlavor,
         oldVcpus, oldRamMb, oldDiskGb, oldHost, oldVmState?.rawValue, resizedAt,
         securityGroups, keyName, publicKey, userData, metadata, requestedNetwork,
         sshPort, configDrive]
    }

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
