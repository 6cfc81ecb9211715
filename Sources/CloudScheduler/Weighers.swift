import CloudCore

// The built-in weighers, one small type each, with Nova's names, multipliers and `minval`s
// (nova/scheduler/weights/*.py).

/// Nova's RAMWeigher: free RAM (after `ram_allocation_ratio`), `minval` 0. Multiplier
/// `ram_weight_multiplier`, default 1.0 (spread); negative stacks.
public struct RAMWeigher: HostWeigher {
    /// `RAMWeigher`.
    public var name: String { "RAMWeigher" }
    /// Nova's `ram_weight_multiplier`.
    public var multiplier: Double
    /// Nova's RAMWeigher declares `minval = 0`.
    public var minval: Double? { 0 }
    /// A RAMWeigher with Nova's default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Free RAM in MiB under the ratio.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        host.freeRAMMB(ratio: context.ratios.ram)
    }
}

/// Nova's CPUWeigher: free vCPUs (`vcpus_total × cpu_allocation_ratio - vcpus_used`),
/// `minval` 0. Multiplier `cpu_weight_multiplier`, default 1.0.
public struct CPUWeigher: HostWeigher {
    /// `CPUWeigher`.
    public var name: String { "CPUWeigher" }
    /// Nova's `cpu_weight_multiplier`.
    public var multiplier: Double
    /// Nova's CPUWeigher declares `minval = 0`.
    public var minval: Double? { 0 }
    /// A CPUWeigher with Nova's default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Free vCPUs under the ratio.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        host.freeVCPUs(ratio: context.ratios.cpu)
    }
}

/// Nova's DiskWeigher: free disk (after `disk_allocation_ratio`), `minval` 0. Multiplier
/// `disk_weight_multiplier`, default 1.0.
public struct DiskWeigher: HostWeigher {
    /// `DiskWeigher`.
    public var name: String { "DiskWeigher" }
    /// Nova's `disk_weight_multiplier`.
    public var multiplier: Double
    /// Nova's DiskWeigher declares `minval = 0`.
    public var minval: Double? { 0 }
    /// A DiskWeigher with Nova's default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Free disk in GiB under the ratio.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        host.freeDiskGB(ratio: context.ratios.disk)
    }
}

/// Nova's ServerGroupSoftAffinityWeigher: for a `soft-affinity` group, the number of members
/// on the host (more is better). Multiplier `soft_affinity_weight_multiplier`, default 1.0.
public struct ServerGroupSoftAffinityWeigher: HostWeigher {
    /// `ServerGroupSoftAffinityWeigher`.
    public var name: String { "ServerGroupSoftAffinityWeigher" }
    /// Nova's `soft_affinity_weight_multiplier`.
    public var multiplier: Double
    /// A ServerGroupSoftAffinityWeigher with Nova's default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Relevant for a `soft-affinity` group.
    public func isRelevant(to spec: RequestSpec) -> Bool { spec.group?.policy == .softAffinity }
    /// Members of the group on the host.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        guard spec.group?.policy == .softAffinity else { return 0 }
        return Double(context.groupMembersPerHost[host.name] ?? 0)
    }
}

/// Nova's ServerGroupSoftAntiAffinityWeigher: for a `soft-anti-affinity` group, minus the
/// number of members on the host (fewer is better). Multiplier
/// `soft_anti_affinity_weight_multiplier`, default 1.0.
public struct ServerGroupSoftAntiAffinityWeigher: HostWeigher {
    /// `ServerGroupSoftAntiAffinityWeigher`.
    public var name: String { "ServerGroupSoftAntiAffinityWeigher" }
    /// Nova's `soft_anti_affinity_weight_multiplier`.
    public var multiplier: Double
    /// A ServerGroupSoftAntiAffinityWeigher with Nova's default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Relevant for a `soft-anti-affinity` group.
    public func isRelevant(to spec: RequestSpec) -> Bool { spec.group?.policy == .softAntiAffinity }
    /// Minus the members of the group on the host.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        guard spec.group?.policy == .softAntiAffinity else { return 0 }
        return -Double(context.groupMembersPerHost[host.name] ?? 0)
    }
}

/// Prefers hosts that already hold the instance's image, so a remote host does not upload
/// it again (the seed's caching scheduler idea: Nova's image cache as a weight). 1 for a
/// host holding it (or reading the controller's image store), 0 otherwise. Multiplier
/// `image_cache_weight_multiplier`, default 1.0; irrelevant when the request names no image.
public struct ImageCacheWeigher: HostWeigher {
    /// `ImageCacheWeigher`.
    public var name: String { "ImageCacheWeigher" }
    /// `image_cache_weight_multiplier`.
    public var multiplier: Double
    /// A weigher with the default multiplier.
    public init(multiplier: Double = 1.0) { self.multiplier = multiplier }
    /// Only requests that boot an image.
    public func isRelevant(to spec: RequestSpec) -> Bool { spec.imageID != nil }
    /// 1 when the host holds the image.
    public func weigh(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Double {
        guard let id = spec.imageID else { return 0 }
        return host.holdsImage(id) ? 1 : 0
    }
}
