import CloudCore

/// One filter of the FilterScheduler (Nova's `BaseHostFilter`): keeps or drops one host for
/// one request. Filters are small, stateless values; anything costly to derive from the spec
/// is derived once per decision in `FilterContext`.
public protocol HostFilter: Sendable {
    /// The Nova class name, as written in `enabled_filters` and shown in reports.
    var name: String { get }
    /// False when the spec asks nothing of this filter (no zone requested, no group...): the
    /// scheduler then skips it and leaves it out of the report. Defaults to true.
    func isRelevant(to spec: RequestSpec) -> Bool
    /// Nova's `host_passes(host_state, spec_obj)`.
    func passes(_ host: HostSnapshot, _ spec: RequestSpec, _ context: FilterContext) -> Bool
    /// Nova's `filter_all`: keeps in `candidates` (indices into `hosts`, in order) the hosts
    /// that pass. The default calls `passes` for each; being a requirement, it is compiled
    /// per filter type, so the per-host test inlines instead of copying each snapshot into a
    /// dynamic call.
    func filterAll(_ hosts: [HostSnapshot], _ candidates: inout [Int], _ spec: RequestSpec, _ context: FilterContext)
}

extension HostFilter {
    /// Every filter is relevant unless it says otherwise.
    public func isRelevant(to spec: RequestSpec) -> Bool { true }

    /// Compacts `candidates` in place to the hosts that pass.
    public func filterAll(_ hosts: [HostSnapshot], _ candidates: inout [Int], _ spec: RequestSpec, _ context: FilterContext) {
        let kept = candidates.withUnsafeMutableBufferPointer { cand in
            var kept = 0
            for j in cand.indices where passes(hosts[cand[j]], spec, context) {
                cand[kept] = cand[j]
                kept += 1
            }
            return kept
        }
        candidates.removeLast(candidates.count - kept)
    }
}

/// What the filters share for one decision, derived from the spec once rather than per host
/// (Nova reads these from `CONF` and the `RequestSpec` on every call).
public struct FilterContext: Sendable {
    /// The overcommit ratios (Nova's `*_allocation_ratio`).
    public var ratios: AllocationRatios
    /// The image's architecture, canonical (Nova's `Architecture.canonicalize`).
    public var imageArchitecture: String?
    /// The image's hypervisor type, canonical (Nova's `HVType.canonicalize`).
    public var imageHypervisorType: String?
    /// Members of the request's server group per host (from `InstanceGroup.hosts`).
    public var groupMembersPerHost: [String: Int]

    /// The context for one decision on `spec`.
    public init(spec: RequestSpec, ratios: AllocationRatios) {
        self.ratios = ratios
        imageArchitecture = spec.imageArchitecture.map(ImageProperties.canonicalArchitecture)
        imageHypervisorType = spec.imageHypervisorType.map(ImageProperties.canonicalHypervisorType)
        groupMembersPerHost = spec.group?.memberCounts() ?? [:]
    }
}
