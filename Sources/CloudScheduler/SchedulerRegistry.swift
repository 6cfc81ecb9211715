import CloudCore

/// Names → filters and weighers: what Nova's `HostManager` does when it loads
/// `[filter_scheduler] enabled_filters` and `weight_classes`. Backs `/scheduler/filters` and
/// `/scheduler/weighers`: unknown names are `EINVAL` listing the known ones.
public struct SchedulerRegistry: Sendable {
    /// One weigher the registry can build, with the Nova option naming its multiplier.
    public struct WeigherEntry: Sendable {
        /// The Nova class name.
        public var name: String
        /// The Nova option holding its multiplier, e.g. `ram_weight_multiplier`.
        public var multiplierOption: String
        /// Builds the weigher with a multiplier.
        public var make: @Sendable (Double) -> any HostWeigher
        /// An entry.
        public init(name: String, multiplierOption: String, make: @escaping @Sendable (Double) -> any HostWeigher) {
            self.name = name; self.multiplierOption = multiplierOption; self.make = make
        }
    }

    /// The filters it knows, in the order error messages list them.
    public private(set) var filters: [any HostFilter]
    /// The weighers it knows.
    public private(set) var weighers: [WeigherEntry]

    /// A registry of `filters` and `weighers` (Nova's `all_filters` / `all_weighers`).
    public init(filters: [any HostFilter], weighers: [WeigherEntry]) {
        self.filters = filters; self.weighers = weighers
    }

    /// Every filter and weigher in this module.
    public static let standard = SchedulerRegistry(
        filters: [RetryFilter(), AvailabilityZoneFilter(), ComputeFilter(), RamFilter(), CoreFilter(), DiskFilter(),
                  ImagePropertiesFilter(), ServerGroupAntiAffinityFilter(), ServerGroupAffinityFilter()],
        weighers: [
            WeigherEntry(name: "RAMWeigher", multiplierOption: "ram_weight_multiplier") { RAMWeigher(multiplier: $0) },
            WeigherEntry(name: "CPUWeigher", multiplierOption: "cpu_weight_multiplier") { CPUWeigher(multiplier: $0) },
            WeigherEntry(name: "DiskWeigher", multiplierOption: "disk_weight_multiplier") { DiskWeigher(multiplier: $0) },
            WeigherEntry(name: "ServerGroupSoftAffinityWeigher", multiplierOption: "soft_affinity_weight_multiplier") {
                ServerGroupSoftAffinityWeigher(multiplier: $0) },
            WeigherEntry(name: "ServerGroupSoftAntiAffinityWeigher", multiplierOption: "soft_anti_affinity_weight_multiplier") {
                ServerGroupSoftAntiAffinityWeigher(multiplier: $0) },
            WeigherEntry(name: "ImageCacheWeigher", multiplierOption: "image_cache_weight_multiplier") {
                ImageCacheWeigher(multiplier: $0) },
        ])

    /// The filter called `name` (case-insensitive). Throws `EINVAL` listing the known ones.
    public func filter(named name: String) throws(CloudError) -> any HostFilter {
        guard let f = filters.first(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw CloudError.invalid("unknown filter '\(name)'; known filters: " + filters.map(\.name).joined(separator: ", "))
        }
        return f
    }

    /// The weigher called `name` (case-insensitive). Throws `EINVAL` listing the known ones.
    public func weigher(named name: String) throws(CloudError) -> WeigherEntry {
        guard let w = weighers.first(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw CloudError.invalid("unknown weigher '\(name)'; known weighers: " + weighers.map(\.name).joined(separator: ", "))
        }
        return w
    }

    /// Parses an `enabled_filters` list as a user writes it (names separated by spaces,
    /// commas or newlines; any case) into canonical names. An empty list is valid (every
    /// host passes). Throws `EINVAL` for an unknown or repeated name.
    public func parseFilters(_ text: String) throws(CloudError) -> [String] {
        var names: [String] = []
        for token in Self.tokens(text) {
            let name = try filter(named: token).name
            if names.contains(name) { throw CloudError.invalid("filter \(name) is listed twice") }
            names.append(name)
        }
        return names
    }

    /// Parses a weigher list: `NAME` or `NAME=MULTIPLIER` separated by spaces, commas or
    /// newlines. Returns canonical names with the multipliers given (nil: keep the current
    /// one). Throws `EINVAL` for an unknown or repeated name or a bad multiplier.
    public func parseWeighers(_ text: String) throws(CloudError) -> [(name: String, multiplier: Double?)] {
        var out: [(name: String, multiplier: Double?)] = []
        for token in Self.tokens(text) {
            let parts = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let name = try weigher(named: parts[0]).name
            if out.contains(where: { $0.name == name }) { throw CloudError.invalid("weigher \(name) is listed twice") }
            out.append((name, try parts.count == 2 ? SchedulerConfig.validateMultiplier(parts[1]) : nil))
        }
        return out
    }

    /// Splits on whitespace and commas, dropping empty pieces.
    static func tokens(_ text: String) -> [String] {
        text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
    }
}
