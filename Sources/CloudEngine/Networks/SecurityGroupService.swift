import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Nova's security groups (os-security-groups) with nova-network's firewall driver:
/// `/security-groups`. A group is a list of ingress rules; every instance is in `default`,
/// which starts empty (ingress denied except replies and DHCP, egress allowed: write rules
/// to open it). The rules reach the host as one nftables chain per instance port.
final class SecurityGroupService: SecurityGroupsAPI, @unchecked Sendable {
    // @unchecked: immutable after init.
    let core: EngineCore
    let host: NetworkHost

    init(core: EngineCore, host: NetworkHost) { self.core = core; self.host = host }

    /// The `default` group belongs to no project: every user sees it, only an admin changes it.
    static func ref(_ g: SecurityGroupRecord) -> ObjectRef {
        ObjectRef("security group", g.name, ownerUID: UInt32(g.ownerUid), project: g.project)
    }

    /// The `default` group, then every group.
    func load() throws(CloudError) {
        try core.store.ensureSecurityGroup(SecurityGroupRecord(name: "default"))
        let groups = try core.store.securityGroups()
        core.catalog.withLock { c in for g in groups { c.securityGroups[g.name] = g } }
    }

    func list(_ caller: Caller) -> [SecurityGroupInfo] {
        core.catalog.withLock { c in c.securityGroups.values.sorted { $0.name < $1.name } }
            .filter { core.visible(caller, Self.ref($0)) }.map(Self.info)
    }

    func get(_ name: String, _ caller: Caller) -> SecurityGroupInfo? {
        guard let g = core.catalog.withLock({ $0.securityGroups[name] }), core.visible(caller, Self.ref(g)) else { return nil }
        return Self.info(g)
    }

    static func info(_ g: SecurityGroupRecord) -> SecurityGroupInfo {
        SecurityGroupInfo(name: g.name, rules: g.rules, ownerUID: UInt32(g.ownerUid), project: g.project)
    }

    /// The group by name, if `caller` may change it.
    private func owned(_ name: String, _ caller: Caller) throws(CloudError) -> SecurityGroupRecord {
        guard let g = core.catalog.withLock({ $0.securityGroups[name] }), core.visible(caller, Self.ref(g)) else {
            throw CloudError.notFound("no security group named '\(name)'")
        }
        try core.authorize(caller, .change, Self.ref(g))
        return g
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("security_group", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "security group")
            try core.authorize(caller, .create, ObjectRef("security group", name))
            let g = SecurityGroupRecord(name: name, ownerUID: caller.uid, project: try core.project(of: caller))
            try core.write({ (s) throws(CloudError) in try s.insertSecurityGroup(g) }) { c, _ in c.securityGroups[name] = g }
        }
        core.events.append(kind: "security_group.created", object: name, ["uid": "\(caller.uid)"])
        core.announce(.securityGroup, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("security_group", name, caller) { () throws(CloudError) in
            guard core.catalog.withLock({ $0.securityGroups[name] }) != nil else { throw CloudError.notFound("no security group named '\(name)'") }
            guard name != "default" else { throw CloudError.busy("the default security group cannot be removed") }
            _ = try owned(name, caller)
            let users = core.catalog.withLock { c in c.instances.values.filter { $0.securityGroupNames.contains(name) }.map(\.name).sorted() }
            guard users.isEmpty else {
                throw CloudError.busy("security group '\(name)' is in use by \(users.prefix(5).joined(separator: ", "))\(users.count > 5 ? " …" : "")")
            }
            try core.write({ (s) throws(CloudError) in try s.deleteSecurityGroup(name) }) { c, _ in c.securityGroups[name] = nil }
        }
        core.events.append(kind: "security_group.deleted", object: name, ["uid": "\(caller.uid)"])
        core.announce(.securityGroup, name)
    }

    func setRules(_ name: String, _ rules: String, _ caller: Caller) throws(CloudError) {
        let count = try core.refusing("security_group", name, caller) { () throws(CloudError) -> Int in
            var g = try owned(name, caller)
            let parsed = try SecurityGroupRule.parseRules(bytes: Array(rules.utf8))
            g.rules = SecurityGroupRule.render(parsed)
            let updated = g
            try core.write({ (s) throws(CloudError) in try s.updateSecurityGroup(updated) }) { c, _ in c.securityGroups[name] = updated }
            return parsed.count
        }
        core.events.append(kind: "security_group.updated", object: name, ["rules": "\(count)", "uid": "\(caller.uid)"])
        core.announce(.securityGroup, name)
        try host.applyRuleset()
    }
}
