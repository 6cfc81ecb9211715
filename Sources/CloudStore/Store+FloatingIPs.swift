import CloudCore
import Foundation
import GRDB

/// nova-network's floating_ips table and Nova's security_groups: allocation under a
/// per-project quota, association with an instance, release; each one transaction.
extension Store {
    public func floatingIPs() throws(CloudError) -> [FloatingIPRecord] {
        try read { db in try FloatingIPRecord.order(Column("address")).fetchAll(db) }
    }

    /// Allocates a floating IP of `pool` to `project` (nova's `allocate_floating_ip`): the
    /// given `address`, or the lowest free one of `range`; when `instanceID` is given it is
    /// associated at once (replacing the instance's previous association). `EDQUOT` when the
    /// project's `floating_ips` quota is reached, `EEXIST` when the address is taken,
    /// `ENOSPC` when the pool is empty.
    public func allocateFloatingIP(address: Int64?, pool: String, range: ClosedRange<UInt32>, project: String,
                                   ownerUID: UInt32, instanceID: String? = nil) throws(CloudError) -> FloatingIPRecord {
        try write { db in
            try Self.checkQuota(db, QuotaRequest(project: project, [.floatingIPs: 1]))
            let lo = Int64(range.lowerBound), hi = Int64(range.upperBound)
            let chosen: Int64
            if let address {
                guard address >= lo && address <= hi else { throw CloudError.invalid("address is not in pool \(pool)") }
                guard try FloatingIPRecord.fetchOne(db, key: address) == nil else {
                    throw CloudError.exists("floating IP is already allocated")
                }
                chosen = address
            } else {
                let used = try Int64.fetchSet(db, sql: "SELECT address FROM floating_ip WHERE address BETWEEN ? AND ?", arguments: [lo, hi])
                guard let free = (lo...hi).first(where: { !used.contains($0) }) else {
                    throw CloudError.noSpace("No more floating IPs in pool \(pool)")
                }
                chosen = free
            }
            if let instanceID {
                try db.execute(sql: "UPDATE floating_ip SET instance_id = NULL WHERE instance_id = ?", arguments: [instanceID])
            }
            let rec = FloatingIPRecord(address: chosen, pool: pool, project: project, ownerUID: ownerUID,
                                       instanceId: instanceID, autoAssigned: instanceID != nil)
            try rec.insert(db)
            return rec
        }
    }

    /// Associates `address` with the instance (nil: disassociates), replacing the instance's
    /// previous association. Returns every row that changed. `ENOENT` for an unknown address.
    public func associateFloatingIP(_ address: Int64, instanceID: String?) throws(CloudError) -> [FloatingIPRecord] {
        try write { db in
            guard var rec = try FloatingIPRecord.fetchOne(db, key: address) else {
                throw CloudError.notFound("floating IP is not allocated")
            }
            var changed: [FloatingIPRecord] = []
            if let instanceID, rec.instanceId != instanceID {
                for var other in try FloatingIPRecord.filter(Column("instance_id") == instanceID).fetchAll(db) {
                    other.instanceId = nil
                    try other.update(db)
                    changed.append(other)
                }
            }
            rec.instanceId = instanceID
            try rec.update(db)
            return changed + [rec]
        }
    }

    /// Releases one floating IP (nova's `deallocate_floating_ip`); absent is fine.
    public func releaseFloatingIP(_ address: Int64) throws(CloudError) {
        try write { db in _ = try FloatingIPRecord.deleteOne(db, key: address) }
    }

    /// What an instance's delete does to its floating IPs: auto-assigned ones are released,
    /// the others disassociated (nova-network's `deallocate_for_instance`). Returns the
    /// addresses touched.
    public func releaseFloatingIPs(instanceID: String) throws(CloudError) -> [Int64] {
        try write { db in
            let rows = try FloatingIPRecord.filter(Column("instance_id") == instanceID).fetchAll(db)
            try db.execute(sql: "DELETE FROM floating_ip WHERE instance_id = ? AND auto_assigned", arguments: [instanceID])
            try db.execute(sql: "UPDATE floating_ip SET instance_id = NULL WHERE instance_id = ?", arguments: [instanceID])
            return rows.map(\.address)
        }
    }

    // MARK: security groups

    public func securityGroups() throws(CloudError) -> [SecurityGroupRecord] {
        try read { db in try SecurityGroupRecord.fetchAll(db) }
    }

    /// Creates the group if none of that name exists.
    public func ensureSecurityGroup(_ g: SecurityGroupRecord) throws(CloudError) {
        try write { db in try g.insert(db, onConflict: .ignore) }
    }

    /// `EEXIST` when the name is taken.
    public func insertSecurityGroup(_ g: SecurityGroupRecord) throws(CloudError) {
        do { try db.write { db in try g.insert(db) } } catch {
            let e = Self.translate(error)
            throw e.errno == .exists ? CloudError.exists("security group '\(g.name)' already exists") : e
        }
    }

    public func updateSecurityGroup(_ g: SecurityGroupRecord) throws(CloudError) { try write { db in try g.update(db) } }

    public func deleteSecurityGroup(_ name: String) throws(CloudError) {
        try write { db in _ = try SecurityGroupRecord.deleteOne(db, key: name) }
    }
}
