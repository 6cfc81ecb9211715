import CloudCore
import CloudScheduler
import CloudStore

/// Nova's server groups (os-server-groups): `/groups`, a policy and its members. Members
/// are placed by ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter, re-checked
/// inside the claim transaction so concurrent builds of one group cannot break the policy.
final class ServerGroupService: ServerGroupsAPI, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore

    init(core: EngineCore) { self.core = core }

    static func ref(_ g: GroupInfo) -> ObjectRef { ObjectRef("group", g.name, ownerUID: g.ownerUID, project: g.project) }

    func list(_ caller: Caller) -> [GroupInfo] {
        core.catalog.withLock { c in c.groups.values.map { info($0, c) } }
            .filter { core.visible(caller, Self.ref($0)) }.sorted { $0.name < $1.name }
    }

    func get(_ name: String, _ caller: Caller) -> GroupInfo? {
        guard let g = core.catalog.withLock({ c in c.groups[name].map { info($0, c) } }),
              core.visible(caller, Self.ref(g)) else { return nil }
        return g
    }

    private func info(_ g: ServerGroupRecord, _ c: Catalog) -> GroupInfo {
        GroupInfo(name: g.name, policy: g.policy,
                  members: c.instances.values.filter { $0.groupName == g.name }.map(\.name).sorted(),
                  ownerUID: UInt32(g.ownerUid), project: g.project)
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        let g = try core.refusing("group", name, caller) { () throws(CloudError) -> ServerGroupRecord in
            try ObjectName.validate(name, kind: "group")
            try core.authorize(caller, .create, ObjectRef("group", name))
            let g = ServerGroupRecord(name: name, policy: ServerGroupPolicy.antiAffinity.rawValue, ownerUID: caller.uid,
                                      project: try core.project(of: caller))
            do throws(CloudError) {
                try core.write({ (s) throws(CloudError) in try s.insertGroup(g) }) { c, _ in c.groups[name] = g }
            } catch where error.errno == .exists {
                throw CloudError.exists("group '\(name)' already exists")
            }
            return g
        }
        core.events.append(kind: "group.created", object: name, ["policy": "anti-affinity", "project": g.project, "uid": "\(caller.uid)"])
        core.announce(.group, name)
    }

    func setPolicy(_ name: String, _ policy: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("group", name, caller) { () throws(CloudError) in
            guard let g = get(name, caller) else { throw CloudError.notFound("no group named '\(name)'") }
            try core.authorize(caller, .change, Self.ref(g))
            let p = try ServerGroupPolicy(parsing: policy)
            guard g.members.isEmpty else { throw CloudError.busy("group '\(name)' has members; its policy is fixed") }
            let rec = ServerGroupRecord(name: name, policy: p.rawValue, ownerUID: g.ownerUID, project: g.project)
            try core.write({ (s) throws(CloudError) in try s.updateGroup(rec) }) { c, _ in c.groups[name] = rec }
        }
        core.events.append(kind: "group.updated", object: name, ["policy": policy])
        core.announce(.group, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("group", name, caller) { () throws(CloudError) in
            guard let g = get(name, caller) else { throw CloudError.notFound("no group named '\(name)'") }
            try core.authorize(caller, .change, Self.ref(g))
            guard g.members.isEmpty else {
                throw CloudError.busy("group '\(name)' has member(s) \(g.members.prefix(5).joined(separator: ", "))")
            }
            // The default that names it goes in the same transaction.
            try core.write({ (s) throws(CloudError) in try s.deleteGroup(name) }) { c, clearedDefault in
                c.groups[name] = nil
                if clearedDefault { c.settings[.defaultValue(.group)] = nil }
            }
        }
        core.events.append(kind: "group.deleted", object: name, ["uid": "\(caller.uid)"])
        core.announce(.group, name)
    }

    /// Loads the groups.
    func load() throws(CloudError) {
        let groups = try core.store.groups()
        core.catalog.withLock { c in for g in groups { c.groups[g.name] = g } }
    }
}
