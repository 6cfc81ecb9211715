import CloudCore
import CloudStore
import Foundation

/// Keystone's projects with Nova's and Cinder's quotas: `/projects`, their role
/// assignments (`members`), limits (`quota/`) and live usage (`usage/`). Quotas are
/// enforced by the store, inside the transactions that claim (Store+Identity.swift).
final class ProjectService: ProjectsAPI, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore

    init(core: EngineCore) { self.core = core }

    static func projectRef(_ name: String) -> ObjectRef { ObjectRef("project", name, project: name) }

    func list(_ caller: Caller) -> [ProjectInfo] {
        let names = core.directory.withLock { $0.projects.keys.sorted() }
        return names.filter { core.visible(caller, Self.projectRef($0)) }.compactMap { projectInfo($0) }
    }

    func get(_ name: String, _ caller: Caller) -> ProjectInfo? {
        guard core.directory.withLock({ $0.projects[name] }) != nil, core.visible(caller, Self.projectRef(name)) else { return nil }
        return projectInfo(name)
    }

    /// The project with its usage counted now (from the store: the same sums the quota
    /// checks use, so what `usage/` shows is what the next request meets).
    private func projectInfo(_ name: String) -> ProjectInfo? {
        guard let (p, members, limits) = core.directory.withLock({ d -> (ProjectRecord, [String: Role], [QuotaResource: Int])? in
            guard let p = d.projects[name] else { return nil }
            let limits = Dictionary(uniqueKeysWithValues: QuotaResource.allCases.map { ($0, d.limit(name, $0)) })
            return (p, d.roles[name] ?? [:], limits)
        }) else { return nil }
        let usage: [QuotaResource: Int]
        do throws(CloudError) { usage = try core.store.usage(project: name) } catch {
            core.recordFailure(error, kind: "project", object: name, doing: "count usage")
            usage = [:]
        }
        return ProjectInfo(name: p.name, gid: UInt32(p.gid), members: members, quota: limits, usage: usage, created: p.created)
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        let rec = try core.refusing("project", name, caller) { () throws(CloudError) -> ProjectRecord in
            try ObjectName.validate(name, kind: "project")
            try core.authorize(caller, .administer("create projects"), Self.projectRef(name))
            return try core.write({ (s) throws(CloudError) in try s.insertProject(name) }) { _, p in core.directory.withLock { $0.projects[name] = p } }
        }
        core.events.append(kind: "project.created", object: name, ["gid": "\(rec.gid)", "project": name, "uid": "\(caller.uid)"])
        core.announce(.project, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let members = try core.refusing("project", name, caller) { () throws(CloudError) -> [String] in
            try core.authorize(caller, .administer("delete projects"), Self.projectRef(name))
            guard let p = get(name, caller) else { throw CloudError.notFound("no project named '\(name)'") }
            guard name != "default" else { throw CloudError.busy("project 'default' is where the cloud's own objects live; it stays") }
            try core.write({ (s) throws(CloudError) in try s.deleteProject(name) }) { _, _ in
                core.directory.withLock { $0.removeProject(name) }
            }
            return p.members.keys.sorted()
        }
        core.events.append(kind: "project.deleted", object: name, ["project": name, "uid": "\(caller.uid)"])
        core.announce(.project, name)
        for u in members { core.announce(.user, u) }
    }

    func setMembers(_ name: String, _ members: [String: Role], _ caller: Caller) throws(CloudError) {
        let before = try core.refusing("project", name, caller) { () throws(CloudError) -> [String: Role] in
            guard let p = get(name, caller) else { throw CloudError.notFound("no project named '\(name)'") }
            try core.authorize(caller, .manage, Self.projectRef(name))
            // Only an admin hands out the admin role (it is cloud-wide).
            let granted = members.filter { $0.value == .admin && p.members[$0.key] != .admin }
            if !granted.isEmpty { try core.authorize(caller, .administer("grant the admin role"), Self.projectRef(name)) }
            try core.write({ (s) throws(CloudError) in try s.setMembers(name, members) }) { _, _ in
                core.directory.withLock { $0.setRoles(name, members) }
            }
            return p.members
        }
        core.events.append(kind: "project.members", object: name, [
            "members": members.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.rawValue)" }.joined(separator: ","),
            "project": name, "uid": "\(caller.uid)",
        ])
        core.announce(.project, name)
        for u in Set(before.keys).union(members.keys) { core.announce(.user, u) }
    }

    func setQuota(_ name: String, _ resource: QuotaResource, _ limit: Int, _ caller: Caller) throws(CloudError) {
        try core.refusing("project", name, caller) { () throws(CloudError) in
            guard get(name, caller) != nil else { throw CloudError.notFound("no project named '\(name)'") }
            try core.authorize(caller, .administer("change quotas"), Self.projectRef(name))
            guard limit >= -1 else { throw CloudError.invalid("quota \(resource.rawValue): \(limit) is not a limit (-1 is unlimited)") }
            try core.write({ (s) throws(CloudError) in try s.setQuota(name, resource, limit) }) { _, _ in
                core.directory.withLock { $0.limits[name, default: [:]][resource] = limit }
            }
        }
        core.events.append(kind: "project.quota", object: name, [resource.rawValue: "\(limit)", "project": name, "uid": "\(caller.uid)"])
        core.announce(.project, name)
    }
}
