import CloudCore
import Foundation
import GRDB

/// A row of `flavor` (Nova's instance_types).
public struct FlavorRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "flavor"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var name: String
    public var vcpus: Int
    public var ramMb: Int
    public var diskGb: Int
    public var ownerUid: Int64
    public init(_ f: Flavor) { name = f.name; vcpus = f.vcpus; ramMb = f.ramMB; diskGb = f.diskGB; ownerUid = Int64(f.ownerUID) }
    public var flavor: Flavor { Flavor(name: name, vcpus: vcpus, ramMB: ramMb, diskGB: diskGb, ownerUID: UInt32(ownerUid)) }
}

/// A row of `image` (Glance's images table).
public struct ImageRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "image"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: String
    public var name: String
    public var status: String
    public var format: String
    public var size: Int64
    public var virtualSize: Int64
    public var checksum: String
    public var created: Double
    public var activated: Double?
    public var minRamMb: Int
    public var minDiskGb: Int
    public var ownerUid: Int64
    public var path: String
    /// The project that owns it (Glance's `owner`).
    public var project: String
    /// Glance's `visibility`: public | private | shared.
    public var visibility: String
    /// The projects a `shared` image is shared with (Glance's image members), one per line.
    public var sharedWith: String
    public init(id: String, name: String, status: ImageStatus, format: DiskFormat, created: Date, ownerUID: UInt32, path: String,
                project: String = "default", visibility: ImageVisibility = .private) {
        self.id = id; self.name = name; self.status = status.rawValue; self.format = format.rawValue
        size = 0; virtualSize = 0; checksum = ""; self.created = created.timeIntervalSince1970; activated = nil
        minRamMb = 0; minDiskGb = 0; ownerUid = Int64(ownerUID); self.path = path
        self.project = project; self.visibility = visibility.rawValue; sharedWith = ""
    }
    public func info(properties: [String: String]) -> ImageInfo {
        ImageInfo(name: name, id: id, status: ImageStatus(rawValue: status) ?? .killed,
                  format: DiskFormat(rawValue: format) ?? .unknown, size: size, virtualSize: virtualSize,
                  checksum: checksum, created: Date(timeIntervalSince1970: created), minRamMB: minRamMb,
                  minDiskGB: minDiskGb, properties: properties, ownerUID: UInt32(ownerUid), path: path,
                  project: project, visibility: ImageVisibility(rawValue: visibility) ?? .private,
                  sharedWith: sharedWith.split(separator: "\n").map(String.init))
    }
}

/// A row of `image_property` (Glance's image_properties).
public struct ImagePropertyRecord: Codable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "image_property"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var imageId: String
    public var key: String
    public var value: String
}

/// A row of `host` (Nova's compute_nodes, minus what the hypervisor reports live).
public struct HostRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "host"
    public var name: String
    public var uri: String
    public var enabled: Bool
    public var created: Double
    public var availabilityZone: String
    /// Its agent's address (`A.B.C.D:PORT`, `cloudfs agent`); empty: the host has none.
    public var agent: String
    enum CodingKeys: String, CodingKey {
        case name, uri, enabled, created, availabilityZone = "availability_zone", agent
    }
    public init(name: String, uri: String, enabled: Bool = true, created: Date = Date(), availabilityZone: String = "nova",
                agent: String = "") {
        self.name = name; self.uri = uri; self.enabled = enabled; self.created = created.timeIntervalSince1970
        self.availabilityZone = availabilityZone; self.agent = agent
    }
}

/// A row of `network` (nova-network's networks table). Addresses and CIDRs are text;
/// an empty `dhcp_start`, `bridge_interface`, `dns` or `floating_range` means unset.
public struct NetworkRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "network"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var name: String
    public var cidr: String
    public var gateway: String
    public var mode: String
    /// DNS servers, comma separated.
    public var dns: String
    public var bridge: String
    public var bridgeInterface: String
    /// The segment id: the 802.1Q tag of a vlan network, the VNI of a vxlan one (Neutron's
    /// `segmentation_id`).
    public var vlan: Int?
    public var dhcpStart: String
    public var floatingRange: String
    /// The project a vlan network is associated with (nova's `project_id`); nil: unassigned.
    public var project: String?
    public init(name: String, cidr: String, gateway: String, mode: String, dns: String = "", bridge: String = "br100",
                bridgeInterface: String = "", vlan: Int? = nil, dhcpStart: String = "", floatingRange: String = "",
                project: String? = nil) {
        self.name = name; self.cidr = cidr; self.gateway = gateway; self.mode = mode
        self.dns = dns; self.bridge = bridge; self.bridgeInterface = bridgeInterface; self.vlan = vlan
        self.dhcpStart = dhcpStart; self.floatingRange = floatingRange; self.project = project
    }
}

/// A row of `floating_ip` (nova-network's floating_ips): an address of a network's
/// floating range held by a project, associated with at most one instance.
public struct FloatingIPRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "floating_ip"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var address: Int64
    /// The network whose floating_range holds the address.
    public var pool: String
    public var project: String
    public var ownerUid: Int64
    public var instanceId: String?
    /// Allocated by `echo auto > floating_ip`: released with the instance (Nova's auto_assigned).
    public var autoAssigned: Bool
    public var created: Double
    public init(address: Int64, pool: String, project: String, ownerUID: UInt32, instanceId: String? = nil,
                autoAssigned: Bool = false, created: Date = Date()) {
        self.address = address; self.pool = pool; self.project = project; ownerUid = Int64(ownerUID)
        self.instanceId = instanceId; self.autoAssigned = autoAssigned; self.created = created.timeIntervalSince1970
    }
}

/// A row of `security_group` (Nova's security_groups with its rules as canonical text,
/// one `PROTO PORTS CIDR` line per rule).
public struct SecurityGroupRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "security_group"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var name: String
    public var rules: String
    public var ownerUid: Int64
    /// The project that owns it; "" for the cloud-wide `default` group every project uses.
    public var project: String
    public init(name: String, rules: String = "", ownerUID: UInt32 = 0, project: String = "") {
        self.name = name; self.rules = rules; ownerUid = Int64(ownerUID); self.project = project
    }
}

/// A row of `fixed_ip` (nova-network's fixed_ips): one allocation, address as a number.
public struct FixedIPRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "fixed_ip"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var network: String
    public var address: Int64
    public var mac: String
    public var instanceId: String
}

/// A row of `instance` (Nova's instances table): desired and observed state.
public struct InstanceRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "instance"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: String
    public var name: String
    public var ownerUid: Int64
    public var project: String
    public var vmState: VmState
    public var taskState: TaskState
    public var powerState: PowerState
    public var fault: String
    public var host: String?
    public var imageId: String
    public var imageName: String
    public var flavor: String
    public var vcpus: Int
    public var ramMb: Int
    public var diskGb: Int
    public var created: Double
    public var domainXml: String
    public var deleteRequested: Bool
    public var groupName: String?
    public var locked: Bool
    /// Nova's `locked_by`: `admin` (binds the project's members) or `owner`; nil unlocked.
    public var lockedBy: String?
    /// Requested availability zone; nil for any.
    public var availabilityZone: String?
    /// While a resize waits for confirmation (Nova's migration record, folded in): the
    /// flavor, resources, host and vm_state it had, still claimed so a revert always fits.
    public var oldFlavor: String?
    public var oldVcpus: Int
    public var oldRamMb: Int
    public var oldDiskGb: Int
    public var oldHost: String?
    public var oldVmState: VmState?
    public var resizedAt: Double?
    /// The security groups whose rules let traffic in, one name per line (Nova's
    /// security_group_instance_association).
    public var securityGroups: String
    /// The key pair it was launched with, and a copy of its public key.
    public var keyName: String?
    public var publicKey: String
    /// cloud-init user data (Nova's user_data), "" for none.
    public var userData: String
    /// Nova's server metadata, a JSON object of strings.
    public var metadata: String
    /// The network its launch asked for (nil: `/defaults/network` at build time).
    public var requestedNetwork: String?
    /// The host port forwarded to its port 22 (user-mode networking only).
    public var sshPort: Int?
    /// Whether it gets a config drive (Nova's config_drive; the default here).
    public var configDrive: Bool

    public init(id: String, name: String, ownerUID: UInt32, project: String, image: ImageInfo, flavor: Flavor, created: Date) {
        self.id = id; self.name = name; ownerUid = Int64(ownerUID); self.project = project
        vmState = .building; taskState = .scheduling; powerState = .nostate; fault = ""; host = nil
        imageId = image.id; imageName = image.name; self.flavor = flavor.name
        vcpus = flavor.vcpus; ramMb = flavor.ramMB; diskGb = flavor.diskGB
        self.created = created.timeIntervalSince1970; domainXml = ""; deleteRequested = false
        groupName = nil; locked = false; lockedBy = nil; availabilityZone = nil
        oldFlavor = nil; oldVcpus = 0; oldRamMb = 0; oldDiskGb = 0; oldHost = nil; oldVmState = nil; resizedAt = nil
        securityGroups = "default"
        keyName = nil; publicKey = ""; userData = ""; metadata = "{}"; requestedNetwork = nil; sshPort = nil
        configDrive = true
    }

    /// `metadata` decoded (empty when it does not decode).
    public var metadataItems: [String: String] {
        // Most instances have none: the tree reads this for every file it serves.
        if metadata.isEmpty || metadata == "{}" { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: Data(metadata.utf8))) ?? [:]
    }

    /// Encodes server metadata for `metadata`.
    public static func encodeMetadata(_ items: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(items)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// The security group names.
    public var securityGroupNames: [String] {
        // Most instances have one group: no split (every listing asks for every instance).
        if !securityGroups.utf8.contains(10) { return securityGroups.isEmpty ? [] : [securityGroups] }
        return securityGroups.split(separator: "\n").map(String.init)
    }

    /// Drops the resize bookkeeping (after a confirm or a revert).
    public mutating func clearResize() {
        oldFlavor = nil; oldVcpus = 0; oldRamMb = 0; oldDiskGb = 0; oldHost = nil; oldVmState = nil; resizedAt = nil
    }
}

/// A row of `server_group` (Nova's instance_groups with its one policy).
public struct ServerGroupRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "server_group"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var name: String
    public var policy: String
    public var ownerUid: Int64
    public var project: String
    public init(name: String, policy: String, ownerUID: UInt32, project: String = "default") {
        self.name = name; self.policy = policy; ownerUid = Int64(ownerUID); self.project = project
    }
}

/// A row of `project` (Keystone's projects): its name and the group id its objects show.
public struct ProjectRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "project"
    /// Project gids are handed out upwards from here, in creation order, and never reused
    /// while the project exists (far above the ids `useradd` gives local groups).
    public static let firstGID: Int64 = 200_000
    public var name: String
    public var gid: Int64
    public var created: Double
    public init(name: String, gid: Int64, created: Double) { self.name = name; self.gid = gid; self.created = created }
}

/// A row of `user_account` (Keystone's users): a local account, by uid.
public struct UserRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "user_account"
    public var name: String
    public var uid: Int64
    /// The project the user's new objects go into ("" until chosen).
    public var project: String
    public init(name: String, uid: UInt32, project: String = "") { self.name = name; self.uid = Int64(uid); self.project = project }
}

/// A row of `membership` (Keystone's role assignments): one role of one user in one project.
public struct MembershipRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "membership"
    public var project: String
    public var user: String
    public var role: String
    public init(project: String, user: String, role: Role) { self.project = project; self.user = user; self.role = role.rawValue }
}

/// A row of `quota` (Nova's/Cinder's per-project limits); a missing row is the default.
public struct QuotaRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "quota"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var project: String
    public var resource: String
    public var hardLimit: Int
    public init(project: String, resource: QuotaResource, hardLimit: Int) {
        self.project = project; self.resource = resource.rawValue; self.hardLimit = hardLimit
    }
}

/// A row of `volume` (Cinder's volumes table with Nova's attachment folded in: one
/// attachment per volume, as Cinder without multiattach).
public struct VolumeRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "volume"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: String
    public var name: String
    public var project: String
    public var ownerUid: Int64
    public var status: VolumeStatus
    public var sizeGb: Int
    /// The Cinder driver: `file` or `lvm`.
    public var backend: String
    /// `image`, `snapshot`, `volume` or "" (blank).
    public var sourceKind: String
    /// What `source` shows after the kind (`NAME`, `VOLUME/SNAP`).
    public var sourceName: String
    /// The snapshot a volume was made from (it cannot go while this volume exists).
    public var sourceSnapshotId: String?
    /// The instance it is attached (or reserved, attaching, detaching) to, and the device.
    public var instanceId: String?
    public var device: String?
    public var attachedAt: Double?
    /// Set at the first attach: `source` is fixed from then on.
    public var everAttached: Bool
    /// The size an extend is growing it to (extending / error_extending).
    public var targetSizeGb: Int?
    /// The status an extend returns to (available or in-use).
    public var previousStatus: VolumeStatus?
    public var fault: String
    public var created: Double

    public init(id: String, name: String, project: String, ownerUID: UInt32, sizeGB: Int, backend: String,
                status: VolumeStatus = .creating, created: Date = Date()) {
        self.id = id; self.name = name; self.project = project; ownerUid = Int64(ownerUID); self.status = status
        sizeGb = sizeGB; self.backend = backend; sourceKind = ""; sourceName = ""; everAttached = false
        fault = ""; self.created = created.timeIntervalSince1970
    }

    /// `source` as a value.
    public var source: VolumeSource {
        switch sourceKind {
        case "image": return .image(sourceName)
        case "volume": return .volume(sourceName)
        case "snapshot":
            let parts = sourceName.split(separator: "/", maxSplits: 1).map(String.init)
            return parts.count == 2 ? .snapshot(volume: parts[0], snapshot: parts[1]) : .blank
        default: return .blank
        }
    }
}

/// A row of `volume_snapshot` (Cinder's snapshots table).
public struct SnapshotRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "volume_snapshot"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: String
    public var volumeId: String
    public var name: String
    public var project: String
    public var ownerUid: Int64
    public var status: SnapshotStatus
    public var sizeGb: Int
    public var fault: String
    public var created: Double
    public init(id: String, volumeId: String, name: String, project: String, ownerUID: UInt32, sizeGB: Int,
                created: Date = Date()) {
        self.id = id; self.volumeId = volumeId; self.name = name; self.project = project; ownerUid = Int64(ownerUID)
        status = .creating; sizeGb = sizeGB; fault = ""; self.created = created.timeIntervalSince1970
    }
}

/// A row of `keypair` (Nova's key_pairs): unique per user.
public struct KeypairRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "keypair"
    public static let databaseColumnDecodingStrategy = DatabaseColumnDecodingStrategy.convertFromSnakeCase
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: String
    public var name: String
    public var ownerUid: Int64
    public var project: String
    public var type: String
    public var bits: Int
    public var fingerprint: String
    public var publicKey: String
    public var created: Double
    public init(id: String, name: String, ownerUid: Int64, project: String, type: String, bits: Int,
                fingerprint: String, publicKey: String, created: Double) {
        self.id = id; self.name = name; self.ownerUid = ownerUid; self.project = project; self.type = type
        self.bits = bits; self.fingerprint = fingerprint; self.publicKey = publicKey; self.created = created
    }
}
