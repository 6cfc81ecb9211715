import CloudCore
import Foundation
import GRDB

/// Compute hosts: the registered libvirt URIs (networks are in Store+Networks.swift).
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

    /// Removes a host and its image cache rows.
    public func deleteHost(_ name: String) throws(CloudError) {
        try write { db in
            _ = try HostRecord.deleteOne(db, key: name)
            try db.execute(sql: "DELETE FROM host_image WHERE host = ?", arguments: [name])
        }
    }

    /// Every host's cached images: host → image id → path on the host.
    public func hostImages() throws(CloudError) -> [String: [String: String]] {
        try read { db in
            var out: [String: [String: String]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT host, image_id, path FROM host_image") {
                out[row[0] as String, default: [:]][row[1] as String] = row[2] as String
            }
            return out
        }
    }

    /// Records that `host` now holds the image at `path` (after its upload finished).
    public func recordHostImage(host: String, imageID: String, path: String) throws(CloudError) {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO host_image (host, image_id, path, cached) VALUES (?, ?, ?, ?)",
                           arguments: [host, imageID, path, Date().timeIntervalSince1970])
        }
    }

    /// Forgets a host's copy of an image (its volume is being deleted).
    public func forgetHostImage(host: String, imageID: String) throws(CloudError) {
        try write { db in
            try db.execute(sql: "DELETE FROM host_image WHERE host = ? AND image_id = ?", arguments: [host, imageID])
        }
    }
}

/// Nova's server groups.
extension Store {
    public func groups() throws(CloudError) -> [ServerGroupRecord] {
        try read { db in try ServerGroupRecord.fetchAll(db) }
    }

    /// `EEXIST` when the name is taken.
    /// Creates a server group; `EDQUOT` past the project's `server_groups` quota.
    public func insertGroup(_ g: ServerGroupRecord) throws(CloudError) {
        try write { db in
            try Self.checkQuota(db, QuotaRequest(project: g.project, [.serverGroups: 1]))
            try g.insert(db)
        }
    }
    public func updateGroup(_ g: ServerGroupRecord) throws(CloudError) { try write { db in try g.update(db) } }
    /// Removes a group and, in the same transaction, `/defaults/group` when it names it.
    /// Returns whether the default was cleared.
    @discardableResult
    public func deleteGroup(_ name: String) throws(CloudError) -> Bool {
        try write { db in
            _ = try ServerGroupRecord.deleteOne(db, key: name)
            return try Self.followDefault(db, .group, from: name, to: nil)
        }
    }
}
