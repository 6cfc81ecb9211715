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
    /// Per instance, the running task its next return to task_state none ends in the same
    /// transaction (see `endTaskWithItsLastCommit` in Store+Tasks.swift).
    let taskEndings = Mutex<[String: TaskEnding]>([:])
    /// Per instance, the task a queueing commit took for the worker dispatched after it
    /// (see `queue` in Store+Tasks.swift).
    let handedTasks = Mutex<[String: TaskRecord]>([:])
    /// /events lines not yet in SQLite: the next write transaction carries them (see
    /// `queueEvents`), so an event seldom costs a transaction of its own.
    let pendingEvents = Mutex<[String]>([])
    /// Per thread: what an instance update writes to /events with it (`withEventLines`).
    let eventLineMakers = Mutex<[UInt: @Sendable (InstanceRecord) -> [String]]>([:])

    /// Opens (creating if needed) the database at `path` and migrates it. A write waits up
    /// to `busyTimeout` seconds for another connection's lock before it fails with `EIO`.
    /// Throws `EIO` when the file cannot be opened or migrated.
    public init(path: String, busyTimeout: Double = 10) throws(CloudError) {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        config.busyMode = .timeout(busyTimeout)
        do {
            db = try DatabasePool(path: path, configuration: config)
            try Migrations.migrator.migrate(db)
        } catch {
            throw CloudError.io("cannot open state database \(path): \(error)")
        }
    }

    /// Runs a write transaction, translating database errors (constraint → EEXIST).
    /// Queued /events lines go in first, in the same transaction; if it fails they are put
    /// back for the next one.
    func write<T>(_ body: (Database) throws -> T) throws(CloudError) -> T {
        var carried: [String] = []
        do {
            return try transaction { db in
                carried = pendingEvents.withLock { p in defer { p.removeAll() }; return p }
                try Self.insertEvents(db, carried)
                return try body(db)
            }
        } catch {
            if !carried.isEmpty { pendingEvents.withLock { $0.insert(contentsOf: carried, at: 0) } }
            throw Self.translate(error)
        }
    }

    /// One IMMEDIATE write transaction, as GRDB's `write`, but with its BEGIN and COMMIT
    /// compiled once per connection: GRDB compiles both again for every transaction, which
    /// was about 5% of the daemon's CPU in a build. Rolls back when `body` or the commit
    /// throws.
    func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        try db.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let result = try body(db)
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return result
            } catch {
                try? db.rollback()   // only if the transaction is still open
                throw error
            }
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws(CloudError) -> T {
        do { return try db.read(body) } catch { throw Self.translate(error) }
    }

    static func translate(_ error: any Error) -> CloudError {
        if let e = error as? CloudError { return e }
        if let e = error as? DatabaseError, e.resultCode == .SQLITE_CONSTRAINT {
            return CloudError.exists("already exists (\(e.message ?? "constraint"))")
        }
        return CloudError.store("database: \(error)")
    }

    // MARK: settings

    /// Reads a setting.
    public func setting(_ key: SettingKey) throws(CloudError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [key.storageKey]) }
    }

    /// Writes a setting; an empty value removes it.
    public func setSetting(_ key: SettingKey, _ value: String) throws(CloudError) {
        try write { db in try Self.setSetting(db, key, value) }
    }

    /// Writes many settings in one transaction (empty values remove theirs).
    public func setSettings(_ values: [(SettingKey, String)]) throws(CloudError) {
        try write { db in for (k, v) in values { try Self.setSetting(db, k, v) } }
    }

    static func setSetting(_ db: Database, _ key: SettingKey, _ value: String) throws {
        if value.isEmpty {
            try db.execute(sql: "DELETE FROM setting WHERE key = ?", arguments: [key.storageKey])
        } else {
            try db.execute(sql: "INSERT INTO setting(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           arguments: [key.storageKey, value])
        }
    }

    /// Inside a transaction that removes or renames an object: the `/defaults` key that
    /// named `old` names `new` instead (nil: is unset), so a default never outlives its
    /// object. Returns whether the default changed.
    static func followDefault(_ db: Database, _ key: DefaultKey, from old: String, to new: String?) throws -> Bool {
        let k = SettingKey.defaultValue(key).storageKey
        if let new {
            try db.execute(sql: "UPDATE setting SET value = ? WHERE key = ? AND value = ?", arguments: [new, k, old])
        } else {
            try db.execute(sql: "DELETE FROM setting WHERE key = ? AND value = ?", arguments: [k, old])
        }
        return db.changesCount > 0
    }

    /// Every setting this version knows (rows of unknown keys are left alone).
    public func allSettings() throws(CloudError) -> [SettingKey: String] {
        try read { db in
            var out: [SettingKey: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM setting") {
                if let k = SettingKey(storageKey: row["key"]) { out[k] = row["value"] }
            }
            return out
        }
    }

    // MARK: flavors

    /// Inserts the seed flavors the first time only (a "seeded" marker, so a deleted seed flavor stays deleted).
    public func seedFlavorsOnce(_ flavors: [Flavor]) throws(CloudError) {
        try write { db in
            let marker = SettingKey.flavorsSeeded.storageKey
            guard try String.fetchOne(db, sql: "SELECT value FROM setting WHERE key = ?", arguments: [marker]) == nil else { return }
            for f in flavors { try FlavorRecord(f).insert(db, onConflict: .ignore) }
            try Self.setSetting(db, .flavorsSeeded, "1")
        }
    }

    public func flavors() throws(CloudError) -> [Flavor] {
        try read { db in try FlavorRecord.fetchAll(db).map(\.flavor) }
    }

    /// Inserts a flavor; `EEXIST` if the name is taken.
    public func insertFlavor(_ f: Flavor) throws(CloudError) { try write { db in try FlavorRecord(f).insert(db) } }
    public func updateFlavor(_ f: Flavor) throws(CloudError) { try write { db in try FlavorRecord(f).update(db) } }
    /// Removes a flavor and, in the same transaction, `/defaults/flavor` when it names it.
    /// Returns whether the default was cleared.
    @discardableResult
    public func deleteFlavor(_ name: String) throws(CloudError) -> Bool {
        try write { db in
            _ = try FlavorRecord.deleteOne(db, key: name)
            return try Self.followDefault(db, .flavor, from: name, to: nil)
        }
    }

    // MARK: events

    /// Writes `lines` (after any queued ones) now.
    public func appendEvents(_ lines: [String]) throws(CloudError) {
        _ = queueEvents(lines)
        try flushEvents()
    }

    /// Queues /events lines for the next write transaction, whichever it is. Returns true
    /// when the queue was empty: the caller then makes sure `flushEvents` runs soon, in
    /// case no transaction comes.
    public func queueEvents(_ lines: [String]) -> Bool {
        pendingEvents.withLock { p in defer { p.append(contentsOf: lines) }; return p.isEmpty }
    }

    /// Writes the queued /events lines in a transaction of their own, unless another one
    /// already carried them.
    public func flushEvents() throws(CloudError) {
        guard !pendingEvents.withLock({ $0.isEmpty }) else { return }
        try write { _ in }
    }

    /// Runs `body` with `lines` bound for this thread: an instance update it makes
    /// (`update(instanceID:...)`) writes the /events lines made of the new row in its own
    /// transaction. `EngineCore.commit` binds it around its body, so a change and its event
    /// are durable together, and the event needs no transaction (nor a timer) of its own.
    public func withEventLines<T>(_ lines: (@Sendable (InstanceRecord) -> [String])?,
                                  _ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        guard let lines else { return try body() }
        let me = ThreadID.current
        let outer = eventLineMakers.withLock { m in defer { m[me] = lines }; return m[me] }
        defer { eventLineMakers.withLock { $0[me] = outer } }
        return try body()
    }

    /// What `withEventLines` bound for the calling thread.
    var boundEventLines: (@Sendable (InstanceRecord) -> [String])? {
        eventLineMakers.withLock { $0.isEmpty ? nil : $0[ThreadID.current] }
    }

    static func insertEvents(_ db: Database, _ lines: [String]) throws {
        guard !lines.isEmpty else { return }
        let statement = try db.cachedStatement(sql: "INSERT INTO event(line) VALUES (?)")
        for l in lines { try statement.execute(arguments: [l]) }
    }

    public func eventLines() throws(CloudError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT line FROM event ORDER BY id") }
    }
}
