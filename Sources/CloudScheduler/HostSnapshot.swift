import CloudCore

/// What the scheduler knows of one host at decision time (Nova's `HostState`): capacity
/// from the hypervisor, usage from our own claims. Snapshots are handed in; the scheduler
/// never reads the store.
public struct HostSnapshot: Sendable, Equatable {
    public var name: String
    public var state: HostState
    public var vcpus: Int
    public var ramMB: Int
    public var diskGB: Int
    public var vcpusUsed: Int
    public var ramMBUsed: Int
    public var diskGBUsed: Int
    public init(name: String, state: HostState, vcpus: Int, ramMB: Int, diskGB: Int,
                vcpusUsed: Int, ramMBUsed: Int, diskGBUsed: Int) {
        self.name = name; self.state = state; self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB
        self.vcpusUsed = vcpusUsed; self.ramMBUsed = ramMBUsed; self.diskGBUsed = diskGBUsed
    }
}

/// What one instance asks for (Nova's `RequestSpec`, narrowed to resources).
public struct ResourceRequest: Sendable, Equatable {
    public var vcpus: Int
    public var ramMB: Int
    public var diskGB: Int
    public init(vcpus: Int, ramMB: Int, diskGB: Int) { self.vcpus = vcpus; self.ramMB = ramMB; self.diskGB = diskGB }
}

/// Overcommit ratios (Nova's `cpu/ram/disk_allocation_ratio`, current defaults 4.0/1.0/1.0).
public struct AllocationRatios: Sendable, Equatable {
    public var cpu: Double = 4.0
    public var ram: Double = 1.0
    public var disk: Double = 1.0
    public init(cpu: Double = 4.0, ram: Double = 1.0, disk: Double = 1.0) { self.cpu = cpu; self.ram = ram; self.disk = disk }
}
