import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// The engine's in-memory view of the cloud, rebuilt from the store at start and updated
/// after every committed transaction. FUSE reads are served from here and never touch
/// SQLite (DESIGN: "we keep host state in memory, updated by our own claims"). What hosts'
/// claims add up to is not computed here: it is read back from the store's usage sums
/// (`Store.usage(of:)`) after each transaction that changes a claim.
struct Catalog {
    var instances: [String: InstanceRecord] = [:]          // by name
    var instanceNames: [String: String] = [:]              // id → name
    /// Per instance id, how many times its row was mirrored here (`put`): whoever read a
    /// record with its revision knows, finding the same revision under the mutation lock,
    /// that no commit touched the instance since — not even an action that ran to its end.
    private(set) var revisions: [String: UInt64] = [:]
    /// Fixed IPs by instance id; change through `setIPs` so `ipsHeld` stays true.
    private(set) var ips: [String: [FixedIPRecord]] = [:]
    /// How many fixed IPs each network holds (by network name): lets a build's
    /// "any address left?" check skip counting a network's addresses one by one.
    private(set) var ipsHeld: [String: Int] = [:]
    var images: [String: ImageInfo] = [:]                  // by name
    var imageActivated: [String: Double] = [:]             // by image id
    var flavors: [String: Flavor] = [:]
    var hosts: [String: HostRuntime] = [:]
    var hostImages: [String: [String: String]] = [:]      // host → image id → path on the host
    var migrationProgress: [String: [String]] = [:]       // instance id → `migration` lines
    var migrationAborts: Set<String> = []                 // instance ids whose live migration is to stop
    var settings: [SettingKey: String] = [:]
    /// What each host's claims hold, as the store's usage sums last said.
    var usage: [String: HostUsage] = [:]
    /// A usage read failed: reload it all before the next decision.
    var usageStale = false
    var networks: [String: NetworkRecord] = [:]
    var groups: [String: ServerGroupRecord] = [:]
    var floatingIPs: [Int64: FloatingIPRecord] = [:]       // by address
    var securityGroups: [String: SecurityGroupRecord] = [:]
    var volumes = VolumeCatalog()
    /// The host's networks are managed (fixed IPs are reachable on the bridges).
    var managedNetwork = false
    /// Nova's key pairs, by id (names are unique per owner only).
    var keypairs: [String: KeypairRecord] = [:]
    /// Instances whose task worker is running: at most one worker per instance.
    var busy: Set<String> = []
    /// Bumped by every `dispatch`, so a worker that found the queue empty knows whether a
    /// task arrived before it let go of the instance.
    var kicks: [String: UInt64] = [:]
    /// Orphan domains already reported (host/uuid), so the sweep reports each once.
    var reportedOrphans: Set<String> = []
    var waiters: [String: [UInt64: @Sendable (InstanceInfo?) -> Void]] = [:]
    var nextWaiter: UInt64 = 0

    mutating func put(_ r: InstanceRecord) {
        if let old = instanceNames[r.id], old != r.name { instances[old] = nil }
        instances[r.name] = r
        instanceNames[r.id] = r.name
        revisions[r.id, default: 0] &+= 1
    }

    /// The instance whose id is `id`.
    func instance(id: String) -> InstanceRecord? { instanceNames[id].flatMap { instances[$0] } }

    mutating func remove(instanceID: String) {
        if let name = instanceNames.removeValue(forKey: instanceID) { instances[name] = nil }
        revisions[instanceID] = nil
        ips[instanceID] = nil
    }

    func imageName(id: String) -> String? { image(id: id)?.name }

    /// The instances holding a claim on `host` (placed there, or keeping a resize's old
    /// claim there), by name.
    func instanceNames(on host: String) -> [String] {
        instances.values.filter { $0.host == host || $0.oldHost == host }.map(\.name).sorted()
    }

    /// What an instance's claims are, for telling whether a transaction changed them.
    struct Claim: Equatable {
        let host: String?
        let vcpus, ramMB, diskGB: Int
        let oldHost: String?
        let oldVcpus, oldRamMB, oldDiskGB: Int
    }

    static func claim(of r: InstanceRecord?) -> Claim? {
        r.map { Claim(host: $0.host, vcpus: $0.vcpus, ramMB: $0.ramMb, diskGB: $0.diskGb,
                      oldHost: $0.oldHost, oldVcpus: $0.oldVcpus, oldRamMB: $0.oldRamMb, oldDiskGB: $0.oldDiskGb) }
    }

    /// The hosts an instance holds claims on.
    static func claimedHosts(_ r: InstanceRecord?) -> Set<String> {
        Set([r?.host, r?.oldHost].compactMap { $0 })
    }

    /// The tree's view of an instance record.
    func info(_ r: InstanceRecord, consolePath: String) -> InstanceInfo {
        let ips = (self.ips[r.id] ?? []).sorted { $0.address < $1.address }
        var info = InstanceInfo(name: r.name, id: r.id, ownerUID: UInt32(r.ownerUid), project: r.project,
                                vmState: r.vmState, taskState: r.taskState, powerState: r.powerState, fault: r.fault,
                                host: r.host ?? "", ips: ips.map { IPv4Address(UInt32($0.address)).description },
                                macs: ips.map(\.mac), image: r.imageName, flavor: r.flavor,
                                created: Date(timeIntervalSince1970: r.created), domainXML: r.domainXml,
                                consolePath: consolePath, group: r.groupName ?? "", availabilityZone: r.availabilityZone ?? "")
        info.securityGroups = r.securityGroupNames
        info.volumes = volumes.attachments(of: r.id)
        info.keyName = r.keyName ?? ""
        info.lockedBy = r.locked ? (r.lockedBy ?? "owner") : ""
        info.userData = r.userData
        info.metadata = r.metadataItems
        info.ssh = sshCommand(r, address: managedNetwork ? info.ips.first : nil)
        return info
    }

    /// `instances/NAME/ssh`: the command that logs in, through the forwarded loopback port
    /// in user-mode networking, to the fixed IP on a managed network. The login is the
    /// image's `os_admin_user` property (Glance's), else its `os_distro`, else the
    /// distribution its name starts with (the user cloud images of it create), else root.
    func sshCommand(_ r: InstanceRecord, address: String?) -> String {
        guard r.sshPort != nil || address != nil else { return "" }
        let user = image(id: r.imageId).map(Self.loginUser) ?? "root"
        if let port = r.sshPort { return "ssh -p \(port) \(user)@127.0.0.1" }
        return "ssh \(user)@\(address ?? "")"
    }

    static let distroUsers = ["debian": "debian", "ubuntu": "ubuntu", "fedora": "fedora", "centos": "centos",
                              "rocky": "rocky", "almalinux": "almalinux", "alpine": "alpine", "arch": "arch",
                              "opensuse": "opensuse", "cirros": "cirros"]

    static func loginUser(_ image: ImageInfo) -> String {
        if let u = image.properties["os_admin_user"], !u.isEmpty { return u }
        if let d = image.properties["os_distro"], let u = distroUsers[d.lowercased()] { return u }
        let lower = image.name.lowercased()
        return distroUsers.first { lower.hasPrefix($0.key) }?.value ?? "root"
    }

    /// The image a record names, by id.
    func image(id: String) -> ImageInfo? { images.values.first { $0.id == id } }
}

/// A registered compute host and its live connection (Nova's compute service + node).
struct HostRuntime: Sendable {
    var record: HostRecord
    var connection: (any ComputeConnection)?
    var capacity: HostCapacity?
    var lastError: String = ""
    /// Health-check bookkeeping: consecutive failed reconnects and when to try next.
    var failures = 0
    var nextRetry = Date.distantPast

    /// Whether it is another machine (`HostLocality.isRemote` of its URI): its disks live
    /// in its own storage pool, it sees none of the controller's files.
    var isRemote: Bool { HostLocality.isRemote(record.uri) }

    /// Its agent's last report; nil while it has none or the agent does not answer.
    var agentStatus: AgentStatus?
    /// Why its agent is unreachable ("" when it answers or there is none).
    var agentError: String = ""

    /// A host with an agent is down while the agent does not answer: its network cannot
    /// be set up there.
    var state: HostState {
        if !record.enabled { return .disabled }
        if !record.agent.isEmpty, agentStatus == nil { return .down }
        return connection != nil && capacity != nil && !record.uri.isEmpty ? .up : .down
    }
}

extension Catalog {
    /// Replaces the fixed IPs `id` holds (nil: none), keeping `ipsHeld` in step.
    mutating func setIPs(_ new: [FixedIPRecord]?, of id: String) {
        for ip in ips[id] ?? [] { ipsHeld[ip.network, default: 0] -= 1 }
        for ip in new ?? [] { ipsHeld[ip.network, default: 0] += 1 }
        ips[id] = new
    }
}
