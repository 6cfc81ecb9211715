/// How far a running live migration has got: libvirt's job statistics
/// (virDomainGetJobStats), which Nova's libvirt driver polls in `_live_migration_monitor`.
public struct MigrationProgress: Sendable, Equatable {
    /// Time since the job started, in milliseconds.
    public var elapsedMs: UInt64 = 0
    /// Guest memory to send in all, and still to send (bytes; dirtied pages are sent again).
    public var memoryTotal: UInt64 = 0
    public var memoryRemaining: UInt64 = 0
    /// Disk to copy in all, and still to copy (bytes; block migration only).
    public var diskTotal: UInt64 = 0
    public var diskRemaining: UInt64 = 0
    /// The guest's pause at the switch-over, in milliseconds (known once it happened; before
    /// that libvirt's estimate, when it has one).
    public var downtimeMs: UInt64? = nil
    public init() {}
}

/// The live migration half of Nova's virt driver contract (`check_can_live_migrate_*`,
/// `pre_live_migration`, `live_migration`, `live_migration_abort`), as the libvirt driver
/// does it: peer to peer, the source's libvirt talking to the destination's.
public protocol MigrationConnection: Sendable {
    /// The host CPU as the hypervisor describes it (the capabilities' `<host><cpu>`).
    func hostCPUXML() throws(CloudError) -> String
    /// Why this host cannot run guests made for a host with `cpuXML` (virConnectCompareCPU
    /// says incompatible), or nil when it can.
    func cpuIncompatibility(with cpuXML: String) throws(CloudError) -> String?
    /// The running domain's definition as a destination must receive it
    /// (VIR_DOMAIN_XML_MIGRATABLE).
    func migratableXML(uuid: String) throws(CloudError) -> String
    /// Moves the running domain to the host at `destinationURI` without stopping it unless
    /// `pausingGuest` (virDomainMigrateToURI3: LIVE | PEER2PEER | PERSIST_DEST | UNDEFINE_SOURCE, plus
    /// NON_SHARED_INC when `copyStorage`: writable disks are copied over the backing files
    /// the destination already has), at most `bandwidthMiBs` MiB/s when above 0. Blocks until the job ends; throws `EIO` with libvirt's
    /// message when it failed or was aborted, in which case the guest still runs here.
    /// With `pausingGuest`, the guest is paused for the whole transfer and resumed on the
    /// destination (libvirt's migration without VIR_MIGRATE_LIVE): see
    /// `liveMigrationHazard`.
    func migrateLive(uuid: String, to destinationURI: String, destinationXML: String?, copyStorage: Bool,
                     bandwidthMiBs: Int, pausingGuest: Bool) throws(CloudError)
    /// Why the running domain cannot safely keep running while it moves from this host (a
    /// hypervisor that would lose its writes), so that it must be paused for the transfer;
    /// nil when a live move is safe.
    func liveMigrationHazard(uuid: String) throws(CloudError) -> String?
    /// The running migration job's progress, nil when the domain has none; with
    /// `completed`, the statistics of the last finished one (a destination keeps those of
    /// the incoming migration: the downtime the guest saw).
    func migrationProgress(uuid: String, completed: Bool) throws(CloudError) -> MigrationProgress?
    /// Asks the running job to stop (virDomainAbortJob); the migration then fails and
    /// the guest stays here.
    func abortMigration(uuid: String) throws(CloudError)
}

extension MigrationConnection {
    public func hostCPUXML() throws(CloudError) -> String { throw CloudError(.notSupported, "this host cannot live-migrate") }
    public func cpuIncompatibility(with cpuXML: String) throws(CloudError) -> String? { nil }
    public func migratableXML(uuid: String) throws(CloudError) -> String {
        throw CloudError(.notSupported, "this host cannot live-migrate")
    }
    public func migrateLive(uuid: String, to destinationURI: String, destinationXML: String?, copyStorage: Bool,
                            bandwidthMiBs: Int, pausingGuest: Bool) throws(CloudError) {
        throw CloudError(.notSupported, "this host cannot live-migrate")
    }
    public func liveMigrationHazard(uuid: String) throws(CloudError) -> String? { nil }
    public func migrationProgress(uuid: String, completed: Bool) throws(CloudError) -> MigrationProgress? { nil }
    public func abortMigration(uuid: String) throws(CloudError) {}
}
