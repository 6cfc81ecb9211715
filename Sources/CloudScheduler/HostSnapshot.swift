import CloudCore

/// What the scheduler knows of one host at decision time (Nova's `HostState`): capacity
/// from the hypervisor, usage from our own claims. Snapshots are handed in; the scheduler
/// never reads the store.
public struct HostSnapshot: Sendable, Equatable {
    /// The compute host's name (Nova's `host`).
    public var name: String
    /// up, down or disabled: Nova's service `disabled` flag and `service_is_up` in one.
    public var state: HostState
    /// Physical vCPUs (Nova's `vcpus_total`).
    public var vcpus: Int
    /// Physical RAM in MiB (Nova's `total_usable_ram_mb`).
    public var ramMB: Int
    /// Local disk in GiB (Nova's `total_usable_disk_gb`).
    public var diskGB: Int
    /// vCPUs claimed by instances on this host (Nova's `vcpus_used`).
    public var vcpusUsed: Int
    /// RAM claimed, in MiB (Nova's `total - free_ram_mb`).
    public var ramMBUsed: Int
    /// Disk claimed, in GiB (Nova's `total - free_disk_mb`, in GiB).
    public var diskGBUsed: Int
    /// The host's availability zone (Nova's aggregate metadata, default `default_availability_zone`).
    public var availabilityZone: String
    /// The hypervisor type it advertises, e.g. `qemu`, `kvm`, `test` (Nova's `hv_type` in
    /// `supported_instances`); empty when unknown.
    public var hypervisorType: String
    /// The guest architecture it runs (Nova's `arch` in `supported_instances`).
    public var arch: String
    /// The images the host already holds in its own storage pool (Nova's image cache on
    /// a compute node); nil when it reads the controller's image store directly.
    public var cachedImages: Set<String>? = nil

    /// A snapshot; the placement fields default to Nova's defaults (zone `nova`, x86_64).
    public init(name: String, state: HostState, vcpus: Int, ramMB: Int, diskGB: Int,
                vcpusUsed: Int, ramMBUsed: Int, diskGBUsed: Int,
                availabilityZone: String = HostSnapshot.defaultAvailabilityZone,
                hypervisorType: String = "", arch: String = "x86_64") {
        self.name = name; self.state = state; self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB
        self.vcpusUsed = vcpusUsed; self.ramMBUsed = ramMBUsed; self.diskGBUsed = diskGBUsed
        self.availabilityZone = availabilityZone; self.hypervisorType = hypervisorType; self.arch = arch
    }

    /// True when the host can boot `imageID` without uploading it first.
    public func holdsImage(_ imageID: String) -> Bool { cachedImages?.contains(imageID) ?? true }
    /// Nova's `default_availability_zone`: the zone of a host no aggregate places elsewhere.
    public static let defaultAvailabilityZone = "nova"

    /// True when the host takes new instances (Nova's ComputeFilter: service up and enabled).
    public var isUp: Bool { state == .up }

    /// RAM still claimable under `ratio` (Nova's `memory_mb_limit - used_ram_mb`); may be negative.
    @inlinable public func freeRAMMB(ratio: Double) -> Double { Double(ramMB) * ratio - Double(ramMBUsed) }
    /// vCPUs still claimable under `ratio` (Nova's CoreFilter `free_vcpus`); may be negative.
    @inlinable public func freeVCPUs(ratio: Double) -> Double { Double(vcpus) * ratio - Double(vcpusUsed) }
    /// Disk still claimable under `ratio`, in GiB (Nova's DiskFilter `usable_disk_mb`, in GiB).
    @inlinable public func freeDiskGB(ratio: Double) -> Double { Double(diskGB) * ratio - Double(diskGBUsed) }

    /// Adds `request` to this host's usage: Nova's `HostState.consume_from_request`, applied
    /// between the picks of one multi-instance request.
    public mutating func consume(_ request: ResourceRequest) {
        vcpusUsed += request.vcpus; ramMBUsed += request.ramMB; diskGBUsed += request.diskGB
    }
}

/// What one instance asks for: the flavor part of Nova's `RequestSpec` (`vcpus`,
/// `memory_mb`, `root_gb`).
public struct ResourceRequest: Sendable, Equatable {
    /// vCPUs (Nova's flavor `vcpus`).
    public var vcpus: Int
    /// RAM in MiB (Nova's flavor `memory_mb`).
    public var ramMB: Int
    /// Root disk in GiB (Nova's flavor `root_gb`).
    public var diskGB: Int
    /// A request for one instance of this size.
    public init(vcpus: Int, ramMB: Int, diskGB: Int) { self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB }
}

/// Overcommit ratios (Nova's `cpu/ram/disk_allocation_ratio`, current defaults 4.0/1.0/1.0).
public struct AllocationRatios: Sendable, Equatable {
    /// Nova's `cpu_allocation_ratio`.
    public var cpu: Double = 4.0
    /// Nova's `ram_allocation_ratio`.
    public var ram: Double = 1.0
    /// Nova's `disk_allocation_ratio`.
    public var disk: Double = 1.0
    /// Ratios; the defaults are Nova's `initial_*_allocation_ratio`.
    public init(cpu: Double = 4.0, ram: Double = 1.0, disk: Double = 1.0) { self.cpu = cpu; self.ram = ram; self.disk = disk }
}
