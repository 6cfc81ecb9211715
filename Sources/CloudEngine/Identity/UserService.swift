import CloudCore
import CloudStore
import Foundation

/// Keystone's users: `/users`, local accounts an admin registers. The caller's uid (from
/// the kernel, per FUSE request) finds its user; authorization reads the result from the
/// catalog (Core/Authorization.swift).
final class UserService: UsersAPI, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore
    /// A local account's uid by name (`getpwnam`; tests give their own).
    let accounts: @Sendable (String) -> UInt32?

    init(core: EngineCore, accounts: @escaping @Sendable (String) -> UInt32?) {
        self.core = core
        self.accounts = accounts
    }

    static func userRef(_ name: String) -> ObjectRef { ObjectRef("user", name, readers: .admins) }

    /// Loads users, projects, role assignments and quota limits into the catalog.
    func load() throws(CloudError) {
        var identity = IdentityCatalog(projects: try core.store.projects(), users: try core.store.users(),
                                       memberships: try core.store.memberships(), quotas: try core.store.quotas())
        identity.owner = core.config.ownerUID
        core.directory.withLock { $0 = identity }
    }

    func list(_ caller: Caller) -> [UserInfo] {
        core.directory.withLock { d in d.users.keys.sorted().compactMap { userInfo($0, d) } }
            .filter { seesUser($0, caller) }
    }

    func get(_ name: String, _ caller: Caller) -> UserInfo? {
        guard let u = core.directory.withLock({ userInfo(name, $0) }), seesUser(u, caller) else { return nil }
        return u
    }

    /// A user sees their own entry; an admin sees all.
    private func seesUser(_ u: UserInfo, _ caller: Caller) -> Bool {
        u.uid == caller.uid || core.visible(caller, Self.userRef(u.name))
    }

    private func userInfo(_ name: String, _ id: IdentityCatalog) -> UserInfo? {
        guard let u = id.users[name] else { return nil }
        return UserInfo(name: u.name, uid: UInt32(u.uid), project: id.currentProject(of: Caller(uid: UInt32(u.uid), gid: 0, pid: 0)) ?? "",
                        roles: id.roles(of: u.name))
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        let rec = try core.refusing("user", name, caller) { () throws(CloudError) -> UserRecord in
            try core.authorize(caller, .administer("register users"), Self.userRef(name))
            guard let uid = accounts(name) else { throw CloudError.invalid("there is no local account named '\(name.prefix(64))'") }
            let rec = UserRecord(name: name, uid: uid)
            try core.write({ (s) throws(CloudError) in try s.insertUser(rec) }) { _, _ in core.directory.withLock { $0.put(rec) } }
            return rec
        }
        core.events.append(kind: "user.created", object: name, ["uid": "\(rec.uid)", "by": "\(caller.uid)"])
        core.announce(.user, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let projects = try core.refusing("user", name, caller) { () throws(CloudError) -> [String] in
            try core.authorize(caller, .administer("unregister users"), Self.userRef(name))
            guard let u = get(name, caller) else { throw CloudError.notFound("no user named '\(name)'") }
            try core.write({ (s) throws(CloudError) in try s.deleteUser(name) }) { _, _ in core.directory.withLock { $0.removeUser(name) } }
            return u.roles.keys.sorted()
        }
        core.events.append(kind: "user.deleted", object: name, ["by": "\(caller.uid)"])
        core.announce(.user, name)
        for p in projects { core.announce(.project, p) }
    }

    func setProject(_ name: String, _ project: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("user", name, caller) { () throws(CloudError) in
            guard let u = get(name, caller) else { throw CloudError.notFound("no user named '\(name)'") }
            if u.uid != caller.uid { try core.authorize(caller, .administer("choose another user's project"), Self.userRef(name)) }
            try core.write({ (s) throws(CloudError) in try s.setUserProject(name, project) }) { _, rec in core.directory.withLock { $0.put(rec) } }
        }
        core.events.append(kind: "user.updated", object: name, ["project": project, "uid": "\(caller.uid)"])
        core.announce(.user, name)
    }
}

extension UserService {
    /// The local account database (`getpwnam_r`).
    @Sendable static func localAccount(_ name: String) -> UInt32? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &pwd, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return pwd.pw_uid
    }
}
