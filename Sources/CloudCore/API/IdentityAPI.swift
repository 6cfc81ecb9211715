extension ChangeNotice.Kind {
    public static let user = ChangeNotice.Kind(rawValue: "user")
    public static let project = ChangeNotice.Kind(rawValue: "project")
}

/// Keystone's users: `/users`. A user is a local account, registered by an admin; the
/// caller's uid (from the kernel, per request) finds it.
public protocol UsersAPI: AnyObject, Sendable {
    /// Every user for the admin; yourself otherwise.
    func list(_ caller: Caller) -> [UserInfo]
    func get(_ name: String, _ caller: Caller) -> UserInfo?
    /// `mkdir /users/NAME` (admin): `EINVAL` when there is no local account NAME.
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /users/NAME` (admin).
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// `users/NAME/project` (the user or an admin): only a project the user belongs to.
    func setProject(_ name: String, _ project: String, _ caller: Caller) throws(CloudError)
}

/// Keystone's projects with Nova's and Cinder's quotas: `/projects`.
public protocol ProjectsAPI: AnyObject, Sendable {
    /// Every project for the admin; the caller's own otherwise.
    func list(_ caller: Caller) -> [ProjectInfo]
    func get(_ name: String, _ caller: Caller) -> ProjectInfo?
    /// `mkdir /projects/NAME` (admin).
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /projects/NAME` (admin): `EBUSY` while it owns objects.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// `projects/NAME/members` (admin or the project's managers): replaces the role assignments.
    func setMembers(_ name: String, _ members: [String: Role], _ caller: Caller) throws(CloudError)
    /// `projects/NAME/quota/RESOURCE` (admin): -1 is unlimited.
    func setQuota(_ name: String, _ resource: QuotaResource, _ limit: Int, _ caller: Caller) throws(CloudError)
}
