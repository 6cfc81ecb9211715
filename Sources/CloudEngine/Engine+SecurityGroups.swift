import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Nova's security groups (os-security-groups) with nova-network's firewall driver: a
/// group is a list of ingress rules; every instance is in `default`, which starts empty
/// (ingress denied except replies and DHCP, egress allowed: write rules to open it). The
/// rules reach the host as one nftables chain per instance port (`NftablesRuleset`).
extension Engine {
    public func securityGroups() -> [SecurityGroupInfo] {
        catalog.withLock { c in c.securityGroups.values.sorted { $0.name < $1.name }.map(Self.groupInfo) }
    }

    public func securityGroup(_ name: String) -> SecurityGroupInfo? {
        catalog.withLock { c in c.securityGroups[name].map(Self.groupInfo) }
    }

    static func groupInfo(_ g: SecurityGroupRecord) -> SecurityGroupInfo {
        SecurityGroupInfo(name: g.name, rules: g.rules, ownerUID: UInt32(g.ownerUid))
    }

    /// The rules that apply to an instance: the union of its groups' rules (no group: no
    /// ingress at all but replies and DHCP).
    func securityRules(for instanceID: String, _ c: Catalog) -> [SecurityGroupRule] {
        guard let r = c.instanceNames[instanceID].flatMap({ c.instances[$0] }) else { return [] }
        var out: [SecurityGroupRule] = []
        for g in r.securityGroupNames {
            for rule in (try? SecurityGroupRule.parseRules(c.securityGroups[g]?.rules ?? "")) ?? [] where !out.contains(rule) {
                out.append(rule)
            }
        }
        return out
    }

    /// `instances/NAME/security_groups`: the groups, one name per line (or separated by
    /// spaces or commas); each must exist. Applies at once to a running instance.
    func setSecurityGroups(_ name: String, _ value: String, caller: Caller) throws(CloudError) {
        let names = try refusing("instance", name, caller) { () throws(CloudError) -> [String] in
            let r = try actionTarget(name, caller)
            var names: [String] = []
            for n in value.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
            where !names.contains(n) {
                guard catalog.withLock({ $0.securityGroups[n] }) != nil else { throw CloudError.notFound("no security group named '\(n.prefix(80))'") }
                names.append(n)
            }
            let joined = names.joined(separator: "\n")
            guard commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id) { $0.securityGroups = joined }
            }) != nil else { throw CloudError.busy("\(name) is being deleted") }
            return names
        }
        events.append(kind: "instance.security_groups", object: name, ["groups": names.isEmpty ? "-" : names.joined(separator: ","), "uid": "\(caller.uid)"])
        try applyRuleset()
    }

    public func createSecurityGroup(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("security_group", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "security group")
            let g = SecurityGroupRecord(name: name, ownerUID: caller.uid)
            mutation.lock(); defer { mutation.unlock() }
            try store.insertSecurityGroup(g)
            catalog.withLock { $0.securityGroups[name] = g }
        }
        events.append(kind: "security_group.created", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.securityGroup, name))
    }

    public func deleteSecurityGroup(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("security_group", name, caller) { () throws(CloudError) in
            guard let g = catalog.withLock({ $0.securityGroups[name] }) else { throw CloudError.notFound("no security group named '\(name)'") }
            guard name != "default" else { throw CloudError.busy("the default security group cannot be removed") }
            guard caller.isAdmin || UInt32(g.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "security group '\(name)' is not yours") }
            let users = catalog.withLock { c in c.instances.values.filter { $0.securityGroupNames.contains(name) }.map(\.name).sorted() }
            guard users.isEmpty else {
                throw CloudError.busy("security group '\(name)' is in use by \(users.prefix(5).joined(separator: ", "))\(users.count > 5 ? " …" : "")")
            }
            mutation.lock(); defer { mutation.unlock() }
            try store.deleteSecurityGroup(name)
            catalog.withLock { $0.securityGroups[name] = nil }
        }
        events.append(kind: "security_group.deleted", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.securityGroup, name))
    }

    public func setSecurityGroupRules(_ name: String, rules: String, caller: Caller) throws(CloudError) {
        let count = try refusing("security_group", name, caller) { () throws(CloudError) -> Int in
            guard var g = catalog.withLock({ $0.securityGroups[name] }) else { throw CloudError.notFound("no security group named '\(name)'") }
            guard caller.isAdmin || UInt32(g.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "security group '\(name)' is not yours") }
            let parsed = try SecurityGroupRule.parseRules(bytes: Array(rules.utf8))
            g.rules = SecurityGroupRule.render(parsed)
            mutation.lock(); defer { mutation.unlock() }
            try store.updateSecurityGroup(g)
            catalog.withLock { $0.securityGroups[name] = g }
            return parsed.count
        }
        events.append(kind: "security_group.updated", object: name, ["rules": "\(count)", "uid": "\(caller.uid)"])
        announce(ChangeNotice(.securityGroup, name))
        try applyRuleset()
    }
}
