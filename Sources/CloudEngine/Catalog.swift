import CloudCore
import CloudStore
import Foundation

/// The engine's in-memory view of the cloud, rebuilt from the store at start and updated
/// after every committed transaction. FUSE reads are served from here and never touch
/// SQLite (DESIGN: "we keep host state in memory, updated by our own claims").
struct Catalog {
    var instances: [String: InstanceRecord] = [:]          // by name
    var instanceNames: [String: String] = [:]              // id → name
    var ips: [String: [FixedIPRecord]] = [:]               // by instance id
    var images: [String: ImageInfo] = [:]                  // by name
    var imageActivated: [String: Double] = [:]             // by image id
    var flavors: [String: Flavor] = [:]
    var hosts: [String: HostRuntime] = [:]
    var settings: [String: String] = [:]
    var networks: [String: NetworkRecord] = [:]
    var groups: [String: ServerGroupRecord] = [:]
    var floatingIPs: [Int64: FloatingIPRecord] = [:]       // by address
    var securityGroups: [String: SecurityGroupRecord] = [:]
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
    }

    mutating func remove(instanceID: String) {
        if let name = instanceNames.removeValue(forKey: instanceID) { instances[name] = nil }
        ips[instanceID] = nil
    }

    func imageName(id: String) -> String? { images.values.first { $0.id == id }?.name }

    /// Resources held on `host` by our own claims.
    func usage(of host: String) -> (vcpus: Int, ramMB: Int, diskGB: Int, names: [String]) {
        var v = 0, r = 0, d = 0
        var names: [String] = []
        for i in instances.values where i.host == host {
            v += i.vcpus; r += i.ramMb; d += i.diskGb; names.append(i.name)
        }
        // A resize awaiting confirmation still holds its old claim (Nova keeps both).
        for i in instances.values where i.oldHost == host {
            v += i.oldVcpus; r += i.oldRamMb; d += i.oldDiskGb
            if i.host != host { names.append(i.name) }
        }
        return (v, r, d, names.sorted())
    }
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

    var state: HostState {
        if !record.enabled { return .disabled }
        return connection != nil && capacity != nil && !record.uri.isEmpty ? .up : .down
    }
}
