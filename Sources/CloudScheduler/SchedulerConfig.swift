import CloudCore

/// The scheduler's settings: Nova's `[scheduler]` and `[filter_scheduler]` options and the
/// allocation ratios, as one value. Each option is also a key/text pair (`value(of:)`,
/// `set(_:to:)`) so `/scheduler/*` files map onto it one to one, validated on write.
public struct SchedulerConfig: Sendable, Equatable {
    /// Nova's `[scheduler] driver`.
    public enum Driver: String, Sendable, CaseIterable {
        /// `filter_scheduler`: filters, then weighers.
        case filter
        /// `chance_scheduler`: a random host among those up with room.
        case chance
    }

    /// Nova's `[scheduler] driver` (default `filter`).
    public var driver: Driver = .filter
    /// Nova's `enabled_filters`, in the order they run.
    public var enabledFilters: [String] = SchedulerConfig.defaultFilters
    /// Nova's `weight_classes`: the weighers that run (default: all of them, as in Nova).
    public var weighers: [String] = SchedulerRegistry.standard.weighers.map(\.name)
    /// Multiplier per weigher name (Nova's `*_weight_multiplier`); absent means 1.0.
    public var multipliers: [String: Double] = [:]
    /// Nova's `host_subset_size`: the pick is random among this many best hosts (default 1).
    public var hostSubsetSize: Int = 1
    /// Nova's `shuffle_best_same_weighed_hosts`: pick at random among hosts tied for best.
    public var shuffleBestSameWeighedHosts: Bool = false
    /// Nova's `[scheduler] max_attempts`: builds tried per instance (the engine reschedules);
    /// a decision lists `max_attempts - 1` alternates after its pick.
    public var maxAttempts: Int = 3
    /// Nova's `cpu/ram/disk_allocation_ratio`.
    public var ratios = AllocationRatios()

    /// Nova's default `enabled_filters` as cloudfs runs them.
    public static let defaultFilters = ["RetryFilter", "AvailabilityZoneFilter", "ComputeFilter", "RamFilter",
                                        "CoreFilter", "DiskFilter", "ImagePropertiesFilter",
                                        "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter"]

    /// Nova's defaults.
    public init() {}

    /// The multiplier in force for weigher `name` (1.0 unless set).
    public func multiplier(for name: String) -> Double { multipliers[name] ?? 1.0 }

    /// Checks every name and number (for a config built in code rather than parsed).
    /// Throws `EINVAL` with the first problem.
    public func validate(registry: SchedulerRegistry = .standard) throws(CloudError) {
        _ = try registry.parseFilters(enabledFilters.joined(separator: " "))
        _ = try registry.parseWeighers(weighers.joined(separator: " "))
        for (name, m) in multipliers {
            _ = try registry.weigher(named: name)
            guard m.isFinite else { throw CloudError.invalid("multiplier of \(name) must be a finite number") }
        }
        guard hostSubsetSize >= 1 else { throw CloudError.invalid("host_subset_size must be at least 1") }
        guard maxAttempts >= 1 else { throw CloudError.invalid("max_attempts must be at least 1") }
        for (n, r) in [("cpu", ratios.cpu), ("ram", ratios.ram), ("disk", ratios.disk)] where !(r.isFinite && r > 0) {
            throw CloudError.invalid("\(n)_allocation_ratio must be a number greater than 0")
        }
    }

    // MARK: - Keys: one per `/scheduler/*` file

    /// Every settable key, in display order (Nova's option names).
    public static func keys(registry: SchedulerRegistry = .standard) -> [String] {
        ["driver", "filters", "weighers", "host_subset_size", "shuffle_best_same_weighed_hosts", "max_attempts",
         "cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio"]
            + registry.weighers.map(\.multiplierOption)
    }

    /// The text of `key` as `cat` shows it (newline-terminated), or nil for an unknown key.
    public func value(of key: String, registry: SchedulerRegistry = .standard) -> String? {
        let text: String
        switch key {
        case "driver": text = driver.rawValue
        case "filters": text = enabledFilters.joined(separator: "\n")
        case "weighers": text = weighers.map { "\($0)=\(multiplier(for: $0))" }.joined(separator: "\n")
        case "host_subset_size": text = "\(hostSubsetSize)"
        case "shuffle_best_same_weighed_hosts": text = "\(shuffleBestSameWeighedHosts)"
        case "max_attempts": text = "\(maxAttempts)"
        case "cpu_allocation_ratio": text = "\(ratios.cpu)"
        case "ram_allocation_ratio": text = "\(ratios.ram)"
        case "disk_allocation_ratio": text = "\(ratios.disk)"
        default:
            guard let w = registry.weighers.first(where: { $0.multiplierOption == key }) else { return nil }
            text = "\(multiplier(for: w.name))"
        }
        return text.isEmpty ? "" : text + "\n"
    }

    /// Sets `key` from what a user wrote. Throws `EINVAL` with a readable reason (unknown
    /// key, unknown filter, bad number), leaving the config unchanged.
    public mutating func set(_ key: String, to text: String, registry: SchedulerRegistry = .standard) throws(CloudError) {
        switch key {
        case "driver": driver = try Self.validateDriver(text)
        case "filters": enabledFilters = try registry.parseFilters(text)
        case "weighers":
            let parsed = try registry.parseWeighers(text)
            weighers = parsed.map(\.name)
            for (name, m) in parsed { if let m { multipliers[name] = m } }
        case "host_subset_size": hostSubsetSize = try Self.validateCount(text, key)
        case "shuffle_best_same_weighed_hosts": shuffleBestSameWeighedHosts = try Self.validateBool(text, key)
        case "max_attempts": maxAttempts = try Self.validateCount(text, key)
        case "cpu_allocation_ratio": ratios.cpu = try Self.validateRatio(text)
        case "ram_allocation_ratio": ratios.ram = try Self.validateRatio(text)
        case "disk_allocation_ratio": ratios.disk = try Self.validateRatio(text)
        default:
            guard let w = registry.weighers.first(where: { $0.multiplierOption == key }) else {
                throw CloudError.invalid("unknown scheduler option '\(key)'; known: "
                                         + Self.keys(registry: registry).joined(separator: ", "))
            }
            multipliers[w.name] = try Self.validateMultiplier(text)
        }
    }

    // MARK: - Validators (each returns the parsed value or throws EINVAL)

    /// An allocation ratio: a finite number greater than 0 (`1.5`, `16`).
    public static func validateRatio(_ text: String) throws(CloudError) -> Double {
        let t = text.trimmingWhitespace()
        guard let r = Double(t), r.isFinite, r > 0 else {
            throw CloudError.invalid("an allocation ratio must be a number greater than 0, like 1.0 or 16; got '\(t)'")
        }
        return r
    }

    /// A weigher multiplier: any finite number; negative stacks, 0 disables (`-1.0`).
    public static func validateMultiplier(_ text: String) throws(CloudError) -> Double {
        let t = text.trimmingWhitespace()
        guard let m = Double(t), m.isFinite else {
            throw CloudError.invalid("a weight multiplier must be a number (negative to stack, positive to spread); got '\(t)'")
        }
        return m
    }

    /// A whole number of at least 1 (`host_subset_size`, `max_attempts`).
    public static func validateCount(_ text: String, _ key: String = "value") throws(CloudError) -> Int {
        let t = text.trimmingWhitespace()
        guard let n = Int(t), n >= 1 else { throw CloudError.invalid("\(key) must be a whole number of at least 1; got '\(t)'") }
        return n
    }

    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    public static func validateBool(_ text: String, _ key: String = "value") throws(CloudError) -> Bool {
        switch text.trimmingWhitespace().lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        case let t: throw CloudError.invalid("\(key) must be true or false; got '\(t)'")
        }
    }

    /// A driver name: `filter` or `chance` (Nova's `filter_scheduler`/`chance_scheduler` too).
    public static func validateDriver(_ text: String) throws(CloudError) -> Driver {
        let t = text.trimmingWhitespace().lowercased()
        let base = t.hasSuffix("_scheduler") ? String(t.dropLast("_scheduler".count)) : t
        guard let d = Driver(rawValue: base) else { throw CloudError.invalid("unknown scheduler driver '\(t)'; known: filter, chance") }
        return d
    }
}
