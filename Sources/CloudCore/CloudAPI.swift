import Foundation

/// An image upload in progress (Glance's queued → saving → active), created by `cp` into
/// `/images`. The FUSE layer feeds it the WRITEs it receives and commits it on close.
public protocol ImageUpload: AnyObject, Sendable {
    /// Writes bytes at an offset straight into the image store, hashing as it goes.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(CloudError)
    /// Sets the file size (ftruncate / O_TRUNC).
    func truncate(to size: Int64) throws(CloudError)
    /// Bytes written so far (the file's size).
    var size: Int64 { get }
    /// Detects the format, inspects qcow2, and makes the image active. May be called again
    /// after further writes (the image goes back to saving in between). Throws `EINVAL`
    /// when the bytes are refused; the upload is then discarded.
    @discardableResult func commit() throws(CloudError) -> ImageInfo
    /// Discards the upload: no bytes, no row remain. Idempotent.
    func abort(reason: String)
    /// True once `commit` succeeded and no write happened since.
    var isCommitted: Bool { get }
}

/// A change the tree must show: the FUSE layer invalidates its kernel caches for it.
public struct ChangeNotice: Sendable, Equatable {
    public enum Kind: String, Sendable { case instance, image, flavor, host, defaults, events, scheduler, group, config
        case network, floatingIP, securityGroup }
    public var kind: Kind
    public var name: String
    public init(_ kind: Kind, _ name: String) { self.kind = kind; self.name = name }
}

/// What the FUSE layer asks of the cloud (the "CloudAPI" arrow of DESIGN.md): reads come
/// from memory and never block; mutations validate synchronously, record their effect,
/// enqueue the slow part, and return. Every refusal throws a `CloudError` whose reason the
/// implementation has already written to `/events` (and to the object's `fault`).
public protocol CloudAPI: NetworkAPI, AnyObject, Sendable {
    /// The text of `/README`.
    var readme: String { get }
    /// The `/events` log.
    var events: EventLog { get }
    /// Registers a handler for changes; called on an engine thread, never inside the caller's stack.
    func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void)
    /// Records a refusal made by the tree itself (e.g. a write to a read-only file).
    func recordRefusal(_ error: CloudError, object: String, caller: Caller)

    // Defaults
    func defaultValue(_ key: DefaultKey) -> String
    func setDefault(_ key: DefaultKey, _ value: String, caller: Caller) throws(CloudError)

    // Compute options (/config)
    func configValue(_ key: ConfigKey) -> String
    func setConfig(_ key: ConfigKey, _ value: String, caller: Caller) throws(CloudError)

    // Flavors (Nova flavors)
    func flavors() -> [Flavor]
    func flavor(_ name: String) -> Flavor?
    func createFlavor(_ name: String, caller: Caller) throws(CloudError)
    /// `field` is `vcpus`, `ram_mb` or `disk_gb`.
    func setFlavorField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError)
    func deleteFlavor(_ name: String, caller: Caller) throws(CloudError)

    // Hosts (Nova compute nodes)
    func hosts() -> [HostInfo]
    func host(_ name: String) -> HostInfo?
    /// `mkdir /hosts/NAME`: a host without a URI yet (admin only; down until `uri` is written).
    func createHost(_ name: String, caller: Caller) throws(CloudError)
    /// `rmdir /hosts/NAME`: `EBUSY` while instances live there.
    func deleteHost(_ name: String, caller: Caller) throws(CloudError)
    /// Writes `uri` (registers the host: connect, read capacity) or `availability_zone` (admin only).
    func setHostField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError)
    /// A host's `ctl`: `enable`, `disable` (Nova's service enable/disable) or `evacuate`
    /// (rebuild a down host's instances elsewhere); admin only.
    func hostAction(_ name: String, action: String, caller: Caller) throws(CloudError)

    // Server groups (Nova's os-server-groups)
    func groups() -> [GroupInfo]
    func group(_ name: String) -> GroupInfo?
    /// `mkdir /groups/NAME`: a new group, policy `anti-affinity` until written.
    func createGroup(_ name: String, caller: Caller) throws(CloudError)
    /// Writes the policy; `EBUSY` once the group has members (Nova's policies are fixed then).
    func setGroupPolicy(_ name: String, _ policy: String, caller: Caller) throws(CloudError)
    /// `rmdir /groups/NAME`: `EBUSY` while it has members.
    func deleteGroup(_ name: String, caller: Caller) throws(CloudError)

    // Scheduler (Nova's FilterScheduler options, live)
    /// The names of the `/scheduler/*` option files, in display order (without `last`).
    var schedulerKeys: [String] { get }
    /// The text of one option, nil for an unknown key.
    func schedulerValue(_ key: String) -> String?
    /// Sets one option (admin only); `EINVAL` with the reason for a bad value or unknown filter.
    func setSchedulerValue(_ key: String, _ value: String, caller: Caller) throws(CloudError)
    /// `/scheduler/last`: the most recent decision, filter by filter.
    var schedulerLast: String { get }

    // Images (Glance)
    func images() -> [ImageInfo]
    func image(_ name: String) -> ImageInfo?
    func beginUpload(_ name: String, caller: Caller) throws(CloudError) -> any ImageUpload
    func deleteImage(_ name: String, caller: Caller) throws(CloudError)
    func renameImage(_ name: String, to newName: String, caller: Caller) throws(CloudError)
    /// Sets (or with nil removes) an image property (`kernel`, `ramdisk`, `cmdline`, ...).
    func setImageProperty(_ image: String, key: String, value: String?, caller: Caller) throws(CloudError)

    // Instances (Nova servers)
    func instances() -> [InstanceInfo]
    func instance(_ name: String) -> InstanceInfo?
    func createInstance(_ name: String, caller: Caller) throws(CloudError) -> InstanceInfo
    func deleteInstance(_ name: String, caller: Caller) throws(CloudError)
    /// One action written to an instance's `ctl` (this build: `migrate [HOST]`).
    func instanceAction(_ name: String, action: String, caller: Caller) throws(CloudError)
    /// The instance's task history, newest first, one line per task (Nova's
    /// os-instance-actions): `ID CREATED KIND[(ARG)] STATE step=STEP RESULT`.
    func instanceActions(_ name: String) -> [String]
    /// Writes `image` or `flavor` of an instance (desired state).
    func setInstanceField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError)
    /// Calls `completion` once the instance is stable (or gone: nil). Returns a token whose
    /// `cancel()` drops the wait (the FUSE request was interrupted).
    func waitUntilStable(_ name: String, _ completion: @escaping @Sendable (InstanceInfo?) -> Void) -> WaitToken
}

/// Cancels one pending wait.
public final class WaitToken: Sendable {
    private let onCancel: @Sendable () -> Void
    public init(onCancel: @escaping @Sendable () -> Void) { self.onCancel = onCancel }
    public func cancel() { onCancel() }
}
