import CloudCore
import Foundation

/// The one authorization seam (Keystone's policy enforcement, in spirit): every API call,
/// reading or mutating, asks `authorize` about its caller and its object, and listings
/// keep only what `visible` allows. Today's rules: everyone sees everything; only the
/// admin (uid 0) administers; an object's owner or the admin changes it; a locked
/// instance refuses non-admins. The projects-and-quotas work fills in project membership
/// and roles here, and nowhere else.
extension EngineCore {
    /// Throws the refusal for `caller` doing `access` to `object`: `EACCES` "… is not
    /// yours", `EPERM` "only an admin may …" or "… is locked". Not recorded here: the
    /// calling API method records every refusal it throws.
    func authorize(_ caller: Caller, _ access: Access, _ object: ObjectRef) throws(CloudError) {
        if let refusal = decide(caller, access, object) { throw refusal }
    }

    /// Whether `caller` may see `object` (listings and lookups skip what it may not).
    func visible(_ caller: Caller, _ object: ObjectRef) -> Bool {
        decide(caller, .read, object) == nil
    }

    /// The policy: nil when allowed, otherwise the refusal.
    private func decide(_ caller: Caller, _ access: Access, _ object: ObjectRef) -> CloudError? {
        if caller.isAdmin { return nil }
        switch access {
        case .read, .create:
            return nil
        case .administer(let what):
            return CloudError.notPermitted("only an admin may \(what)")
        case .change, .operate:
            if let owner = object.ownerUID, owner != caller.uid {
                return CloudError(.accessDenied, "\(object.kind) '\(object.name)' is not yours")
            }
            if access == .operate, object.locked {
                return CloudError.notPermitted("\(object.kind) '\(object.name)' is locked")
            }
            return nil
        }
    }

    /// The project a caller's new objects go into: `/defaults/project`, else the caller's
    /// user name (Keystone's default project, until projects exist).
    func project(of caller: Caller) -> String {
        if let p = setting(.defaultValue(.project)), !p.isEmpty { return p }
        guard let pw = getpwuid(caller.uid), let n = pw.pointee.pw_name else { return "uid-\(caller.uid)" }
        return String(cString: n)
    }
}
