import CloudCore
import Foundation
import GRDB

/// One move of an instance between hosts (Nova's `migrations` table): live or cold,
/// running until it ends as completed, failed or aborted.
public struct MigrationRecord: Sendable, Equatable {
    public var id: Int64
    public var instanceID: String
    /// `live`, `cold` or `evacuation`.
    public var kind: String
    public var source: String
    public var dest: String
    /// `running`, `completed`, `failed` or `aborted`.
    public var status: String
    public var started: Date
    public var finished: Date?
    /// The outcome in words: downtime and duration, or the reason it failed.
    public var detail: String

    /// `instances/NAME/migrations`: one line each.
    public var line: String {
        let t = Timestamp.string(started)
        return "\(t) \(kind) \(source) -> \(dest) \(status)" + (detail.isEmpty ? "" : " " + detail)
    }
}

extension Store {
    /// Records that a migration started; returns its id.
    public func startMigration(instanceID: String, kind: String, source: String, dest: String) throws(CloudError) -> Int64 {
        try write { db in
            try db.execute(sql: "INSERT INTO migration (instance_id, kind, source, dest, status, started) VALUES (?, ?, ?, ?, 'running', ?)",
                           arguments: [instanceID, kind, source, dest, Date().timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    /// Ends a migration with its outcome.
    public func finishMigration(id: Int64, status: String, detail: String) throws(CloudError) {
        try write { db in
            try db.execute(sql: "UPDATE migration SET status = ?, finished = ?, detail = ? WHERE id = ?",
                           arguments: [status, Date().timeIntervalSince1970, detail, id])
        }
    }

    /// An instance's migrations, newest first.
    public func migrations(instanceID: String, limit: Int = 50) throws(CloudError) -> [MigrationRecord] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, instance_id, kind, source, dest, status, started, finished, detail FROM migration
                WHERE instance_id = ? ORDER BY id DESC LIMIT ?
                """, arguments: [instanceID, limit]).map { row in
                MigrationRecord(id: row[0], instanceID: row[1], kind: row[2], source: row[3], dest: row[4], status: row[5],
                                started: Date(timeIntervalSince1970: row[6]),
                                finished: (row[7] as Double?).map { Date(timeIntervalSince1970: $0) }, detail: row[8])
            }
        }
    }

    /// The instance's migration still marked running (one a crash interrupted), if any.
    public func runningMigration(instanceID: String) throws(CloudError) -> MigrationRecord? {
        try migrations(instanceID: instanceID, limit: 5).first { $0.status == "running" }
    }
}

/// Nova's live migration claim.
extension Store {
    /// Claims the destination's resources for a live migration while the source's stay
    /// held (as the `old_*` claim, until the guest has moved or the migration is rolled
    /// back), in one transaction: the instance must be `migrating` and on another host.
    public func claimLiveMigration(instanceID: String, to host: String, fits: ClaimCheck) throws(CloudError) -> InstanceRecord? {
        try write { db in
            guard let old = try InstanceRecord.fetch(db, id: instanceID),
                  old.taskState == .migrating, !old.deleteRequested, old.oldHost == nil, let current = old.host, current != host,
                  try Self.hostFits(db, old, host, fits) else { return nil }
            var r = old
            r.oldFlavor = r.flavor; r.oldVcpus = r.vcpus; r.oldRamMb = r.ramMb; r.oldDiskGb = r.diskGb
            r.oldHost = current; r.oldVmState = r.vmState
            r.host = host
            try r.write(db, over: old)
            return r
        }
    }
}
