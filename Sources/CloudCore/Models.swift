import Foundation

/// Who asked: the credentials FUSE reports for a request (`fuse_req_ctx`).
public struct Caller: Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    public init(uid: UInt32, gid: UInt32, pid: Int32) { self.uid = uid; self.gid = gid; self.pid = pid }
    /// The daemon itself (root, pid of this process).
    public static let system = Caller(uid: 0, gid: 0, pid: 0)
}

/// A Nova flavor: the size of an instance.
public struct Flavor: Sendable, Equatable, Codable {
    public var name: String
    public var vcpus: Int
    public var ramMB: Int
    public var diskGB: Int
    public var ownerUID: UInt32
    public init(name: String, vcpus: Int, ramMB: Int, diskGB: Int, ownerUID: UInt32 = 0) {
        self.name = name; self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB; self.ownerUID = ownerUID
    }
    /// Nova's classic sizes plus `m1.nano` for tiny test guests.
    public static let seed: [Flavor] = [
        Flavor(name: "m1.nano", vcpus: 1, ramMB: 128, diskGB: 1),
        Flavor(name: "m1.tiny", vcpus: 1, ramMB: 512, diskGB: 1),
        Flavor(name: "m1.small", vcpus: 1, ramMB: 2048, diskGB: 20),
        Flavor(name: "m1.medium", vcpus: 2, ramMB: 4096, diskGB: 40),
        Flavor(name: "m1.large", vcpus: 4, ramMB: 8192, diskGB: 80),
        Flavor(name: "m1.xlarge", vcpus: 8, ramMB: 16384, diskGB: 160),
    ]
}

/// Glance's image status: queued (row exists, no bytes), saving (bytes arriving),
/// active (usable), killed (upload failed; never shown for long, the row is removed).
public enum ImageStatus: String, Sendable, Codable { case queued, saving, active, killed }

/// Glance's disk_format, as detected from the bytes (never trusted from the name).
/// `aki`/`ari` are Glance's names for a Linux kernel and an initramfs.
public enum DiskFormat: String, Sendable, Codable {
    case qcow2, raw, iso, aki, ari, unknown
}

/// A Glance image as the tree shows it.
public struct ImageInfo: Sendable, Equatable {
    public var name: String
    public var id: String
    public var status: ImageStatus
    public var format: DiskFormat
    public var size: Int64
    public var virtualSize: Int64
    public var checksum: String
    public var created: Date
    public var minRamMB: Int
    public var minDiskGB: Int
    public var properties: [String: String]
    public var ownerUID: UInt32
    /// Where the bytes live in the image store (QEMU reads them there, never through FUSE).
    public var path: String
    /// The project that owns it (Glance's `owner`).
    public var project: String
    public var visibility: ImageVisibility
    /// The projects a `shared` image is shared with (Glance's image members).
    public var sharedWith: [String]
    public init(name: String, id: String, status: ImageStatus, format: DiskFormat, size: Int64,
                virtualSize: Int64, checksum: String, created: Date, minRamMB: Int, minDiskGB: Int,
                properties: [String: String], ownerUID: UInt32, path: String,
                project: String = "default", visibility: ImageVisibility = .public, sharedWith: [String] = []) {
        self.name = name; self.id = id; self.status = status; self.format = format; self.size = size
        self.virtualSize = virtualSize; self.checksum = checksum; self.created = created
        self.minRamMB = minRamMB; self.minDiskGB = minDiskGB; self.properties = properties
        self.ownerUID = ownerUID; self.path = path
        self.project = project; self.visibility = visibility; self.sharedWith = sharedWith
    }
}

/// Glance's image `visibility`: who besides the owning project sees an image.
public enum ImageVisibility: String, Sendable, Codable, CaseIterable {
    /// Every user of the cloud.
    case `public`
    /// The owning project only.
    case `private`
    /// The owning project and the projects in the image's `shared_with` (its members).
    case shared
}

/// Host state as the scheduler and `/hosts` see it (Nova's compute node record).
public enum HostState: String, Sendable, Codable { case up, down, disabled }

/// A compute host: a libvirt connection and its capacity and our claims on it.
public struct HostInfo: Sendable, Equatable {
    public var name: String
    public var uri: String
    public var state: HostState
    public var hypervisorType: String
    public var vcpus: Int
    public var ramMB: Int
    public var diskGB: Int
    public var vcpusUsed: Int
    public var ramMBUsed: Int
    public var diskGBUsed: Int
    public var instances: [String]
    /// Nova's availability zone of the host (`nova` unless set).
    public var availabilityZone: String
    /// Where its instances' disks live: `shared` (it sees the controller's files) or
    /// `pool NAME` (a storage pool on a remote host).
    public var storage = "shared"
    /// The images cached in its pool (Nova's image cache on a compute node), by name.
    public var cachedImages: [String] = []
    /// Its agent's address ("" when it has none).
    public var agent = ""
    /// Why it is down (the connection's or the agent's failure); "" when up.
    public var fault = ""
    /// Its agent's VXLAN tunnel address and the networks it carries, as last reported.
    public var tunnelIP = ""
    public var segments: [String] = []
    public init(name: String, uri: String, state: HostState, hypervisorType: String, vcpus: Int, ramMB: Int,
                diskGB: Int, vcpusUsed: Int, ramMBUsed: Int, diskGBUsed: Int, instances: [String],
                availabilityZone: String = "nova") {
        self.availabilityZone = availabilityZone
        self.name = name; self.uri = uri; self.state = state; self.hypervisorType = hypervisorType
        self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB
        self.vcpusUsed = vcpusUsed; self.ramMBUsed = ramMBUsed; self.diskGBUsed = diskGBUsed
        self.instances = instances
    }
}

/// A Nova instance as the tree shows it.
public struct InstanceInfo: Sendable, Equatable {
    public var name: String
    public var id: String
    public var ownerUID: UInt32
    public var project: String
    public var vmState: VmState
    public var taskState: TaskState
    public var powerState: PowerState
    public var fault: String
    public var host: String
    public var ips: [String]
    public var macs: [String]
    public var image: String
    public var flavor: String
    public var created: Date
    public var domainXML: String
    public var consolePath: String
    /// The server group it belongs to ("" for none).
    public var group: String
    /// The availability zone it was asked to run in ("" for any).
    public var availabilityZone: String
    /// Its security groups (Nova's security_groups), `default` unless changed.
    public var securityGroups: [String] = ["default"]
    /// Attached volumes (Nova's block device mappings): device (`vdb` ...) → volume name.
    public var volumes: [String: String] = [:]
    /// The key pair it was launched with ("" for none).
    public var keyName = ""
    /// cloud-init user data ("" for none).
    public var userData = ""
    /// Nova's server metadata.
    public var metadata: [String: String] = [:]
    /// The command that logs in (`instances/NAME/ssh`), "" while it has no address.
    public var ssh = ""
    /// Nova's lock: "" when unlocked, else who locked it (`owner` or `admin`, Nova's
    /// `locked_by`).
    public var lockedBy = ""

    public var status: InstanceStatus { InstanceStatus.derive(vm: vmState, task: taskState) }
    /// Stable means no task is running (what `wait` waits for).
    public var isStable: Bool { taskState == .none }

    public init(name: String, id: String, ownerUID: UInt32, project: String, vmState: VmState,
                taskState: TaskState, powerState: PowerState, fault: String, host: String, ips: [String],
                macs: [String], image: String, flavor: String, created: Date, domainXML: String,
                consolePath: String, group: String = "", availabilityZone: String = "") {
        self.group = group; self.availabilityZone = availabilityZone
        self.name = name; self.id = id; self.ownerUID = ownerUID; self.project = project
        self.vmState = vmState; self.taskState = taskState; self.powerState = powerState
        self.fault = fault; self.host = host; self.ips = ips; self.macs = macs; self.image = image
        self.flavor = flavor; self.created = created; self.domainXML = domainXML; self.consolePath = consolePath
    }
}


/// A Nova server group: a placement policy and the instances that follow it.
public struct GroupInfo: Sendable, Equatable {
    public var name: String
    /// `affinity`, `anti-affinity`, `soft-affinity` or `soft-anti-affinity`.
    public var policy: String
    public var members: [String]
    public var ownerUID: UInt32
    public var project: String
    public init(name: String, policy: String, members: [String], ownerUID: UInt32, project: String = "default") {
        self.name = name; self.policy = policy; self.members = members; self.ownerUID = ownerUID; self.project = project
    }
}

/// Timestamps as the tree prints them: ISO 8601, UTC, milliseconds.
public enum Timestamp {
    public static func string(_ date: Date) -> String {
        let totalMs = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var t = time_t(totalMs / 1000)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        let ms = Int(totalMs % 1000)
        // Digits by hand: String(format:) costs ~8 µs a call, and every event line has one.
        var bytes = Array("0000-00-00T00:00:00.000Z".utf8)
        func put(_ value: Int, at end: Int, width: Int) {
            var v = value
            for i in stride(from: end, to: end - width, by: -1) { bytes[i] = UInt8(48 + v % 10); v /= 10 }
        }
        put(Int(tmv.tm_year) + 1900, at: 3, width: 4)
        put(Int(tmv.tm_mon) + 1, at: 6, width: 2)
        put(Int(tmv.tm_mday), at: 9, width: 2)
        put(Int(tmv.tm_hour), at: 12, width: 2)
        put(Int(tmv.tm_min), at: 15, width: 2)
        put(Int(tmv.tm_sec), at: 18, width: 2)
        put(max(0, min(999, ms)), at: 22, width: 3)
        return String(decoding: bytes, as: UTF8.self)
    }
}
