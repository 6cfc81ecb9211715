import CloudCore
import Foundation
import GRDB

/// Nova's key_pairs table. The `key_pairs` quota is a user's (Nova's is per user): the
/// owner's key pairs are counted against the limit of the project they are in.
extension Store {
    public func keypairs() throws(CloudError) -> [KeypairRecord] {
        try read { db in try KeypairRecord.order(Column("name")).fetchAll(db) }
    }

    /// Inserts a key pair; `EEXIST` when the owner has one by that name, `EDQUOT` over
    /// the owner's `key_pairs`.
    public func insertKeypair(_ k: KeypairRecord) throws(CloudError) {
        try write { db in
            guard try KeypairRecord.filter(Column("owner_uid") == k.ownerUid && Column("name") == k.name).fetchCount(db) == 0 else {
                throw CloudError.exists("key pair '\(k.name)' already exists (key pairs cannot be changed: rm it, then copy the new key)")
            }
            if try ProjectRecord.fetchOne(db, key: k.project) != nil {
                let limit = try Self.limit(db, k.project, .keyPairs)
                let used = try KeypairRecord.filter(Column("owner_uid") == k.ownerUid).fetchCount(db)
                if limit >= 0, used + 1 > limit { throw QuotaResource.keyPairs.exceeded(requested: 1, used: used, limit: limit) }
            }
            try k.insert(db)
        }
    }

    public func deleteKeypair(id: String) throws(CloudError) {
        try write { db in _ = try KeypairRecord.deleteOne(db, key: id) }
    }
}
