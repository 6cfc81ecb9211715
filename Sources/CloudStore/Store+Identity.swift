import CloudCore
import Foundation
import GRDB

/// Keystone's projects, users and role assignments, and Nova's counting quotas: usage is
/// counted inside the transaction that claims the resource, so there is nothing to
/// reserve and nothing to leak (Nova since Pike).
extension Store {
    public func projects() throws(CloudError) -> [ProjectRecord] { try read { db in try ProjectRecord.fetchAll(db) } }
    public func users() throws(CloudError) -> [UserRecord] { try read { db in try UserRecord.fetchAll(db) } }
    public func memberships() throws(CloudError) -> [MembershipRecord] { try read { db in try MembershipRecord.fetchAll(db) } }
    public func quotas() throws(CloudError) -> [QuotaRecord] { try read { db in try QuotaRecord.fetchAll(db) } }

    /// Creates a project with the next free gid; `EEXIST` when the name is taken.
    public func insertProject(_ name: String) throws(CloudError) -> ProjectRecord {
        try write { db in
            guard try ProjectRecord.fetchOne(db, key: name) == nil else { throw CloudError.exists("project '\(name)' already exists") }
            let top = try Int64.fetchOne(db, sql: "SELECT MAX(gid) FROM project") ?? (ProjectRecord.firstGID - 1)
            let p = ProjectRecord(name: name, gid: max(top + 1, ProjectRecord.firstGID), created: Date().timeIntervalSince1970)
            try p.insert(db)
            return p
        }
    }

    /// Removes a project with its role assignments and quota; `EBUSY` naming what it still
    /// owns (Keystone refuses nothing here, but our objects would be orphaned).
    public func deleteProject(_ name: String) throws(CloudError) {
        try write { db in
            var held: [String] = []
            for (table, noun) in [("instance", "instances"), ("image", "images"), ("floating_ip", "floating IPs"),
                                  ("server_group", "server groups"), ("security_group", "security groups")] {
                let n = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table) WHERE project = ?", arguments: [name]) ?? 0
                if n > 0 { held.append("\(n) \(noun)") }
            }
            guard held.isEmpty else { throw CloudError.busy("project '\(name)' still owns \(held.joined(separator: ", "))") }
            try db.execute(sql: "UPDATE user_account SET project = '' WHERE project = ?", arguments: [name])
            _ = try ProjectRecord.deleteOne(db, key: name)
        }
    }

    /// Registers a user; `EEXIST` when the name or the uid is registered already.
    public func insertUser(_ u: UserRecord) throws(CloudError) {
        try write { db in
            if try UserRecord.fetchOne(db, key: u.name) != nil { throw CloudError.exists("user '\(u.name)' is already registered") }
            if try UserRecord.filter(Column("uid") == u.uid).fetchCount(db) > 0 {
                throw CloudError.exists("uid \(u.uid) is already registered")
            }
            try u.insert(db)
        }
    }

    /// Unregisters a user and their role assignments.
    public func deleteUser(_ name: String) throws(CloudError) {
        try write { db in _ = try UserRecord.deleteOne(db, key: name) }
    }

    /// Sets the project a user's new objects go into; `EINVAL` unless they belong to it.
    public func setUserProject(_ name: String, _ project: String) throws(CloudError) -> UserRecord {
        try write { db in
            guard var u = try UserRecord.fetchOne(db, key: name) else { throw CloudError.notFound("user '\(name)' is not registered") }
            if !project.isEmpty,
               try MembershipRecord.filter(Column("project") == project && Column("user") == name).fetchCount(db) == 0 {
                throw CloudError.invalid("user '\(name)' is not a member of project '\(project)'")
            }
            u.project = project
            try u.update(db)
            return u
        }
    }

    /// Replaces a project's role assignments; `EINVAL` naming a user who is not registered.
    /// A user taken out of the project stops creating into it.
    public func setMembers(_ project: String, _ members: [String: Role]) throws(CloudError) {
        try write { db in
            guard try ProjectRecord.fetchOne(db, key: project) != nil else { throw CloudError.notFound("project '\(project)' does not exist") }
            for user in members.keys.sorted() where try UserRecord.fetchOne(db, key: user) == nil {
                throw CloudError.invalid("members: user '\(user)' is not registered (mkdir /users/\(user) first)")
            }
            try db.execute(sql: "DELETE FROM membership WHERE project = ?", arguments: [project])
            for (user, role) in members { try MembershipRecord(project: project, user: user, role: role).insert(db) }
            try db.execute(sql: """
                UPDATE user_account SET project = '' WHERE project = ?
                AND name NOT IN (SELECT user FROM membership WHERE project = ?)
                """, arguments: [project, project])
        }
    }

    /// Sets one limit (-1: unlimited). A limit below usage is accepted: it refuses only
    /// new requests.
    public func setQuota(_ project: String, _ resource: QuotaResource, _ limit: Int) throws(CloudError) {
        try write { db in
            guard try ProjectRecord.fetchOne(db, key: project) != nil else { throw CloudError.notFound("project '\(project)' does not exist") }
            try QuotaRecord(project: project, resource: resource, hardLimit: limit).save(db)
        }
    }

    /// What `project` holds now, counted from the rows that hold it.
    public func usage(project: String) throws(CloudError) -> [QuotaResource: Int] {
        try read { db in try Self.usage(db, project: project) }
    }

    /// What `project` holds of `resources` (all of them when nil), one SQL sum per table.
    static func usage(_ db: Database, project: String, of resources: Set<QuotaResource>? = nil) throws -> [QuotaResource: Int] {
        func wanted(_ r: QuotaResource...) -> Bool { resources.map { !$0.isDisjoint(with: r) } ?? true }
        var out: [QuotaResource: Int] = Dictionary(uniqueKeysWithValues: QuotaResource.allCases.map { ($0, 0) })
        if wanted(.instances, .cores, .ramMB) {
            // The trigger-kept counters (`project_usage`, migration v17).
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT instances, cores, ram_mb FROM project_usage WHERE project = ?"),
                                       arguments: [project])
            out[.instances] = row?[0] ?? 0
            out[.cores] = row?[1] ?? 0
            out[.ramMB] = row?[2] ?? 0
        }
        if wanted(.floatingIPs) {
            out[.floatingIPs] = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM floating_ip WHERE project = ?"), arguments: [project]) ?? 0
        }
        if wanted(.keyPairs) {
            // Key pairs are their owners': a project shows those made while in it.
            out[.keyPairs] = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM keypair WHERE project = ?"), arguments: [project]) ?? 0
        }
        if wanted(.serverGroups) {
            out[.serverGroups] = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM server_group WHERE project = ?"), arguments: [project]) ?? 0
        }
        if wanted(.volumes, .gigabytes) {
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*), COALESCE(SUM(MAX(size_gb, COALESCE(target_size_gb, 0))), 0) FROM volume WHERE project = ?"),
                                       arguments: [project])
            out[.volumes] = row?[0] ?? 0
            out[.gigabytes] = row?[1] ?? 0
        }
        if wanted(.snapshots, .gigabytes) {
            // Cinder counts snapshots' size in `gigabytes` too.
            let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*), COALESCE(SUM(size_gb), 0) FROM volume_snapshot WHERE project = ?"),
                                       arguments: [project])
            out[.snapshots] = row?[0] ?? 0
            out[.gigabytes, default: 0] += row?[1] ?? 0
        }
        if wanted(.serverGroupMembers) {
            // Nova's server_group_members limits each group: the fullest group is what it meets.
            out[.serverGroupMembers] = try Int.fetchOne(db.cachedStatement(sql: """
                SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM instance i JOIN server_group g ON g.name = i.group_name
                WHERE g.project = ? GROUP BY i.group_name)
                """), arguments: [project]) ?? 0
        }
        return out
    }

    /// The limit of `resource` for `project` (the default when never set).
    static func limit(_ db: Database, _ project: String, _ resource: QuotaResource) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT hard_limit FROM quota WHERE project = ? AND resource = ?"),
                         arguments: [project, resource.rawValue]) ?? resource.defaultLimit
    }

    /// Inside a write: throws Nova's `EDQUOT` refusal when adding `request` to what the
    /// project holds now would pass a limit. `group`: the server group an instance joins
    /// (`server_group_members` counts that group's members).
    static func checkQuota(_ db: Database, _ request: QuotaRequest) throws {
        // Limits are a project's: rows of no registered project (made below the engine,
        // which only ever uses registered ones) have none.
        guard try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM project WHERE name = ?"), arguments: [request.project]) != nil else { return }
        let asked = request.amounts.filter { $0.value > 0 }
        guard !asked.isEmpty else { return }
        let used = try usage(db, project: request.project, of: Set(asked.keys).subtracting([.serverGroupMembers]))
        for (resource, amount) in asked.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let limit = try limit(db, request.project, resource)
            guard limit >= 0 else { continue }
            var now = used[resource] ?? 0
            if resource == .serverGroupMembers, let g = request.group {
                now = try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM instance WHERE group_name = ?"), arguments: [g]) ?? 0
            }
            if now + amount > limit { throw resource.exceeded(requested: amount, used: now, limit: limit) }
        }
    }
}

/// What a request would add to a project's usage, checked in the claiming transaction.
public struct QuotaRequest: Sendable {
    public var project: String
    public var amounts: [QuotaResource: Int]
    /// The server group an instance joins, for `server_group_members`.
    public var group: String?
    public init(project: String, _ amounts: [QuotaResource: Int], group: String? = nil) {
        self.project = project; self.amounts = amounts; self.group = group
    }
}
