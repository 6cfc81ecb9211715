import CloudCore
import Foundation
import GRDB

/// Cinder's volumes and snapshots tables: every status change is a compare-and-set (the
/// row must still be in one of the expected states), and what a quota counts is checked in
/// the transaction that claims it.
extension Store {
    public func volumes() throws(CloudError) -> [VolumeRecord] {
        try read { db in try VolumeRecord.order(Column("name")).fetchAll(db) }
    }

    public func snapshots() throws(CloudError) -> [SnapshotRecord] {
        try read { db in try SnapshotRecord.order(Column("name")).fetchAll(db) }
    }

    /// Inserts a new volume (`creating`) under the project's `volumes` and `gigabytes`
    /// quota; `EEXIST` when the name is taken, `EDQUOT` over quota.
    public func insertVolume(_ v: VolumeRecord) throws(CloudError) {
        try write { db in
            guard try VolumeRecord.filter(Column("name") == v.name).fetchCount(db) == 0 else {
                throw CloudError.exists("volume '\(v.name)' already exists")
            }
            try Self.checkQuota(db, QuotaRequest(project: v.project, [.volumes: 1, .gigabytes: v.sizeGb]))
            try v.insert(db)
        }
    }

    /// The compare-and-set every volume transition goes through: when the row is in one
    /// of `expected`, `change` edits it and it is written back; nil when it is not (a
    /// conflict: another step moved it) or is gone. `change` may throw to refuse.
    public func updateVolume(_ id: String, expecting expected: Set<VolumeStatus>,
                             _ change: (inout VolumeRecord, Database) throws -> Void) throws(CloudError) -> VolumeRecord? {
        try write { db in
            guard var v = try VolumeRecord.fetchOne(db, key: id), expected.contains(v.status) else { return nil }
            try change(&v, db)
            try v.update(db)
            return v
        }
    }

    /// Cinder's reserve (available → reserved) with Nova's device choice: the first free
    /// `vdX` after the boot disk among the instance's attachments. `ENOSPC` when all are taken.
    public func reserveVolume(_ id: String, instanceID: String) throws(CloudError) -> VolumeRecord? {
        try updateVolume(id, expecting: [.available]) { v, db in
            let used = try String.fetchSet(db, sql: "SELECT device FROM volume WHERE instance_id = ? AND device IS NOT NULL",
                                           arguments: [instanceID])
            let letters = "bcdefghijklmnopqrstuvwxyz".map { "vd\($0)" }
            guard let device = letters.first(where: { !used.contains($0) }) else {
                throw CloudError.noSpace("instance has no free disk device left (vdb to vdz are taken)")
            }
            v.status = .reserved; v.instanceId = instanceID; v.device = device; v.fault = ""
        }
    }

    /// Starts an extend (available or in-use → extending) to `sizeGB`, under the project's
    /// `gigabytes` quota for the growth.
    public func beginExtend(_ id: String, to sizeGB: Int) throws(CloudError) -> VolumeRecord? {
        try updateVolume(id, expecting: [.available, .inUse]) { v, db in
            try Self.checkQuota(db, QuotaRequest(project: v.project, [.gigabytes: sizeGB - v.sizeGb]))
            v.previousStatus = v.status; v.status = .extending; v.targetSizeGb = sizeGB; v.fault = ""
        }
    }

    /// Removes a volume's row (the end of a delete).
    public func deleteVolume(_ id: String) throws(CloudError) {
        try write { db in _ = try VolumeRecord.deleteOne(db, key: id) }
    }

    /// What deleting an instance does to its volumes: each becomes available again,
    /// keeping its data (Nova's `_cleanup_volumes` detach). Returns the rows changed.
    public func releaseVolumes(instanceID: String) throws(CloudError) -> [VolumeRecord] {
        try write { db in
            var out: [VolumeRecord] = []
            for var v in try VolumeRecord.filter(Column("instance_id") == instanceID).fetchAll(db) {
                v.status = v.status == .extending ? .extending : .available
                v.instanceId = nil; v.device = nil; v.attachedAt = nil
                if v.previousStatus == .inUse { v.previousStatus = .available }
                try v.update(db)
                out.append(v)
            }
            return out
        }
    }

    /// Inserts a snapshot (`creating`) under the `snapshots` and `gigabytes` quota, while
    /// its volume is available or in-use; `EEXIST` for a taken name.
    public func insertSnapshot(_ s: SnapshotRecord) throws(CloudError) {
        try write { db in
            guard let v = try VolumeRecord.fetchOne(db, key: s.volumeId) else { throw CloudError.notFound("the volume is gone") }
            guard v.status == .available || v.status == .inUse else {
                throw CloudError.busy("volume '\(v.name)' is \(v.status.rawValue); a snapshot needs it available or in-use")
            }
            guard try SnapshotRecord.filter(Column("volume_id") == s.volumeId && Column("name") == s.name).fetchCount(db) == 0 else {
                throw CloudError.exists("volume '\(v.name)' already has a snapshot named '\(s.name)'")
            }
            try Self.checkQuota(db, QuotaRequest(project: s.project, [.snapshots: 1, .gigabytes: s.sizeGb]))
            try s.insert(db)
        }
    }

    /// Compare-and-set of a snapshot's status.
    public func updateSnapshot(_ id: String, expecting expected: Set<SnapshotStatus>,
                               _ change: (inout SnapshotRecord) -> Void) throws(CloudError) -> SnapshotRecord? {
        try write { db in
            guard var s = try SnapshotRecord.fetchOne(db, key: id), expected.contains(s.status) else { return nil }
            change(&s)
            try s.update(db)
            return s
        }
    }

    /// Starts a snapshot's delete (available or error → deleting) unless a volume was made
    /// from it (`EBUSY` naming it). nil on a conflict.
    public func beginSnapshotDelete(_ id: String) throws(CloudError) -> SnapshotRecord? {
        try write { db in
            guard var s = try SnapshotRecord.fetchOne(db, key: id), [.available, .error].contains(s.status) else { return nil }
            if let user = try String.fetchOne(db, sql: "SELECT name FROM volume WHERE source_snapshot_id = ? ORDER BY name LIMIT 1",
                                              arguments: [id]) {
                throw CloudError.busy("snapshot '\(s.name)' is the source of volume '\(user)'")
            }
            s.status = .deleting
            try s.update(db)
            return s
        }
    }

    public func deleteSnapshotRow(_ id: String) throws(CloudError) {
        try write { db in _ = try SnapshotRecord.deleteOne(db, key: id) }
    }
}
