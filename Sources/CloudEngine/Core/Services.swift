import CloudCore
import CloudScheduler
import CloudStore
import Foundation

// The small protocols through which the engine's services see each other (the
// swift-nio habit: each handler does one job and meets the others at a narrow interface).
// The `Engine` wires them together; each service file names the ones it uses.

/// Settings the other services read (SettingsService).
protocol SettingsReader: AnyObject, Sendable {
    /// What mkdir uses for `key` (`/defaults`, with its fallbacks).
    func defaultValue(_ key: DefaultKey) -> String
    /// A `/config` option in seconds.
    func seconds(_ key: ConfigKey) -> TimeInterval
    /// A `/config` option as text.
    func configValue(_ key: ConfigKey) -> String
}

/// Open hypervisor connections by host name (HostService).
protocol HostConnections: AnyObject, Sendable {
    /// The live connection of `host`, nil while it is down or unknown.
    func connection(forHost host: String) -> (any ComputeConnection)?
    /// Every host with a live connection.
    func connectedHosts() -> [(name: String, connection: any ComputeConnection)]
    /// Whether a host of that name is registered (down or not).
    func hostExists(_ name: String) -> Bool
}

/// What the instance service asks of Glance (ImageService).
protocol ImageProvider: AnyObject, Sendable {
    /// The image a new instance boots: `/defaults/image`, else the most recently activated
    /// bootable image. `ENOENT`/`EBUSY` with the reason otherwise.
    func bootImage() throws(CloudError) -> ImageInfo
    /// An active image by name (`ENOENT` otherwise).
    func activeImage(named name: String) throws(CloudError) -> ImageInfo
    /// The image an instance record names, by id.
    func image(id: String) -> ImageInfo?
    /// Whether `caller` may boot `image` (Glance's visibility).
    func isVisible(_ image: ImageInfo, to caller: Caller) -> Bool
    /// The files a domain boots from: the image and, for direct kernel boot, its
    /// `kernel` and `ramdisk` images (`ENOENT` when one named is gone).
    func bootFiles(imageID: String) throws(CloudError) -> (image: ImageInfo?, kernel: ImageInfo?, ramdisk: ImageInfo?)
}

/// What the instance service asks of nova-network (NetworkService and FloatingIPService).
protocol NetworkProvider: AnyObject, Sendable {
    /// mkdir's synchronous check that the network a new instance of `project` would use
    /// has an address left (`ENOSPC`).
    func checkFixedIPsLeft(project: String, requested: String?) throws(CloudError)
    /// The build's network step: a fixed IP and MAC, committed with the move to
    /// `spawning`; `.conflict` when the build moved on.
    func allocate(for r: InstanceRecord) throws(CloudError) -> Commit<InstanceRecord>
    /// Releases the instance's fixed and floating IPs (and updates the host's DHCP and
    /// firewall). Returns whether it held a fixed IP.
    func release(_ r: InstanceRecord) throws(CloudError) -> Bool
    /// The guest's NICs, and the kernel command line words that tell it its address.
    func guestNetwork(for r: InstanceRecord) -> (nics: [NICSpec], cmdline: String?)
    /// How the guest's NIC is addressed (network_data.json), nil without a fixed IP.
    func guestAddressing(for r: InstanceRecord) -> GuestAddressing?
    /// Re-applies the host firewall after an instance's security groups changed.
    func securityGroupsChanged() throws(CloudError)
    /// `instances/NAME/floating_ip`.
    func setFloatingIP(of r: InstanceRecord, _ request: FloatingIPRequest, _ caller: Caller) throws(CloudError)
    /// Nova's `plug_vifs`: before the guest's domain is defined on `host`, that host's
    /// agent builds the guest's tenant segment (vxlan networks); throws its failure.
    func plugVIFs(_ r: InstanceRecord, on host: String) throws(CloudError)
    /// After a guest moved or went: every agent's share of the plan is brought up to date
    /// (failures are recorded, and retried by the health check).
    func networksMoved()
}

/// Where instances run (SchedulingService): Nova's scheduler + resource claims.
protocol Placement: AnyObject, Sendable {
    /// What the instance asks of the scheduler (Nova's RequestSpec): its resources (or
    /// `resources`), its image's properties, its group and availability zone.
    func requestSpec(for r: InstanceRecord, resources: ResourceRequest?) -> RequestSpec
    /// Filters and weighs the hosts, then claims the best one that still passes every
    /// filter inside `claim`'s transaction; see `SchedulingService.selectAndClaim`.
    func selectAndClaim(_ spec: RequestSpec, for instance: String, placing: TaskState, attempt: Int,
                        claim: (_ host: String, _ fits: @escaping ClaimCheck) throws(CloudError) -> Commit<InstanceRecord>)
        throws(CloudError) -> InstanceRecord?
    /// Nova's `max_attempts`: how many hosts one placement may try.
    var maxAttempts: Int { get }
}

/// What the host service tells the instance service (InstanceService).
protocol HostEvents: AnyObject, Sendable {
    /// A host stopped answering: its instances' power state is unknown.
    func hostWentDown(_ host: String)
    /// A host answers again: domains of instances evacuated meanwhile are destroyed there,
    /// and the others' power states read again.
    func hostCameBack(_ host: String)
    /// `evacuate` of a down host: its idle instances are rebuilt elsewhere. Returns how many.
    func evacuate(host: String) throws(CloudError) -> Int
}

/// What the instance service asks of Cinder (VolumeService): the attached volumes a
/// domain definition carries, and what an instance's delete does to them.
protocol VolumeProvider: AnyObject, Sendable {
    /// The disks of the volumes attached to the instance (in-use), in device order, for
    /// every definition of its domain (build, rebuild, resize, revert).
    func disks(forInstance id: String) -> [DiskSpec]
    /// The instance's domain is destroyed: its volumes become available, keeping their
    /// data (Nova's terminate detaches them).
    func instanceDeleted(_ id: String) throws(CloudError)
}
