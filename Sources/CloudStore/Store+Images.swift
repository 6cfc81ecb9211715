import CloudCore
import Foundation
import GRDB

/// Glance's image registry: rows and properties. Bytes live in the image store, not here.
extension Store {
    /// All images with their properties.
    public func images() throws(CloudError) -> [ImageInfo] {
        try read { db in
            var props: [String: [String: String]] = [:]
            for p in try ImagePropertyRecord.fetchAll(db) { props[p.imageId, default: [:]][p.key] = p.value }
            return try ImageRecord.fetchAll(db).map { $0.info(properties: props[$0.id] ?? [:]) }
        }
    }

    /// Activation times, for "the most recently activated image".
    public func imageActivationTimes() throws(CloudError) -> [String: Double] {
        try read { db in
            var out: [String: Double] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, activated FROM image WHERE activated IS NOT NULL") {
                out[row["id"]] = row["activated"]
            }
            return out
        }
    }

    /// Creates the queued row of a new upload; `EEXIST` when the name is taken.
    public func insertImage(_ r: ImageRecord) throws(CloudError) {
        do { try db.write { db in try r.insert(db) } } catch {
            let e = Self.translate(error)
            throw e.errno == .exists ? CloudError.exists("image '\(r.name)' already exists") : e
        }
    }

    /// Saves status, size, checksum and format of an image.
    public func updateImage(_ r: ImageRecord) throws(CloudError) { try write { db in try r.update(db) } }

    public func deleteImage(id: String) throws(CloudError) { try write { db in _ = try ImageRecord.deleteOne(db, key: id) } }

    public func imageRecord(id: String) throws(CloudError) -> ImageRecord? {
        try read { db in try ImageRecord.fetchOne(db, key: id) }
    }

    /// Renames an image and, in the same transaction, the instances' copy of its name and
    /// `/defaults/image` when it names it. `EEXIST` when the new name is taken.
    public func renameImage(id: String, from old: String, to name: String) throws(CloudError) {
        do {
            try db.write { db in
                try db.execute(sql: "UPDATE image SET name = ? WHERE id = ?", arguments: [name, id])
                try db.execute(sql: "UPDATE instance SET image_name = ? WHERE image_id = ?", arguments: [name, id])
                _ = try Self.followDefault(db, .image, from: old, to: name)
            }
        } catch {
            let e = Self.translate(error)
            throw e.errno == .exists ? CloudError.exists("image '\(name)' already exists") : e
        }
    }

    /// Sets or (with nil) removes one property.
    public func setImageProperty(imageID: String, key: String, value: String?) throws(CloudError) {
        try write { db in
            if let value {
                try ImagePropertyRecord(imageId: imageID, key: key, value: value).upsert(db)
            } else {
                try db.execute(sql: "DELETE FROM image_property WHERE image_id = ? AND key = ?", arguments: [imageID, key])
            }
        }
    }

    /// Removes every image that never became active (interrupted uploads, a crash while saving)
    /// and returns their paths so the caller deletes the bytes.
    public func purgeUnfinishedImages() throws(CloudError) -> [String] {
        try write { db in
            let rows = try ImageRecord.filter(Column("status") != ImageStatus.active.rawValue).fetchAll(db)
            for r in rows { _ = try r.delete(db) }
            return rows.map(\.path)
        }
    }
}
