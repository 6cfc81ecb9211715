import CloudCore
import Foundation
import GRDB

/// Nova's instances table: creation, compare-and-set transitions, resource claims, removal.
extension Store {
    public func instances() throws(CloudError) -> [InstanceRecord] {
        try read { db in try InstanceRecord.fetchEvery(db) }
    }

    public func instance(id: String) throws(CloudError) -> InstanceRecord? {
        try read { db in try InstanceRecord.fetch(db, id: id) }
    }

    /// Inserts a new instance in building/scheduling with its build task; `EEXIST` when
    /// the name is taken, `EDQUOT` when the project's instances, cores, ram_mb or the
    /// group's server_group_members quota would be passed (counted in this transaction).
    /// `handOver`: the build task is taken by this transaction for the worker the caller
    /// dispatches next (see `queue`). `events`: /events lines this transaction writes.
    public func insertInstance(_ r: InstanceRecord, handOver: Bool = false, events: [String] = []) throws(CloudError) {
        let quota = QuotaRequest(project: r.project, [.instances: 1, .cores: r.vcpus, .ramMB: r.ramMb,
                                                      .serverGroupMembers: r.groupName == nil ? 0 : 1], group: r.groupName)
        let handed: TaskRecord?
        do {
            // `write`: /events lines queued before go in first, so they keep their order.
            handed = try write { db in
                try Self.checkQuota(db, quota); try r.insertRow(db)
                try Self.insertEvents(db, events)
                return try Self.queue(db, .build, for: r, handOver: handOver, newInstance: true)
            }
        } catch {
            throw error.errno == .exists ? CloudError.exists("instance '\(r.name)' already exists") : error
        }
        if let handed { keepHanded(handed) }
    }

    /// Compare-and-set update: applies `change` only when the row still has one of
    /// `expected` task states (any, when nil) and, unless `evenIfDeleting`, no delete was
    /// requested. `task`, when given, is queued by the same transaction. A task_state
    /// change is recorded as the step of the instance's running task; `quota` is checked
    /// in the same transaction (`EDQUOT`, nothing changed). `handOver`: the queued task is
    /// taken by this transaction for the worker the caller dispatches next (see `queue`).
    /// The /events lines `withEventLines` makes of the new row, if bound for this thread,
    /// are written by the same transaction.
    /// Returns the new row, or nil when the precondition failed or the row is gone.
    public func update(instanceID: String, expecting expected: Set<TaskState>? = nil, evenIfDeleting: Bool = false,
                       queue task: InstanceTask? = nil, handOver: Bool = false, quota: QuotaRequest? = nil,
                       _ change: @Sendable (inout InstanceRecord) -> Void) throws(CloudError) -> InstanceRecord? {
        let ending = taskEndings.withLock { $0[instanceID] }
        let lines = boundEventLines   // read here, on the caller's thread, not in GRDB's closure
        var handed: TaskRecord?
        let written = try write { db -> (InstanceRecord, ended: Bool, othersOpen: Bool)? in
            guard let old = try InstanceRecord.fetch(db, id: instanceID) else { return nil }
            var r = old
            if let expected, !expected.contains(r.taskState) { return nil }
            if r.deleteRequested && !evenIfDeleting { return nil }
            if let quota { try Self.checkQuota(db, quota) }
            let before = r.taskState
            change(&r)
            try r.write(db, over: old)
            if r.taskState != before { try Self.recordStep(db, instanceID: r.id, step: r.taskState.rawValue) }
            if let task { handed = try Self.queue(db, task, for: r, handOver: handOver) }
            if let lines { try Self.insertEvents(db, lines(r)) }
            guard let ending, r.taskState == .none, before != .none else { return (r, false, false) }
            try Self.end(db, ending, with: r)
            return (r, true, try Self.hasOpenTask(db, instanceID: r.id))
        }
        if let written, written.ended {
            taskEndings.withLock { $0[instanceID]?.ended = true; $0[instanceID]?.othersOpen = written.othersOpen }
        }
        if let handed { keepHanded(handed) }
        return written?.0
    }

    /// Applies power-state syncs in one transaction (a sweep over a host's instances):
    /// each sets only the three columns a sync owns, and only while its instance is idle
    /// (task_state `none`, no delete requested), through one cached statement. Returns the
    /// ids whose rows changed.
    public func applyPowerSyncs(_ changes: [PowerSyncChange]) throws(CloudError) -> Set<String> {
        try write { db in
            let statement = try db.cachedStatement(sql: """
                UPDATE instance SET vm_state = ?, power_state = ?, fault = ?
                WHERE id = ? AND task_state = 'none' AND delete_requested = 0
                """)
            var applied = Set<String>()
            for c in changes {
                try statement.execute(arguments: [c.vmState.rawValue, c.powerState.rawValue, c.fault, c.id])
                if db.changesCount > 0 { applied.insert(c.id) }
            }
            return applied
        }
    }

    /// Marks the instance for deletion (task_state deleting) from any state, queues the
    /// delete task and cancels work queued behind it. Returns the row.
    public func requestDelete(instanceID: String) throws(CloudError) -> InstanceRecord? {
        try write { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID) else { return nil }
            var r = old
            r.deleteRequested = true
            r.taskState = .deleting
            try r.write(db, over: old)
            try db.execute(sql: """
                UPDATE task SET state = 'cancelled', result = 'a delete was requested', updated = ?
                WHERE instance_id = ? AND state = 'queued' AND kind != 'delete'
                """, arguments: [Date().timeIntervalSince1970, r.id])
            let open = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM task WHERE instance_id = ? AND kind = 'delete' AND state IN ('queued','running')",
                                        arguments: [r.id]) ?? 0
            if open == 0 { try Self.queue(db, .delete, for: r) }
            return r
        }
    }

    /// Claims resources on `host` for the instance in one transaction (Nova's resource
    /// tracker claim, made atomic): sums what the host's instances already hold, asks
    /// `fits`, and moves the instance from scheduling to networking with the host set.
    /// Returns nil when the host no longer fits or the instance left `scheduling`.
    /// `fits` is also handed the hosts of the instance's server-group members as they are
    /// inside this transaction, so (anti-)affinity holds under concurrent builds. The lines
    /// `withEventLines` bound for this thread are written with the claim.
    public func claim(instanceID: String, host: String, fits: ClaimCheck) throws(CloudError) -> InstanceRecord? {
        let lines = boundEventLines   // see `update`
        return try write { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID),
                  old.taskState == .scheduling, !old.deleteRequested,
                  try Self.hostFits(db, old, host, fits) else { return nil }
            var r = old
            r.host = host
            r.taskState = .networking
            try r.write(db, over: old)
            if let lines { try Self.insertEvents(db, lines(r)) }
            return r
        }
    }

    /// Moves the instance's claim to `host` in one transaction (cold migration and
    /// evacuation): the destination's usage is summed without the instance, `fits` decides,
    /// and the source's share is released by the same update. Requires `expecting`.
    public func moveClaim(instanceID: String, to host: String, expecting: TaskState,
                          fits: ClaimCheck) throws(CloudError) -> InstanceRecord? {
        try write { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID),
                  old.taskState == expecting, !old.deleteRequested,
                  try Self.hostFits(db, old, host, fits) else { return nil }
            var r = old
            r.host = host
            try r.write(db, over: old)
            return r
        }
    }

    /// Nova's resize claim: records the instance's current flavor, resources, host and
    /// vm_state as the `old_*` claim (kept until confirm or revert) and moves the instance
    /// to `host` with the new flavor, in one transaction. On the same host both claims count.
    public func claimResize(instanceID: String, to host: String, flavor: Flavor,
                            fits: ClaimCheck) throws(CloudError) -> InstanceRecord? {
        try write { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID),
                  old.taskState == .resizePrep, !old.deleteRequested, old.oldHost == nil, let current = old.host else { return nil }
            var r = old
            // On its own host the instance's current claim stays held beside the new one.
            guard try Self.hostFits(db, r, host, countingItself: current == host, fits) else { return nil }
            r.oldFlavor = r.flavor; r.oldVcpus = r.vcpus; r.oldRamMb = r.ramMb; r.oldDiskGb = r.diskGb
            r.oldHost = current; r.oldVmState = r.vmState
            r.flavor = flavor.name; r.vcpus = flavor.vcpus; r.ramMb = flavor.ramMB; r.diskGb = flavor.diskGB
            r.host = host
            r.taskState = .resizeMigrating
            try r.write(db, over: old)
            try Self.recordStep(db, instanceID: r.id, step: r.taskState.rawValue)
            return r
        }
    }

    /// Asks `fits` about `host` with what only this transaction can tell: the resources its
    /// other instances hold (`claims`), and the hosts of the instance's server-group members.
    /// `countingItself`: the instance's own current placement counts too (a resize on the
    /// same host holds both claims).
    static func hostFits(_ db: Database, _ r: InstanceRecord, _ host: String, countingItself: Bool = false,
                         _ fits: ClaimCheck) throws -> Bool {
        let used = try claims(db, hosts: [host], excluding: countingItself ? nil : r.id)[host] ?? HostUsage()
        var groupHosts: [String] = []
        if let g = r.groupName {
            groupHosts = try String.fetchAll(db.cachedStatement(sql: "SELECT host FROM instance WHERE group_name = ? AND host IS NOT NULL AND id != ?"),
                                             arguments: [g, r.id])
        }
        return fits(used, groupHosts)
    }

    /// Removes the instance row; its fixed IPs go with it (ON DELETE CASCADE).
    public func deleteInstance(id: String) throws(CloudError) {
        let freed = try write { db in
            let ips = try FixedIPRecord.fetchAll(db.cachedStatement(sql: "SELECT * FROM fixed_ip WHERE instance_id = ?"), arguments: [id])
            _ = try InstanceRecord.deleteOne(db, key: id)
            return ips
        }
        lowerHints(freed)
    }
}

/// What a host's claims add up to (Nova's resource tracker usage of a compute node).
public struct HostUsage: Sendable, Equatable {
    public var vcpus = 0
    public var ramMB = 0
    public var diskGB = 0
    public init(vcpus: Int = 0, ramMB: Int = 0, diskGB: Int = 0) { self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB }
}

/// The question a claim transaction asks: does the request fit next to `used`, with the
/// instance's server-group members on `groupHosts`?
public typealias ClaimCheck = (_ used: HostUsage, _ groupHosts: [String]) -> Bool

/// Usage sums: the one place resources held on hosts are added up, kept as counters by
/// triggers on `instance` (Migrations+UsageCounters.swift). Every claim transaction asks
/// it, and the engine's in-memory view is refreshed from it.
extension Store {
    /// What each host's claims hold: every instance placed there, plus the claims resizes
    /// awaiting confirmation keep on their old host (Nova keeps both until confirm).
    /// `excluding` leaves out one instance's current placement (not its old claim), for a
    /// claim that moves or re-sizes that instance. `hosts` nil: every host.
    static func claims(_ db: Database, hosts: [String]?, excluding: String? = nil) throws -> [String: HostUsage] {
        // The trigger-kept counters (`host_usage`, migration v17): one row a host.
        var filter = ""
        var args: [(any DatabaseValueConvertible)?] = []
        if let hosts {
            filter = " AND host IN (" + hosts.map { _ in "?" }.joined(separator: ",") + ")"
            args = hosts.map { $0 as (any DatabaseValueConvertible)? }
        }
        var out: [String: (claims: Int, usage: HostUsage)] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT host, claims, vcpus, ram_mb, disk_gb FROM host_usage WHERE claims > 0" + filter),
                                    arguments: StatementArguments(args)) {
            out[row[0]] = (row[1], HostUsage(vcpus: row[2], ramMB: row[3], diskGB: row[4]))
        }
        if let excluding,
           let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT host, vcpus, ram_mb, disk_gb FROM instance WHERE id = ? AND host IS NOT NULL"),
                                      arguments: [excluding]),
           let host: String = row[0], let held = out[host] {
            let left = HostUsage(vcpus: held.usage.vcpus - row[1], ramMB: held.usage.ramMB - row[2], diskGB: held.usage.diskGB - row[3])
            out[host] = held.claims > 1 ? (held.claims - 1, left) : nil
        }
        return out.mapValues(\.usage)
    }

    /// What the claims on `hosts` hold now (hosts holding nothing are absent).
    public func usage(of hosts: [String]) throws(CloudError) -> [String: HostUsage] {
        try read { db in try Self.claims(db, hosts: hosts) }
    }

    /// What the claims on every host hold now.
    public func usageByHost() throws(CloudError) -> [String: HostUsage] {
        try read { db in try Self.claims(db, hosts: nil) }
    }
}

/// What a power-state sync writes for one instance (Nova's `_sync_instance_power_state`).
public struct PowerSyncChange: Sendable {
    public var id: String
    public var vmState: VmState
    public var powerState: PowerState
    public var fault: String
    public init(id: String, vmState: VmState, powerState: PowerState, fault: String) {
        self.id = id; self.vmState = vmState; self.powerState = powerState; self.fault = fault
    }
}
