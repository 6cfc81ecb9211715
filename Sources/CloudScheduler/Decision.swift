import CloudCore

extension FilterScheduler {
    /// How many hosts one filter removed, for the fault and `/events`
    /// (Nova logs "Filter RamFilter returned 0 hosts").
    public struct FilterReport: Sendable, Equatable {
        /// The filter's Nova name (or `ignore_hosts` / `requested_destination`).
        public var filter: String
        /// Hosts it dropped.
        public var removed: Int
        /// Hosts left after it.
        public var remaining: Int
    }

    /// A host that passed the filters and its total weight (Nova's `WeighedHost`).
    public struct WeighedHost: Sendable, Equatable {
        /// The host's name.
        public var name: String
        /// Sum over weighers of multiplier × normalised weight (higher wins). For the chance
        /// driver, the random draw that ordered it.
        public var weight: Double
        /// Each weigher's share (multiplier × normalised weight), in `Decision.weighers`
        /// order. Filled for the pick and its alternates only.
        public var parts: [Double]
    }

    /// A weigher as it ran in one decision.
    public struct WeigherRun: Sendable, Equatable {
        /// The weigher's Nova name.
        public var name: String
        /// Its multiplier.
        public var multiplier: Double
    }

    /// One scheduling decision, kept whole for `/scheduler/last`: the candidates, what each
    /// filter removed, the weights, and the pick (Nova's `select_destinations` result for one
    /// instance: a `Selection` with its alternates, plus what Nova only logs).
    public struct Decision: Sendable, Equatable {
        /// The driver that decided.
        public var driver: SchedulerConfig.Driver
        /// Hosts handed to the scheduler.
        public var candidates: Int
        /// The filters that ran, in order, with what each removed.
        public var reports: [FilterReport]
        /// Enabled filters the request gave nothing to check (no zone, no group...).
        public var skipped: [String]
        /// The weighers that ran (multiplier ≠ 0 and relevant to the request).
        public var weighers: [WeigherRun]
        /// Where the names of the hosts that passed are found.
        var names: HostNames
        /// Indices (into `names`) of the hosts that passed the filters, in snapshot order.
        var passed: [Int]
        /// Their weights, aligned with `passed`.
        var weights: [Double]
        /// Every host that passed the filters, in snapshot order, with its weight (built on
        /// access, so a decision over 10,000 hosts does not copy 10,000 names up front).
        public var weighed: [WeighedHost] {
            zip(passed, weights).map { WeighedHost(name: names[$0], weight: $1, parts: []) }
        }
        /// The chosen host (Nova's `chosen_host`): at random among the best
        /// `host_subset_size`; nil when no host passed.
        public var pick: String?
        /// The next best hosts after the pick, best first (Nova's alternates,
        /// `max_attempts - 1` of them).
        public var alternates: [String]
        /// The weight breakdown of the pick and its alternates, in that order.
        public var top: [WeighedHost]

        /// Every host that passed, the pick first, then by weight (ties by name). Sorted on
        /// each access: O(n log n), for callers that walk the whole list.
        public var ranked: [String] {
            guard let pick else { return [] }
            var order = passed.indices.map { (weight: weights[$0], host: passed[$0]) }
            order.sort { a, b in a.weight != b.weight ? a.weight > b.weight : names[a.host] < names[b.host] }
            var out = [pick]
            out.reserveCapacity(order.count)
            for o in order where names[o.host] != pick { out.append(names[o.host]) }
            return out
        }

        /// Nova's "No valid host was found" message with which filter eliminated how many.
        public var failureReason: String {
            let detail = reports.map { "\($0.filter) removed \($0.removed) (\($0.remaining) left)" }.joined(separator: ", ")
            return "No valid host was found. " + (detail.isEmpty ? "There are no hosts." : detail)
        }

        /// The decision as an operator reads it: candidates, each filter, the weights of
        /// the best hosts, the pick. Multi-line, newline-terminated.
        public func describe() -> String {
            var out = "driver: \(driver.rawValue)\ncandidates: \(candidates)\n"
            for r in reports {
                out += "filter: \(pad(r.filter, 32)) removed \(r.removed), \(r.remaining) left\n"
            }
            if !skipped.isEmpty { out += "not applicable: " + skipped.joined(separator: " ") + "\n" }
            if !weighers.isEmpty {
                out += "weighers: " + weighers.map { "\($0.name)×\(fmt($0.multiplier))" }.joined(separator: " ") + "\n"
            }
            out += "passed: \(passed.count)\n"
            for (i, h) in top.enumerated() {
                let parts = zip(weighers, h.parts).map { "\($0.name)=\(fmt($1))" }.joined(separator: " ")
                out += "\(i == 0 ? "pick:     " : "alternate:") \(pad(h.name, 20)) weight \(fmt(h.weight))"
                    + (parts.isEmpty ? "" : "  (\(parts))") + "\n"
            }
            if pick == nil { out += failureReason + "\n" }
            return out
        }

        /// Drops the reference to the snapshot array, keeping the passing hosts' names.
        mutating func detach() {
            guard names.snapshots != nil else { return }
            names = HostNames(snapshots: nil, list: passed.map { names[$0] })
            passed = Array(passed.indices)
        }

        private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        private func fmt(_ x: Double) -> String {
            let r = (x * 1000).rounded() / 1000
            // Whole numbers print without ".0" only when they fit an Int: a weight can be
            // as large as a multiplier (up to ±1.8e308) or infinite, and Int(r) would trap.
            return r == r.rounded() && abs(r) < 1e15 ? "\(Int(r))" : "\(r)"
        }
    }

    /// The names behind a decision: the snapshot array it was made over (one retain), or,
    /// once detached, the passing hosts' names alone (so the snapshots can change
    /// without a copy-on-write copy of all of them).
    struct HostNames: Sendable, Equatable {
        var snapshots: [HostSnapshot]?
        var list: [String] = []
        subscript(i: Int) -> String {
            if let snapshots { return snapshots[i].name }
            return list[i]
        }
    }

    /// The outcome of a multi-instance request (Nova's `select_destinations` with
    /// `num_instances` > 1): one decision per instance, each made after the previous picks
    /// were consumed. All or nothing, as in Nova: incomplete means NoValidHost for all.
    public struct Placement: Sendable, Equatable {
        /// Instances asked for.
        public var requested: Int
        /// One decision per instance placed, then the failing one (if any).
        public var decisions: [Decision]
        /// The picks, one per instance, in order (shorter than `requested` on failure).
        public var hosts: [String]
        /// True when every instance got a host.
        public var isComplete: Bool { hosts.count == requested }
        /// Nil when complete, else which instance found no host and why.
        public var failureReason: String? {
            guard !isComplete else { return nil }
            let why = decisions.last.map(\.failureReason) ?? "No valid host was found. There are no hosts."
            return requested > 1 ? why + " (instance \(hosts.count + 1) of \(requested))" : why
        }
    }
}
