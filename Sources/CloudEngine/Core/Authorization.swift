import CloudCore
import Foundation

/// The one authorization seam (Keystone's policy enforcement): every API call, reading or
/// mutating, asks `authorize` about its caller and its object, and listings keep only what
/// `visible` allows. The rules:
///
/// - uid 0 and users holding the `admin` role may do everything.
/// - A caller with no `/users` entry may do nothing (`EACCES`).
/// - Roles imply the ones below them (reader < member < manager < admin): a reader sees
///   the project's objects, a member also creates, acts on and deletes them, a manager
///   also edits the project's `members`.
/// - An object of no project (a flavor, a network, the `default` security group) is seen
///   by every user and changed only by an admin; `Readers` widens (a public or shared
///   image) or narrows (hosts, /config) who sees an object.
/// - Nova's lock: a locked instance refuses actions by non-admins.
extension EngineCore {
    /// Throws the refusal for `caller` doing `access` to `object`: `EACCES` with the
    /// reason, or `EPERM` "… is locked". Not recorded here: the calling API method
    /// records every refusal it throws.
    func authorize(_ caller: Caller, _ access: Access, _ object: ObjectRef) throws(CloudError) {
        if let refusal = decide(caller, access, object) { throw refusal }
    }

    /// Whether `caller` may see `object` (listings and lookups skip what it may not: an
    /// object of another project is ENOENT, as Nova answers 404 for another project's server).
    func visible(_ caller: Caller, _ object: ObjectRef) -> Bool {
        decide(caller, .read, object) == nil
    }

    /// Who `caller` is to the cloud.
    func identity(of caller: Caller) -> CallerIdentity {
        directory.withLock { $0.identity(of: caller) }
    }

    /// The project a caller's new objects go into: a user's chosen project (else the first
    /// they belong to); for uid 0 and the cloud's own uid `/defaults/project` when it names
    /// a project, else `default`. `EACCES` for a user who belongs to no project.
    func project(of caller: Caller) throws(CloudError) -> String {
        let wanted = setting(.defaultValue(.project))
        let chosen = directory.withLock { d -> String? in
            guard d.isOwner(caller.uid) else { return d.currentProject(of: caller) }
            return wanted.flatMap { d.projects[$0] != nil ? $0 : nil } ?? "default"
        }
        guard let chosen else { throw Self.belongsToNoProject(caller) }
        return chosen
    }

    private static func belongsToNoProject(_ caller: Caller) -> CloudError {
        CloudError(.accessDenied, "uid \(caller.uid) belongs to no project (an admin adds it to one in /projects/NAME/members)")
    }

    /// The policy: nil when allowed, otherwise the refusal.
    private func decide(_ caller: Caller, _ access: Access, _ object: ObjectRef) -> CloudError? {
        let who = identity(of: caller)
        if who.isAdmin { return nil }
        guard who.isRegistered else {
            return CloudError(.accessDenied, "uid \(caller.uid) is not a user of this cloud (an admin registers it with mkdir /users/NAME)")
        }
        let role = object.project.isEmpty ? nil : who.roles[object.project]
        switch access {
        case .read:
            switch object.readers {
            case .admins: return CloudError(.accessDenied, "only an admin may see \(object.kind)s")
            case .everyone: return nil
            case .project: if object.project.isEmpty || role != nil { return nil }
            case .projects(let others): if role != nil || others.contains(where: { who.roles[$0] != nil }) { return nil }
            }
            return CloudError.notFound("no \(object.kind) named '\(object.name)'")
        case .create:
            let target: String? = object.project.isEmpty ? directory.withLock { $0.currentProject(of: caller) } : object.project
            guard let target else { return Self.belongsToNoProject(caller) }
            guard let r = who.roles[target], r >= .member else {
                return CloudError(.accessDenied, "creating a \(object.kind) in project '\(target)' needs the member role")
            }
            return nil
        case .administer(let what):
            return CloudError(.accessDenied, "only an admin may \(what)")
        case .change, .operate, .manage:
            if object.project.isEmpty {
                return CloudError(.accessDenied, "only an admin may change \(object.kind) '\(object.name)'")
            }
            guard let role else {
                // Seen but not ours (a shared or public image): refused; unseen: not there.
                if decide(caller, .read, object) == nil {
                    return CloudError(.accessDenied, "\(object.kind) '\(object.name)' belongs to project '\(object.project)', not one of yours")
                }
                return CloudError.notFound("no \(object.kind) named '\(object.name)'")
            }
            let needed: Role = access == .manage ? .manager : .member
            guard role >= needed else {
                return CloudError(.accessDenied, "\(access == .manage ? "changing the members of" : "changing") \(object.kind) '\(object.name)' needs the \(needed.rawValue) role in project '\(object.project)' (yours: \(role.rawValue))")
            }
            if access == .operate, object.locked {
                return CloudError.notPermitted("\(object.kind) '\(object.name)' is locked")
            }
            return nil
        }
    }
}
