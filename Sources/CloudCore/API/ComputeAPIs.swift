import Foundation

/// Nova servers: `/instances`. mkdir validates and records (the build runs later), rmdir
/// requests a delete, `ctl` takes typed actions, `wait` subscribes to the next stable state.
public protocol InstancesAPI: AnyObject, Sendable {
    /// The instances `caller` may see, by name.
    func list(_ caller: Caller) -> [InstanceInfo]
    /// What a listing of `/instances` shows of each instance `caller` may see, by name:
    /// no full `InstanceInfo` (IPs, metadata, ssh command) for each of 10,000.
    func entries(_ caller: Caller) -> [InstanceEntry]
    func get(_ name: String, _ caller: Caller) -> InstanceInfo?
    /// `mkdir /instances/NAME` (the empty request) or a launch file copied to
    /// `/instances/NAME`: validates synchronously, records every option in the same
    /// transaction, and queues the build. Options left out take `/defaults` now.
    func create(_ name: String, _ request: LaunchRequest, _ caller: Caller) throws(CloudError) -> InstanceInfo
    /// `rmdir /instances/NAME`: accepted in every state.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// `instances/NAME/tty` (`cloudfs console`): the running guest's serial console.
    func openConsole(_ name: String, _ caller: Caller) throws(CloudError) -> any ConsoleStream
    /// One action written to `ctl`, with Nova's preconditions (`EBUSY` with the reason).
    func perform(_ action: InstanceAction, on name: String, _ caller: Caller) throws(CloudError)
    /// A write to `image`, `flavor`, `group`, `security_groups` or `floating_ip`.
    func change(_ name: String, _ change: InstanceChange, _ caller: Caller) throws(CloudError)
    /// The instance's task history, newest first, one line per task (Nova's
    /// os-instance-actions): `ID CREATED KIND[(ARG)] STATE step=STEP RESULT`.
    func actions(_ name: String, _ caller: Caller) -> [String]
    /// The instance's moves between hosts, newest first (Nova's os-migrations):
    /// `STARTED KIND SOURCE -> DEST STATUS DETAIL`.
    func migrations(_ name: String, _ caller: Caller) -> [String]
    /// The running live migration's progress (`key value` lines: status, elapsed_ms,
    /// memory and disk bytes total and remaining, downtime_ms), else the last one's end.
    func migrationProgress(_ name: String, _ caller: Caller) -> [String]
    /// Calls `completion` once the instance is stable (or gone: nil): before returning, on
    /// the caller's thread, when it already is; else later, from the thread whose commit
    /// made it stable. Returns a token whose `cancel()` drops the wait (the FUSE request
    /// was interrupted).
    func waitUntilStable(_ name: String, _ caller: Caller,
                         _ completion: @escaping @Sendable (InstanceInfo?) -> Void) -> WaitToken
}

/// Nova flavors: `/flavors` (admin only, as in Nova).
public protocol FlavorsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [Flavor]
    func get(_ name: String, _ caller: Caller) -> Flavor?
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    func change(_ name: String, _ change: FlavorChange, _ caller: Caller) throws(CloudError)
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
}

/// Nova compute nodes and their services: `/hosts`.
public protocol HostsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [HostInfo]
    func get(_ name: String, _ caller: Caller) -> HostInfo?
    /// `mkdir /hosts/NAME`: a host without a URI yet (admin only; down until `uri` is written).
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /hosts/NAME`: `EBUSY` while instances live there.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// Writes `uri` (registers the host) or `availability_zone` (admin only).
    func change(_ name: String, _ change: HostChange, _ caller: Caller) throws(CloudError)
    /// A host's `ctl` (admin only).
    func perform(_ action: HostAction, on name: String, _ caller: Caller) throws(CloudError)
}

/// Nova's server groups: `/groups`.
public protocol ServerGroupsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [GroupInfo]
    func get(_ name: String, _ caller: Caller) -> GroupInfo?
    /// `mkdir /groups/NAME`: a new group, policy `anti-affinity` until written.
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// Writes the policy; `EBUSY` once the group has members (Nova's policies are fixed then).
    func setPolicy(_ name: String, _ policy: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /groups/NAME`: `EBUSY` while it has members.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
}

/// Nova's FilterScheduler options, live: `/scheduler`.
public protocol SchedulerAPI: AnyObject, Sendable {
    /// The names of the option files, in display order (without `last`).
    var keys: [String] { get }
    /// The text of one option, nil for an unknown key.
    func value(_ key: String, _ caller: Caller) -> String?
    /// Sets one option (admin only); `EINVAL` with the reason for a bad value or unknown filter.
    func set(_ key: String, _ value: String, _ caller: Caller) throws(CloudError)
    /// `/scheduler/last`: the most recent decision, filter by filter.
    func last(_ caller: Caller) -> String
}

/// `/defaults` (what mkdir uses) and `/config` (the compute manager's live options).
public protocol SettingsAPI: AnyObject, Sendable {
    func defaultValue(_ key: DefaultKey, _ caller: Caller) -> String
    func setDefault(_ key: DefaultKey, _ value: String, _ caller: Caller) throws(CloudError)
    func configValue(_ key: ConfigKey, _ caller: Caller) -> String
    /// Admin only; validated (`EINVAL` with the reason).
    func setConfig(_ key: ConfigKey, _ value: String, _ caller: Caller) throws(CloudError)
}

extension InstancesAPI {
    /// `mkdir /instances/NAME`: everything from `/defaults`.
    public func create(_ name: String, _ caller: Caller) throws(CloudError) -> InstanceInfo {
        try create(name, LaunchRequest(), caller)
    }
}

/// An instance as a directory listing shows it (`ls -l /instances`).
public struct InstanceEntry: Sendable, Equatable {
    public var name: String
    public var id: String
    public var ownerUID: UInt32
    public var created: Date
    public var project: String
    /// A delete is running (status DELETING): the name is about to go.
    public var deleting: Bool
    public init(name: String, id: String, ownerUID: UInt32, created: Date, project: String, deleting: Bool = false) {
        self.name = name; self.id = id; self.ownerUID = ownerUID; self.created = created; self.project = project
        self.deleting = deleting
    }
}
