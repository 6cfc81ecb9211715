import CloudCore

extension Collections {
    /// `/users/NAME/`: Keystone users, local accounts an admin registers with mkdir.
    /// `uid` (ro), `project` (rw by the user: where their new objects go), `projects` (ro,
    /// `PROJECT ROLE` lines).
    static let users = Collection.of(
        "users", notice: .user, noun: "user",
        members: .directories([
            .text("uid", UserInfo.self) { String($0.uid) },
            .text("project", UserInfo.self, .readWrite, { $0.project }) { w, name, v throws(CloudError) in
                try w.api.users.setProject(name, v.trimmingCharacters(in: .whitespacesAndNewlines), w.caller)
            },
            .lines("projects", UserInfo.self) { u in u.roles.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.rawValue)" } },
        ]),
        list: { ctx in ctx.api.users.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.users.get(name, ctx.caller) },
        describe: { u in Member(name: u.name, owner: u.uid, object: u) },
        create: { w, name throws(CloudError) in try w.api.users.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.users.delete(name, w.caller) })

    /// `/projects/NAME/`: Keystone projects. `members` (rw for the admin and the project's
    /// managers, `USER ROLE` lines), `gid` (ro), `quota/` (one file per limit, rw for the
    /// admin, -1 unlimited) and `usage/` (the same names, counted live).
    static let projects = Collection.of(
        "projects", notice: .project, noun: "project",
        members: .directories([
            .text("gid", ProjectInfo.self) { String($0.gid) },
            severalLines(emptied(.lines("members", ProjectInfo.self, .readWrite, { $0.memberLines }) { w, name, v throws(CloudError) in
                try w.api.projects.setMembers(name, try w.parse { () throws(CloudError) in try ProjectInfo.parseMembers(v) }, w.caller)
            })),
        ], keys: [quotaDirectory, usageDirectory]),
        list: { ctx in ctx.api.projects.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.projects.get(name, ctx.caller) },
        describe: { p in Member(name: p.name, created: p.created, project: p.name, object: p) },
        create: { w, name throws(CloudError) in try w.api.projects.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.projects.delete(name, w.caller) })

    static let quotaDirectory = KeyDirectory(
        name: "quota",
        entries: { obj in
            guard let p = obj as? ProjectInfo else { return [:] }
            return Dictionary(uniqueKeysWithValues: p.quota.map { ($0.key.rawValue, String($0.value)) })
        },
        set: { w, project, key, value throws(CloudError) in
            guard let resource = QuotaResource(rawValue: key) else { throw CloudError.invalid("no quota named '\(key.prefix(64))'") }
            guard let value else { throw CloudError.notPermitted("quota/\(key) cannot be removed; write -1 for unlimited") }
            let limit = try w.parse { () throws(CloudError) -> Int in
                guard let n = Int(value.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw CloudError.invalid("quota/\(key): '\(value.prefix(32))' is not a number (-1 is unlimited)")
                }
                return n
            }
            try w.api.projects.setQuota(project, resource, limit, w.caller)
        },
        isKey: { QuotaResource(rawValue: $0) != nil })

    static let usageDirectory = KeyDirectory(
        name: "usage",
        entries: { obj in
            guard let p = obj as? ProjectInfo else { return [:] }
            return Dictionary(uniqueKeysWithValues: QuotaResource.allCases.map { ($0.rawValue, String(p.usage[$0] ?? 0)) })
        },
        set: { _, _, key, _ throws(CloudError) in throw CloudError.readOnly("usage/\(key) is counted, not set") },
        isKey: { QuotaResource(rawValue: $0) != nil },
        access: .readOnly, countsOthers: true)
}
