import CloudCore
import CloudScheduler
import CloudStore

/// Nova's server groups (os-server-groups): a policy and its members. Members are placed
/// by ServerGroupAffinityFilter / ServerGroupAntiAffinityFilter, re-checked inside the
/// claim transaction so concurrent builds of one group cannot break the policy.
extension Engine {
    public func groups() -> [GroupInfo] {
        catalog.withLock { c in c.groups.values.map { groupInfo($0, c) }.sorted { $0.name < $1.name } }
    }

    public func group(_ name: String) -> GroupInfo? {
        catalog.withLock { c in c.groups[name].map { groupInfo($0, c) } }
    }

    func groupInfo(_ g: ServerGroupRecord, _ c: Catalog) -> GroupInfo {
        GroupInfo(name: g.name, policy: g.policy,
                  members: c.instances.values.filter { $0.groupName == g.name }.map(\.name).sorted(),
                  ownerUID: UInt32(g.ownerUid))
    }

    public func createGroup(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("group", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "group")
            let g = ServerGroupRecord(name: name, policy: ServerGroupPolicy.antiAffinity.rawValue, ownerUID: caller.uid)
            mutation.lock(); defer { mutation.unlock() }
            do throws(CloudError) { try store.insertGroup(g) } catch where error.errno == .exists {
                throw CloudError.exists("group '\(name)' already exists")
            }
            catalog.withLock { $0.groups[name] = g }
        }
        events.append(kind: "group.created", object: name, ["policy": "anti-affinity", "uid": "\(caller.uid)"])
        announce(ChangeNotice(.group, name))
    }

    public func setGroupPolicy(_ name: String, _ policy: String, caller: Caller) throws(CloudError) {
        try refusing("group", name, caller) { () throws(CloudError) in
            guard let g = group(name) else { throw CloudError.notFound("no group named '\(name)'") }
            guard caller.isAdmin || caller.uid == g.ownerUID else { throw CloudError(.accessDenied, "group '\(name)' is not yours") }
            let p = try ServerGroupPolicy(parsing: policy)
            guard g.members.isEmpty else { throw CloudError.busy("group '\(name)' has members; its policy is fixed") }
            mutation.lock(); defer { mutation.unlock() }
            let rec = ServerGroupRecord(name: name, policy: p.rawValue, ownerUID: g.ownerUID)
            try store.updateGroup(rec)
            catalog.withLock { $0.groups[name] = rec }
        }
        events.append(kind: "group.updated", object: name, ["policy": policy])
        announce(ChangeNotice(.group, name))
    }

    public func deleteGroup(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("group", name, caller) { () throws(CloudError) in
            guard let g = group(name) else { throw CloudError.notFound("no group named '\(name)'") }
            guard caller.isAdmin || caller.uid == g.ownerUID else { throw CloudError(.accessDenied, "group '\(name)' is not yours") }
            guard g.members.isEmpty else {
                throw CloudError.busy("group '\(name)' has member(s) \(g.members.prefix(5).joined(separator: ", "))")
            }
            mutation.lock(); defer { mutation.unlock() }
            try store.deleteGroup(name)
            catalog.withLock { c in
                c.groups[name] = nil
                if c.settings["default.group"] == name { c.settings["default.group"] = nil }
            }
            if (try? store.setting("default.group")) == name { try store.setSetting("default.group", "") }
        }
        events.append(kind: "group.deleted", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.group, name))
    }

    /// The scheduler's view of the instance's group: policy and where the other members are.
    func groupSpec(_ r: InstanceRecord) -> ServerGroupSpec? {
        guard let name = r.groupName else { return nil }
        return catalog.withLock { c in
            guard let g = c.groups[name], let policy = ServerGroupPolicy(rawValue: g.policy) else { return nil }
            let hosts = c.instances.values.filter { $0.groupName == name && $0.id != r.id }.compactMap(\.host)
            return ServerGroupSpec(name: name, policy: policy, hosts: hosts)
        }
    }
}
