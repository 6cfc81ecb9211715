import CloudCore
import CloudStore

/// Keystone's users, projects and role assignments and the projects' quota limits, in
/// memory (the catalog's part; the store has the rows). Authorization reads only this.
struct IdentityCatalog {
    var projects: [String: ProjectRecord] = [:]
    var users: [String: UserRecord] = [:]
    /// uid → user name.
    var userByUID: [UInt32: String] = [:]
    /// project → user → role.
    private(set) var roles: [String: [String: Role]] = [:]
    /// user → project → role (the same assignments, the way every request reads them).
    private var rolesByUser: [String: [String: Role]] = [:]
    /// What each uid is, built once per change of the directory (every request asks).
    private var identities: [UInt32: CallerIdentity] = [:]
    /// project → limits that were set (the rest are the defaults).
    var limits: [String: [QuotaResource: Int]] = [:]
    /// The uid the cloud runs as (the mounting user): an admin of their own cloud, like
    /// root, registered or not.
    var owner: UInt32 = 0

    /// uid 0 or the cloud's own uid.
    func isOwner(_ uid: UInt32) -> Bool { uid == 0 || uid == owner }

    init() {}

    init(projects: [ProjectRecord], users: [UserRecord], memberships: [MembershipRecord], quotas: [QuotaRecord]) {
        for p in projects { self.projects[p.name] = p }
        for u in users { self.users[u.name] = u; userByUID[UInt32(u.uid)] = u.name }
        for m in memberships { if let r = Role(rawValue: m.role) { roles[m.project, default: [:]][m.user] = r } }
        for q in quotas { if let r = QuotaResource(rawValue: q.resource) { limits[q.project, default: [:]][r] = q.hardLimit } }
        reindex()
    }

    mutating func put(_ u: UserRecord) {
        if let old = users[u.name] { userByUID[UInt32(old.uid)] = nil }
        users[u.name] = u
        userByUID[UInt32(u.uid)] = u.name
        reindex()
    }

    mutating func removeUser(_ name: String) {
        guard let u = users.removeValue(forKey: name) else { return }
        userByUID[UInt32(u.uid)] = nil
        for p in roles.keys { roles[p]?[name] = nil }
        reindex()
    }

    /// Replaces a project's role assignments (nil: the project is gone); a user no longer
    /// in it stops creating into it (as `Store.setMembers` and `deleteProject` record).
    mutating func setRoles(_ project: String, _ members: [String: Role]?) {
        roles[project] = members
        for (u, rec) in users where rec.project == project && members?[u] == nil { users[u]?.project = "" }
        reindex()
    }

    /// Forgets a project: its role assignments and limits.
    mutating func removeProject(_ project: String) {
        projects[project] = nil
        limits[project] = nil
        setRoles(project, nil)
    }

    /// Rebuilds the per-user views after a change (changes are rare, reads constant).
    private mutating func reindex() {
        rolesByUser = [:]
        for (p, members) in roles { for (u, r) in members { rolesByUser[u, default: [:]][p] = r } }
        identities = [:]
        for (uid, name) in userByUID {
            let r = rolesByUser[name] ?? [:]
            identities[uid] = CallerIdentity(isAdmin: r.values.contains(.admin), isRegistered: true, roles: r)
        }
    }

    /// A user's roles, by project.
    func roles(of user: String) -> [String: Role] { rolesByUser[user] ?? [:] }

    /// Who `caller` is: uid 0 and holders of the admin role are admins.
    func identity(of caller: Caller) -> CallerIdentity {
        if isOwner(caller.uid) { return Self.root }
        return identities[caller.uid] ?? Self.stranger
    }

    private static let root = CallerIdentity(isAdmin: true, isRegistered: true, roles: [:])
    private static let stranger = CallerIdentity(isAdmin: false, isRegistered: false, roles: [:])

    /// The project the caller's new objects go into: their chosen one, else the first (by
    /// name) they belong to; nil when they belong to none. The admin's is `default`.
    func currentProject(of caller: Caller) -> String? {
        guard let name = userByUID[caller.uid], let u = users[name] else { return isOwner(caller.uid) ? "default" : nil }
        if !u.project.isEmpty, roles[u.project]?[name] != nil { return u.project }
        return roles(of: name).keys.sorted().first ?? (isOwner(caller.uid) ? "default" : nil)
    }

    func limit(_ project: String, _ resource: QuotaResource) -> Int {
        limits[project]?[resource] ?? resource.defaultLimit
    }
}
