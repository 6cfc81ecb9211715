import CloudCore
import Foundation
import GRDB

/// nova-network's networks and fixed_ips tables: the networks, and fixed IP allocation as
/// one transaction (the PRIMARY KEY (network, address) and UNIQUE(mac) make a double
/// allocation impossible even under concurrency).
extension Store {
    public func networks() throws(CloudError) -> [NetworkRecord] {
        try read { db in try NetworkRecord.fetchAll(db) }
    }

    /// Creates the network if no network of that name exists.
    public func ensureNetwork(_ n: NetworkRecord) throws(CloudError) {
        try write { db in try n.insert(db, onConflict: .ignore) }
    }

    /// Inserts a network; `EEXIST` when the name is taken.
    public func insertNetwork(_ n: NetworkRecord) throws(CloudError) {
        do { try db.write { db in try n.insert(db) } } catch {
            let e = Self.translate(error)
            throw e.errno == .exists ? CloudError.exists("network '\(n.name)' already exists") : e
        }
    }

    /// Saves a network's fields. Forgets the allocation hint (the pool may have moved).
    public func updateNetwork(_ n: NetworkRecord) throws(CloudError) {
        try write { db in try n.update(db) }
        fixedIPHints.withLock { $0[n.name] = nil }
    }

    /// Removes a network; `EBUSY` while fixed or floating IPs of it are held.
    public func deleteNetwork(_ name: String) throws(CloudError) {
        try write { db in
            let held = try Int.fetchOne(db, sql: "SELECT (SELECT COUNT(*) FROM fixed_ip WHERE network = ?) + (SELECT COUNT(*) FROM floating_ip WHERE pool = ?)",
                                        arguments: [name, name]) ?? 0
            guard held == 0 else { throw CloudError.busy("network '\(name)' has \(held) address(es) in use") }
            _ = try NetworkRecord.deleteOne(db, key: name)
        }
        fixedIPHints.withLock { $0[name] = nil }
    }

    /// All fixed-IP allocations.
    public func fixedIPs() throws(CloudError) -> [FixedIPRecord] {
        try read { db in try FixedIPRecord.fetchAll(db) }
    }

    /// Allocates the lowest free address of `range` (skipping `reserved`) in `network` and a
    /// unique MAC to the instance, in one transaction. Idempotent: an instance that already
    /// holds an address on this network gets it back. `ENOSPC` "No more fixed IPs" when exhausted.
    public func allocateFixedIP(instanceID: String, network: String, range: ClosedRange<UInt32>,
                                reserved: Set<UInt32> = [], mac: () -> String) throws(CloudError) -> FixedIPRecord {
        try writeResettingHint(network) { db in
            try allocate(db, instanceID: instanceID, network: network, range: range, reserved: reserved, mac: mac)
        }
    }

    /// The build's network step (nova-network's allocate_for_instance) as one transaction:
    /// allocates the fixed IP and MAC and moves the instance from `networking` to `spawning`.
    /// Returns nil (allocating nothing) when the instance left `networking` or is being
    /// deleted. `ENOSPC` "No more fixed IPs" when the network is full. `events`: the
    /// /events lines of the allocation, written by the same transaction.
    public func allocateFixedIPForBuild(instanceID: String, network: String, range: ClosedRange<UInt32>,
                                        reserved: Set<UInt32>, mac: () -> String,
                                        events: (FixedIPRecord) -> [String] = { _ in [] })
        throws(CloudError) -> (instance: InstanceRecord, ip: FixedIPRecord)? {
        try writeResettingHint(network) { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID), old.taskState == .networking,
                  !old.deleteRequested else { return nil }
            var r = old
            let ip = try allocate(db, instanceID: instanceID, network: network, range: range, reserved: reserved, mac: mac)
            r.taskState = .spawning
            try r.write(db, over: old)
            try Self.recordStep(db, instanceID: r.id, step: r.taskState.rawValue)
            try Self.insertEvents(db, events(ip))
            return (r, ip)
        }
    }

    /// VlanManager's build step in one transaction: the fixed IP comes from the vlan network
    /// associated with `project` (the first of `candidates` it owns; they are listed lowest
    /// vlan first); when the project owns none, the first unassigned candidate is associated
    /// with it first (nova-network's `project_get_networks(associate=True)`), so a rolled
    /// back allocation never leaves an association behind. Returns nil when the instance
    /// left `networking` or is being deleted; `associated` names a network that was just
    /// associated. `ENOSPC` "No more networks available for project P" when no candidate
    /// is free, "No more fixed IPs" when the project's network is full. `events`: as for
    /// `allocateFixedIPForBuild`, also told the network just associated.
    public func allocateProjectFixedIPForBuild(instanceID: String, project: String, candidates: [FixedIPChoice],
                                               mac: () -> String,
                                               events: (FixedIPRecord, _ associated: String?) -> [String] = { _, _ in [] })
        throws(CloudError) -> (instance: InstanceRecord, ip: FixedIPRecord, associated: String?)? {
        do throws(CloudError) {
            return try write { db in
                guard let old = try InstanceRecord.fetch(db, id: instanceID), old.taskState == .networking,
                      !old.deleteRequested else { return nil }
                var r = old
                let owned = Set(try String.fetchAll(db, sql: "SELECT name FROM network WHERE project = ?", arguments: [project]))
                var chosen = candidates.first { owned.contains($0.network) }
                var associated: String?
                if chosen == nil {
                    for c in candidates {
                        try db.execute(sql: "UPDATE network SET project = ? WHERE name = ? AND project IS NULL",
                                       arguments: [project, c.network])
                        if db.changesCount == 1 { chosen = c; associated = c.network; break }
                    }
                }
                guard let c = chosen else { throw CloudError.noSpace("No more networks available for project \(project)") }
                let ip = try allocate(db, instanceID: instanceID, network: c.network, range: c.range, reserved: c.reserved, mac: mac)
                r.taskState = .spawning
                try r.write(db, over: old)
                try Self.recordStep(db, instanceID: r.id, step: r.taskState.rawValue)
                try Self.insertEvents(db, events(ip, associated))
                return (r, ip, associated)
            }
        } catch {
            fixedIPHints.withLock { h in for c in candidates { h[c.network] = nil } }
            throw error
        }
    }

    /// Releases every address the instance holds.
    public func releaseFixedIPs(instanceID: String) throws(CloudError) {
        let freed = try write { db in
            let rows = try FixedIPRecord.fetchAll(db.cachedStatement(sql: "SELECT * FROM fixed_ip WHERE instance_id = ?"), arguments: [instanceID])
            try db.execute(sql: "DELETE FROM fixed_ip WHERE instance_id = ?", arguments: [instanceID])
            return rows
        }
        lowerHints(freed)
    }

    /// Number of free addresses in `range` of `network` (reserved addresses not counted).
    public func freeAddressCount(network: String, range: ClosedRange<UInt32>, reserved: Set<UInt32> = []) throws(CloudError) -> Int {
        let used = try read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fixed_ip WHERE network = ? AND address BETWEEN ? AND ?",
                             arguments: [network, Int64(range.lowerBound), Int64(range.upperBound)]) ?? 0
        }
        return range.count - reserved.count { range.contains($0) } - used
    }

    // MARK: allocation

    /// Runs `body` in a write transaction; a failure forgets `network`'s hint (it may have
    /// been advanced by a transaction that was rolled back).
    private func writeResettingHint<T>(_ network: String, _ body: (Database) throws -> T) throws(CloudError) -> T {
        do { return try write(body) } catch {
            fixedIPHints.withLock { $0[network] = nil }
            throw error
        }
    }

    /// The allocation inside a transaction. The hint is the lowest address that may be
    /// free (everything below it in the range is taken or reserved), kept in memory so
    /// filling a /16 costs O(1) index probes per address instead of a walk over the used ones.
    private func allocate(_ db: Database, instanceID: String, network: String, range: ClosedRange<UInt32>,
                          reserved: Set<UInt32>, mac: () -> String) throws -> FixedIPRecord {
        if let held = try FixedIPRecord.fetchOne(db.cachedStatement(sql: "SELECT * FROM fixed_ip WHERE instance_id = ? AND network = ?"),
                                                 arguments: [instanceID, network]) {
            return held
        }
        let lo = Int64(range.lowerBound), hi = Int64(range.upperBound)
        var start = max(lo, fixedIPHints.withLock { $0[network] } ?? lo)
        var candidate: Int64?
        while start <= hi {
            guard let c = try Self.lowestFree(db, network: network, from: start, to: hi) else { break }
            if reserved.contains(UInt32(c)) { start = c + 1; continue }
            candidate = c
            break
        }
        guard let address = candidate else {
            fixedIPHints.withLock { $0[network] = hi + 1 }
            throw CloudError.noSpace("No more fixed IPs in network \(network): all \(range.count - reserved.count { range.contains($0) }) addresses are in use")
        }
        for _ in 0..<16 {
            let rec = FixedIPRecord(network: network, address: address, mac: mac(), instanceId: instanceID)
            if try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM fixed_ip WHERE mac = ?"), arguments: [rec.mac]) == nil {
                try rec.insert(db)
                fixedIPHints.withLock { $0[network] = address + 1 }
                return rec
            }
        }
        throw CloudError.io("could not find a unique MAC address")
    }

    /// The lowest address in `from...to` no row of `network` holds: `from` itself if free,
    /// else the first used address whose successor is free (an index walk).
    private static func lowestFree(_ db: Database, network: String, from: Int64, to: Int64) throws -> Int64? {
        let taken = try Bool.fetchOne(db.cachedStatement(sql: "SELECT EXISTS(SELECT 1 FROM fixed_ip WHERE network = ? AND address = ?)"),
                                      arguments: [network, from]) ?? false
        if !taken { return from }
        let next = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT a.address + 1 FROM fixed_ip a
            WHERE a.network = ? AND a.address >= ? AND a.address < ?
              AND NOT EXISTS (SELECT 1 FROM fixed_ip b WHERE b.network = a.network AND b.address = a.address + 1)
            ORDER BY a.address LIMIT 1
            """), arguments: [network, from, to])
        return next.flatMap { $0 <= to ? $0 : nil }
    }

    /// Released addresses lower their network's hint.
    func lowerHints(_ freed: [FixedIPRecord]) {
        guard !freed.isEmpty else { return }
        fixedIPHints.withLock { h in
            for f in freed { if let cur = h[f.network] { h[f.network] = min(cur, f.address) } }
        }
    }
}

/// A network a build may take its fixed IP from: its allocatable range and the addresses
/// inside that range that are never handed out.
public struct FixedIPChoice: Sendable, Equatable {
    public var network: String
    public var range: ClosedRange<UInt32>
    public var reserved: Set<UInt32>
    public init(network: String, range: ClosedRange<UInt32>, reserved: Set<UInt32>) {
        self.network = network; self.range = range; self.reserved = reserved
    }
}
