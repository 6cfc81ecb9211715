import CloudCore

/// Nova's FilterScheduler reduced to what the foundation needs: ComputeFilter (host up),
/// Ram/Core/Disk filters with allocation ratios, then the RAM weigher (most free RAM wins,
/// i.e. spread). Pure: same snapshots in, same answer out.
public struct FilterScheduler: Sendable {
    public var ratios: AllocationRatios
    public init(ratios: AllocationRatios = AllocationRatios()) { self.ratios = ratios }

    /// How many hosts one filter removed, for the fault and `/events`
    /// (Nova logs "Filter RamFilter returned 0 hosts").
    public struct FilterReport: Sendable, Equatable {
        public var filter: String
        public var removed: Int
        public var remaining: Int
    }

    /// A decision: the hosts that passed, best first, and the filter-by-filter report.
    public struct Decision: Sendable, Equatable {
        public var ranked: [String]
        public var reports: [FilterReport]
        /// Nova's "No valid host was found" message with which filter eliminated how many.
        public var failureReason: String {
            let detail = reports.map { "\($0.filter) removed \($0.removed) (\($0.remaining) left)" }.joined(separator: ", ")
            return "No valid host was found. " + (detail.isEmpty ? "There are no hosts." : detail)
        }
    }

    /// Filters and weighs `hosts` for `request`.
    public func select(_ request: ResourceRequest, from hosts: [HostSnapshot]) -> Decision {
        var candidates = hosts
        var reports: [FilterReport] = []
        func apply(_ name: String, _ keep: (HostSnapshot) -> Bool) {
            let before = candidates.count
            candidates = candidates.filter(keep)
            reports.append(FilterReport(filter: name, removed: before - candidates.count, remaining: candidates.count))
        }
        apply("ComputeFilter") { $0.state == .up }
        apply("RamFilter") { Double($0.ramMBUsed + request.ramMB) <= Double($0.ramMB) * ratios.ram }
        apply("CoreFilter") { Double($0.vcpusUsed + request.vcpus) <= Double($0.vcpus) * ratios.cpu }
        apply("DiskFilter") { Double($0.diskGBUsed + request.diskGB) <= Double($0.diskGB) * ratios.disk }
        let ranked = candidates
            .map { ($0.name, Double($0.ramMB) * ratios.ram - Double($0.ramMBUsed)) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
            .map(\.0)
        return Decision(ranked: ranked, reports: reports)
    }

    /// True when `host` can still take `request` (re-checked inside the claim transaction).
    public func fits(_ request: ResourceRequest, on host: HostSnapshot) -> Bool {
        !select(request, from: [host]).ranked.isEmpty
    }
}
