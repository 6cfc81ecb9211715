import CloudCore
import GRDB

/// `InstanceRecord` to and from its `instance` row by column name, without Codable:
/// every task step, the catalog load at mount and the tree's reads go through these
/// rows, and GRDB's Codable path (a keyed decoder per row, snake_case conversion of every
/// key) was a tenth of the daemon's time in a build. `RowCodingTests` checks that this
/// covers every column of the table and agrees with the Codable coding.
extension InstanceRecord {
    public init(row: Row) throws {
        id = row["id"]
        name = row["name"]
        ownerUid = row["owner_uid"]
        project = row["project"]
        vmState = try Self.state(row, "vm_state")
        taskState = try Self.state(row, "task_state")
        powerState = try Self.state(row, "power_state")
        fault = row["fault"]
        host = row["host"]
        imageId = row["image_id"]
        imageName = row["image_name"]
        flavor = row["flavor"]
        vcpus = row["vcpus"]
        ramMb = row["ram_mb"]
        diskGb = row["disk_gb"]
        created = row["created"]
        domainXml = row["domain_xml"]
        deleteRequested = row["delete_requested"]
        groupName = row["group_name"]
        locked = row["locked"]
        lockedBy = row["locked_by"]
        availabilityZone = row["availability_zone"]
        oldFlavor = row["old_flavor"]
        oldVcpus = row["old_vcpus"]
        oldRamMb = row["old_ram_mb"]
        oldDiskGb = row["old_disk_gb"]
        oldHost = row["old_host"]
        oldVmState = try (row["old_vm_state"] as String?).map { try Self.state($0, "old_vm_state") }
        resizedAt = row["resized_at"]
        securityGroups = row["security_groups"]
        keyName = row["key_name"]
        publicKey = row["public_key"]
        userData = row["user_data"]
        metadata = row["metadata"]
        requestedNetwork = row["requested_network"]
        sshPort = row["ssh_port"]
        configDrive = row["config_drive"]
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id
        container["name"] = name
        container["owner_uid"] = ownerUid
        container["project"] = project
        container["vm_state"] = vmState.rawValue
        container["task_state"] = taskState.rawValue
        container["power_state"] = powerState.rawValue
        container["fault"] = fault
        container["host"] = host
        container["image_id"] = imageId
        container["image_name"] = imageName
        container["flavor"] = flavor
        container["vcpus"] = vcpus
        container["ram_mb"] = ramMb
        container["disk_gb"] = diskGb
        container["created"] = created
        container["domain_xml"] = domainXml
        container["delete_requested"] = deleteRequested
        container["group_name"] = groupName
        container["locked"] = locked
        container["locked_by"] = lockedBy
        container["availability_zone"] = availabilityZone
        container["old_flavor"] = oldFlavor
        container["old_vcpus"] = oldVcpus
        container["old_ram_mb"] = oldRamMb
        container["old_disk_gb"] = oldDiskGb
        container["old_host"] = oldHost
        container["old_vm_state"] = oldVmState?.rawValue
        container["resized_at"] = resizedAt
        container["security_groups"] = securityGroups
        container["key_name"] = keyName
        container["public_key"] = publicKey
        container["user_data"] = userData
        container["metadata"] = metadata
        container["requested_network"] = requestedNetwork
        container["ssh_port"] = sshPort
        container["config_drive"] = configDrive
    }

    private static func state<T: RawRepresentable>(_ row: Row, _ column: String) throws -> T where T.RawValue == String {
        try state(row[column] as String, column)
    }

    private static func state<T: RawRepresentable>(_ raw: String, _ column: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: raw) else {
            throw DatabaseError(message: "instance.\(column) holds '\(raw)', which is not a \(T.self)")
        }
        return value
    }
}
