import CloudCore
import Foundation
import GRDB
import Synchronization

/// All persistent state of the cloud, in one SQLite database in WAL mode (GRDB
/// `DatabasePool`, so readers run beside the single writer). Every public method is one
/// transaction expressing one intent; state transitions are compare-and-set, as Nova's
/// `instance.save(expected_task_state=...)`.
public final class Store: Sendable {
    let db: DatabasePool
    /// Per network, the lowest fixed IP that may be free (see `allocate` in Store+Networks.swift).
    let fixedIPHints = Mutex<[String: Int64]>([:])

    /// Opens (creating if needed) the database at `path` and migrates it.
    /// Throws `EIO` when the file cannot be opened or migrated.
    public init(path: String) throws(CloudError) {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        config.busyMode = .timeout(10)
        do {
            db = try DatabasePool(path: path, configuration: config)
            try Migrations.migrator.migrate(db)
        } catch {
            throw CloudError.io("cannot open state database \(path): \(error)")
        }
    }

    /// Runs a write transaction, translating database errors (constraint → EEXIST).
    func write<T>(_ body: (Database) throws -> T) throws(CloudError) -> T {
        do { return try db.write(body) } catch { throw Self.translate(error) }
    }

    func read<T>(_ body: (Database) throws -> T) throws(CloudError) -> T {
        do { return try db.read(body) } catch { throw Self.translate(error) }
    }

    static func translate(_ error: any Error) -> CloudError {
        if let e = error as? CloudError { return e }
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_CONSTRAINT {
            return CloudError.exists("already exists (\(e.message ?? "constraint"))")
        }
        return CloudError.io("database: \(error)")
    }

    // MARK: settings

    /// Reads a setting (defaults and engine settings live here).
    public func setting(_ key: String) throws(CloudError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key]) }
    }

    /// Writes a setting; an empty value removes it.
    public func setSetting(_ key: String, _ value: String) throws(CloudError) {
        try write { db in
            if value.isEmpty {
                try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [key])
            } else {
                try db.execute(sql: "INSERT INTO setting(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                               arguments: [key, value])
            }
        }
    }

    public func allSettings() throws(CloudError) -> [String: String] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT key, value FROM setting").map {
                ($0["key"] as String, $0["value"] as String)
            })
        }
    }

    // MARK: flavors

    /// Inserts the seed flavors the first time only (a "seeded" marker, so a deleted seed flavor stays deleted).
    public func seedFlavorsOnce(_ flavors: [Flavor]) throws(CloudError) {
        try write { db in
            guard try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = 'seeded.flavors'") == nil else { return }
            for f in flavors { try FlavorRecord(f).insert(db, onConflict: .ignore) }
            try db.execute(sql: "INSERT INTO setting(key, value) VALUES ('seeded.flavors', '1')")
        }
    }

    public func flavors() throws(CloudError) -> [Flavor] {
        try read { db in try FlavorRecord.fetchAll(db).map(\.flavor) }
    }

    /// Inserts a flavor; `EEXIST` if the name is taken.
    public func insertFlavor(_ f: Flavor) throws(CloudError) { try write { db in try FlavorRecord(f).insert(db) } }
    public func updateFlavor(_ f: Flavor) throws(CloudError) { try write { db in try FlavorRecord(f).update(db) } }
    public func deleteFlavor(_ name: String) throws(CloudError) {
        try write { db in _ = try FlavorRecord.deleteOne(db, key: name) }
    }

    // MARK: events

    public func appendEvents(_ lines: [String]) throws(CloudError) {
        try write { db in
            for l in lines { try db.execute(sql: "INSERT INTO event(line) VALUES (?)", arguments: [l]) }
        }
    }

    public func eventLines() throws(CloudError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT line FROM event ORDER BY id") }
    }
}
