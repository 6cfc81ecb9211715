import CloudCore
import Foundation
import GRDB

/// Compute hosts and networks: the registered libvirt URIs and the address pools.
extension Store {
    public func hosts() throws(CloudError) -> [HostRecord] {
        try read { db in try HostRecord.order(Column("created")).fetchAll(db) }
    }

    /// Registers a host, or returns the existing row with this URI.
    public func registerHost(_ h: HostRecord) throws(CloudError) -> HostRecord {
        try write { db in
            if let existing = try HostRecord.filter(Column("uri") == h.uri).fetchOne(db) { return existing }
            try h.insert(db)
            return h
        }
    }

    /// Saves a host's enabled flag and availability zone.
    public func updateHost(_ h: HostRecord) throws(CloudError) { try write { db in try h.update(db) } }

    public func deleteHost(_ name: String) throws(CloudError) {
        try write { db in _ = try HostRecord.deleteOne(db, key: name) }
    }

    public func networks() throws(CloudError) -> [NetworkRecord] {
        try read { db in try NetworkRecord.fetchAll(db) }
    }

    /// Creates the network if no network of that name exists.
    public func ensureNetwork(_ n: NetworkRecord) throws(CloudError) {
        try write { db in try n.insert(db, onConflict: .ignore) }
    }

    /// All fixed-IP allocations.
    public func fixedIPs() throws(CloudError) -> [FixedIPRecord] {
        try read { db in try FixedIPRecord.fetchAll(db) }
    }

    /// Allocates the lowest free address of `range` in `network` and a unique MAC to the
    /// instance, in one transaction (the PRIMARY KEY and UNIQUE(mac) make a double allocation
    /// impossible even under concurrency). Idempotent: an instance that already holds an
    /// address on this network gets it back. `ENOSPC` "No more fixed IPs" when exhausted.
    public func allocateFixedIP(instanceID: String, network: String, range: ClosedRange<UInt32>,
                                mac: () -> String) throws(CloudError) -> FixedIPRecord {
        try write { db in
            if let held = try FixedIPRecord.filter(Column("instance_id") == instanceID && Column("network") == network).fetchOne(db) {
                return held
            }
            let lo = Int64(range.lowerBound), hi = Int64(range.upperBound)
            // Lowest free address: the range start if free, else the first used address
            // whose successor is free (an index walk, not a scan of the whole pool).
            var candidate: Int64? = nil
            let startTaken = try Bool.fetchOne(db, sql: "SELECT EXISTS(SELECT 1 FROM fixed_ip WHERE network = ? AND address = ?)",
                                               arguments: [network, lo]) ?? false
            if !startTaken { candidate = lo } else {
                candidate = try Int64.fetchOne(db, sql: """
                    SELECT a.address + 1 FROM fixed_ip a
                    WHERE a.network = ? AND a.address >= ? AND a.address < ?
                      AND NOT EXISTS (SELECT 1 FROM fixed_ip b WHERE b.network = a.network AND b.address = a.address + 1)
                    ORDER BY a.address LIMIT 1
                    """, arguments: [network, lo, hi])
            }
            guard let address = candidate, address <= hi else {
                throw CloudError.noSpace("No more fixed IPs in network \(network)")
            }
            for _ in 0..<16 {
                let rec = FixedIPRecord(network: network, address: address, mac: mac(), instanceId: instanceID)
                if try FixedIPRecord.filter(Column("mac") == rec.mac).fetchCount(db) == 0 {
                    try rec.insert(db)
                    return rec
                }
            }
            throw CloudError.io("could not find a unique MAC address")
        }
    }

    /// Releases every address the instance holds.
    public func releaseFixedIPs(instanceID: String) throws(CloudError) {
        try write { db in try db.execute(sql: "DELETE FROM fixed_ip WHERE instance_id = ?", arguments: [instanceID]) }
    }

    /// Number of free addresses in `range` of `network`.
    public func freeAddressCount(network: String, range: ClosedRange<UInt32>) throws(CloudError) -> Int {
        let used = try read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM fixed_ip WHERE network = ? AND address BETWEEN ? AND ?",
                             arguments: [network, Int64(range.lowerBound), Int64(range.upperBound)]) ?? 0
        }
        return Int(range.upperBound - range.lowerBound + 1) - used
    }
}

/// Nova's server groups.
extension Store {
    public func groups() throws(CloudError) -> [ServerGroupRecord] {
        try read { db in try ServerGroupRecord.fetchAll(db) }
    }

    /// `EEXIST` when the name is taken.
    public func insertGroup(_ g: ServerGroupRecord) throws(CloudError) { try write { db in try g.insert(db) } }
    public func updateGroup(_ g: ServerGroupRecord) throws(CloudError) { try write { db in try g.update(db) } }
    public func deleteGroup(_ name: String) throws(CloudError) {
        try write { db in _ = try ServerGroupRecord.deleteOne(db, key: name) }
    }
}
