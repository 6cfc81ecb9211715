import Foundation

/// A change the tree must show: the FUSE layer invalidates its kernel caches for it.
public struct ChangeNotice: Sendable, Equatable {
    /// Which collection the changed object belongs to. Open for extension: a new collection
    /// declares its kind beside its API (`extension ChangeNotice.Kind { static let x = ... }`).
    public struct Kind: RawRepresentable, Hashable, Sendable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public static let instance = Kind(rawValue: "instance")
        public static let image = Kind(rawValue: "image")
        public static let flavor = Kind(rawValue: "flavor")
        public static let host = Kind(rawValue: "host")
        public static let group = Kind(rawValue: "group")
        public static let network = Kind(rawValue: "network")
        public static let floatingIP = Kind(rawValue: "floatingIP")
        public static let securityGroup = Kind(rawValue: "securityGroup")
        /// `/defaults`, `/config`, `/scheduler`: the name is the file (key) that changed.
        public static let defaults = Kind(rawValue: "defaults")
        public static let config = Kind(rawValue: "config")
        public static let scheduler = Kind(rawValue: "scheduler")
    }
    public var kind: Kind
    public var name: String
    public init(_ kind: Kind, _ name: String) { self.kind = kind; self.name = name }
}

/// What the FUSE layer asks of the cloud (the "CloudAPI" arrow of DESIGN.md), one service
/// per concept. Reads come from memory and never block; mutations validate synchronously,
/// record their effect, enqueue the slow part, and return. Every call names its caller:
/// the cloud decides what each caller may see and do (one `authorize` seam). Every refusal
/// throws a `CloudError` whose reason the cloud has already written to `/events` (and to
/// the object's `fault`).
public protocol CloudAPI: AnyObject, Sendable {
    /// The text of `/README`.
    var readme: String { get }
    /// The whole `/events` log (what the admin reads).
    var events: EventLog { get }
    /// The `/events` `caller` reads: the whole log for an admin, only the lines about
    /// their projects for anyone else.
    func events(for caller: Caller) -> EventLog
    /// Registers a handler for changes, called on the thread that made the change once it
    /// is visible (a FUSE handler's, a task worker's): the handler must only queue the
    /// notice and return.
    func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void)
    /// Records a refusal made by the tree itself (a write to a read-only file, a value that
    /// does not parse).
    func recordRefusal(_ error: CloudError, object: String, caller: Caller)

    /// `/defaults` and `/config`.
    var settings: any SettingsAPI { get }
    /// `/scheduler` (Nova's FilterScheduler options, live).
    var scheduler: any SchedulerAPI { get }
    /// `/flavors` (Nova flavors).
    var flavors: any FlavorsAPI { get }
    /// `/hosts` (Nova compute nodes and services).
    var hosts: any HostsAPI { get }
    /// `/groups` (Nova's os-server-groups).
    var groups: any ServerGroupsAPI { get }
    /// `/images` and `/images.d` (Glance).
    var images: any ImagesAPI { get }
    /// `/instances` (Nova servers).
    var instances: any InstancesAPI { get }
    /// `/networks` (nova-network's networks and fixed IPs).
    var networks: any NetworksAPI { get }
    /// `/floating-ips` (nova-network's floating IPs).
    var floatingIPs: any FloatingIPsAPI { get }
    /// `/security-groups` (Nova's security groups).
    var securityGroups: any SecurityGroupsAPI { get }
    /// `/users` (Keystone users: local accounts).
    var users: any UsersAPI { get }
    /// `/projects` (Keystone projects, with quotas).
    var projects: any ProjectsAPI { get }
    /// `/volumes` (Cinder volumes and snapshots, attached through Nova).
    var volumes: any VolumesAPI { get }
    /// `/keypairs` and `/keypairs.d` (Nova's key pairs, each its user's).
    var keypairs: any KeypairsAPI { get }
    /// What `stat` shows the caller for objects of `project`: the project's group id
    /// (nil for an unknown project), and whether the caller is registered at all.
    func identity(of caller: Caller) -> CallerIdentity
    func projectGID(_ project: String) -> UInt32?
}

/// Who a caller is to the cloud, for the tree's permission bits.
public struct CallerIdentity: Sendable, Equatable {
    /// uid 0, or a user with the admin role.
    public var isAdmin: Bool
    /// A registered user (the admin always is).
    public var isRegistered: Bool
    /// The caller's role in each project.
    public var roles: [String: Role]
    public init(isAdmin: Bool, isRegistered: Bool, roles: [String: Role]) {
        self.isAdmin = isAdmin; self.isRegistered = isRegistered; self.roles = roles
    }
}

/// Cancels one pending wait.
public final class WaitToken: Sendable {
    private let onCancel: @Sendable () -> Void
    public init(onCancel: @escaping @Sendable () -> Void) { self.onCancel = onCancel }
    public func cancel() { onCancel() }
}
