import CloudCore

// The built-in filters, one small type each, with Nova's names and semantics
// (nova/scheduler/filters/*.py).

/// Nova's ComputeFilter: the host's compute service is up and not disabled.
public struct ComputeFilter: HostFilter {
    /// `ComputeFilter`.
    public var name: String { "ComputeFilter" }
    /// A ComputeFilter.
    public init() {}
    /// Passes hosts whose state is `up` (down and disabled hosts are dropped).
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        host.state == .up
    }
}

/// Nova's RamFilter: `used + requested <= total × ram_allocation_ratio`.
public struct RamFilter: HostFilter {
    /// `RamFilter`.
    public var name: String { "RamFilter" }
    /// A RamFilter.
    public init() {}
    /// Passes hosts with room for the flavor's `memory_mb` under the RAM ratio.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        Double(host.ramMBUsed + spec.resources.ramMB) <= Double(host.ramMB) * context.ratios.ram
    }
}

/// Nova's CoreFilter: `used + requested <= total × cpu_allocation_ratio`. Unlike Nova, a host
/// reporting no vCPUs fails (Nova's "assuming CPU collection broken" pass would let a host of
/// unknown capacity take anything).
public struct CoreFilter: HostFilter {
    /// `CoreFilter`.
    public var name: String { "CoreFilter" }
    /// A CoreFilter.
    public init() {}
    /// Passes hosts with room for the flavor's `vcpus` under the CPU ratio.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        Double(host.vcpusUsed + spec.resources.vcpus) <= Double(host.vcpus) * context.ratios.cpu
    }
}

/// Nova's DiskFilter: `used + requested <= total × disk_allocation_ratio` (in GiB).
public struct DiskFilter: HostFilter {
    /// `DiskFilter`.
    public var name: String { "DiskFilter" }
    /// A DiskFilter.
    public init() {}
    /// Passes hosts with room for the flavor's `root_gb` under the disk ratio.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        Double(host.diskGBUsed + spec.resources.diskGB) <= Double(host.diskGB) * context.ratios.disk
    }
}

/// Nova's AvailabilityZoneFilter: when the request names a zone, only hosts in it pass.
public struct AvailabilityZoneFilter: HostFilter {
    /// `AvailabilityZoneFilter`.
    public var name: String { "AvailabilityZoneFilter" }
    /// An AvailabilityZoneFilter.
    public init() {}
    /// Relevant when the spec names a zone.
    public func isRelevant(to spec: RequestSpec) -> Bool { !(spec.availabilityZone ?? "").isEmpty }
    /// Passes hosts whose zone is the requested one.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let zone = spec.availabilityZone, !zone.isEmpty else { return true }
        return host.availabilityZone == zone
    }
}

/// Nova's ImagePropertiesFilter: a host passes when it advertises the architecture and
/// hypervisor type the image asks for (each compared only when the image sets it; a host
/// that advertises nothing fails any request, as in Nova).
public struct ImagePropertiesFilter: HostFilter {
    /// `ImagePropertiesFilter`.
    public var name: String { "ImagePropertiesFilter" }
    /// An ImagePropertiesFilter.
    public init() {}
    /// Relevant when the image sets `architecture` or `hypervisor_type`.
    public func isRelevant(to spec: RequestSpec) -> Bool {
        spec.imageArchitecture != nil || spec.imageHypervisorType != nil
    }
    /// Passes hosts matching every property the image sets.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        if let arch = context.imageArchitecture,
           host.arch != arch, ImageProperties.canonicalArchitecture(host.arch) != arch { return false }
        if let hv = context.imageHypervisorType,
           host.hypervisorType != hv, ImageProperties.canonicalHypervisorType(host.hypervisorType) != hv { return false }
        return true
    }
}

/// Nova's ServerGroupAffinityFilter: for an `affinity` group with members already placed,
/// only their host passes.
public struct ServerGroupAffinityFilter: HostFilter {
    /// `ServerGroupAffinityFilter`.
    public var name: String { "ServerGroupAffinityFilter" }
    /// A ServerGroupAffinityFilter.
    public init() {}
    /// Relevant for an `affinity` group with at least one placed member.
    public func isRelevant(to spec: RequestSpec) -> Bool {
        spec.group.map { $0.policy == .affinity && !$0.hosts.isEmpty } ?? false
    }
    /// Passes hosts where a member of the group runs.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let g = spec.group, g.policy == .affinity, !g.hosts.isEmpty else { return true }
        return context.groupMembersPerHost[host.name] != nil
    }
}

/// Nova's ServerGroupAntiAffinityFilter: for an `anti-affinity` group, a host passes while
/// it holds fewer than `max_server_per_host` (default 1) members.
public struct ServerGroupAntiAffinityFilter: HostFilter {
    /// `ServerGroupAntiAffinityFilter`.
    public var name: String { "ServerGroupAntiAffinityFilter" }
    /// A ServerGroupAntiAffinityFilter.
    public init() {}
    /// Relevant for an `anti-affinity` group with at least one placed member.
    public func isRelevant(to spec: RequestSpec) -> Bool {
        spec.group.map { $0.policy == .antiAffinity && !$0.hosts.isEmpty } ?? false
    }
    /// Passes hosts below the group's per-host member limit.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        guard let g = spec.group, g.policy == .antiAffinity else { return true }
        return (context.groupMembersPerHost[host.name] ?? 0) < max(1, g.maxServerPerHost)
    }
}

/// Nova's RetryFilter: hosts that already failed this build (`retry.hosts`) are skipped.
public struct RetryFilter: HostFilter {
    /// `RetryFilter`.
    public var name: String { "RetryFilter" }
    /// A RetryFilter.
    public init() {}
    /// Relevant on a reschedule, when some host has been tried.
    public func isRelevant(to spec: RequestSpec) -> Bool { !spec.triedHosts.isEmpty }
    /// Passes hosts not yet tried for this build.
    public func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool {
        !spec.triedHosts.contains(host.name)
    }
}
