import CloudCore

/// Nova's FilterScheduler (and ChanceScheduler): filters drop hosts that cannot take the
/// instance, weighers rank the rest, the pick is random among the best `host_subset_size`.
/// Pure: same snapshots (and random generator) in, same answer out; never reads the store.
///
/// A decision is O(hosts × (filters + weighers)) with three scratch arrays and no per-host
/// allocation; weights are normalised with min and max found in one pass, and only the best
/// `host_subset_size + max_attempts - 1` hosts are ordered (partial selection).
public struct FilterScheduler: Sendable {
    /// The settings this scheduler was built from.
    public private(set) var config: SchedulerConfig
    /// The enabled filters, in order (Nova's `enabled_filters`).
    public let filters: [any HostFilter]
    /// The enabled weighers with their multipliers (Nova's `weight_classes`).
    public let weighers: [any HostWeigher]

    /// The overcommit ratios (Nova's `*_allocation_ratio`).
    public var ratios: AllocationRatios {
        get { config.ratios }
        set { config.ratios = newValue }
    }

    /// Nova's defaults (see `SchedulerConfig`) with `ratios`.
    public init(ratios: AllocationRatios = AllocationRatios()) {
        var c = SchedulerConfig()
        c.ratios = ratios
        let r = SchedulerRegistry.standard   // the defaults are all registered: nothing is dropped
        self.init(config: c, filters: c.enabledFilters.compactMap { try? r.filter(named: $0) },
                  weighers: c.weighers.compactMap { try? r.weigher(named: $0).make(c.multiplier(for: $0)) })
    }

    /// A scheduler as `config` describes it. Throws `EINVAL` for unknown names or bad numbers.
    public init(config: SchedulerConfig, registry: SchedulerRegistry = .standard) throws(CloudError) {
        try config.validate(registry: registry)
        var fs: [any HostFilter] = [], ws: [any HostWeigher] = []
        for name in config.enabledFilters { fs.append(try registry.filter(named: name)) }
        for name in config.weighers { ws.append(try registry.weigher(named: name).make(config.multiplier(for: name))) }
        self.init(config: config, filters: fs, weighers: ws)
    }

    private init(config: SchedulerConfig, filters: [any HostFilter], weighers: [any HostWeigher]) {
        self.config = config; self.filters = filters; self.weighers = weighers
    }

    /// The filters the chance driver runs: Nova's ChanceScheduler takes any host that is up
    /// and not ignored; ours also insists the instance fits, as every claim must.
    static let chanceFilters: [any HostFilter] = [RetryFilter(), ComputeFilter(), RamFilter(), CoreFilter(), DiskFilter()]

    // MARK: - Entry points

    /// Filters and weighs `hosts` for one instance of `request` (no placement constraints).
    public func select(_ request: ResourceRequest, from hosts: [HostSnapshot]) -> Decision {
        select(RequestSpec(request), from: hosts)
    }

    /// Filters and weighs `hosts` for one instance of `spec`.
    public func select(_ spec: RequestSpec, from hosts: [HostSnapshot]) -> Decision {
        var rng = SystemRandomNumberGenerator()
        return select(spec, from: hosts, using: &rng)
    }

    /// Filters and weighs `hosts` for one instance of `spec`; `rng` draws the random parts
    /// (`host_subset_size`, shuffling ties, the chance driver).
    public func select<G: RandomNumberGenerator>(_ spec: RequestSpec, from hosts: [HostSnapshot],
                                                 using rng: inout G) -> Decision {
        decide(spec, hosts, avoid: [], rng: &rng).decision
    }

    /// Places `count` instances of `spec` one after the other, consuming each pick's
    /// resources in a private copy of the snapshots and adding it to the spec's server group
    /// (Nova's `_consume_selected_host`), so anti-affinity holds within the request. Stops
    /// at the first instance with no host.
    public func select<G: RandomNumberGenerator>(_ spec: RequestSpec, from hosts: [HostSnapshot], count: Int,
                                                 using rng: inout G) -> Placement {
        var state = hosts, spec = spec
        var placement = Placement(requested: count, decisions: [], hosts: [])
        var picked: Set<Int> = []
        for _ in 0..<max(0, count) {
            var (decision, index) = decide(spec, state, avoid: picked, rng: &rng)
            decision.detach()   // else consuming below would copy all the snapshots
            placement.decisions.append(decision)
            guard let index else { break }
            state[index].consume(spec.resources)
            spec.group?.hosts.append(state[index].name)
            picked.insert(index)
            placement.hosts.append(state[index].name)
        }
        return placement
    }

    /// `select(_:from:count:using:)` with the system random generator.
    public func select(_ spec: RequestSpec, from hosts: [HostSnapshot], count: Int) -> Placement {
        var rng = SystemRandomNumberGenerator()
        return select(spec, from: hosts, count: count, using: &rng)
    }

    /// True when `host` is up and can still take `request` under the ratios (ComputeFilter,
    /// RamFilter, CoreFilter, DiskFilter): the re-check inside the claim transaction.
    public func fits(_ request: ResourceRequest, on host: HostSnapshot) -> Bool {
        let spec = RequestSpec(request), ctx = FilterContext(spec: spec, ratios: ratios)
        return ComputeFilter().passes(host, spec, ctx) && RamFilter().passes(host, spec, ctx)
            && CoreFilter().passes(host, spec, ctx) && DiskFilter().passes(host, spec, ctx)
    }

    /// True when `host` passes every enabled filter for `spec`: the claim-time re-check
    /// when the spec carries a server group or zone as well as resources.
    public func passesFilters(_ spec: RequestSpec, on host: HostSnapshot) -> Bool {
        let ctx = FilterContext(spec: spec, ratios: ratios)
        let active = config.driver == .chance ? Self.chanceFilters : filters
        return active.allSatisfy { !$0.isRelevant(to: spec) || $0.passes(host, spec, ctx) }
    }

    // MARK: - The decision

    /// One decision over `hosts`; `avoid` (chance driver, multi-instance) ranks those hosts
    /// below all others, as Nova's `random.sample` prefers distinct hosts.
    func decide<G: RandomNumberGenerator>(_ spec: RequestSpec, _ hosts: [HostSnapshot], avoid: Set<Int>,
                                          rng: inout G) -> (decision: Decision, index: Int?) {
        let ctx = FilterContext(spec: spec, ratios: ratios)
        var cand = Array(hosts.indices)
        var reports: [FilterReport] = [], skipped: [String] = []

        // Nova's host_manager strips ignore_hosts and applies requested_destination first.
        if !spec.ignoreHosts.isEmpty {
            cand.removeAll { spec.ignoreHosts.contains(hosts[$0].name) }
            reports.append(FilterReport(filter: "ignore_hosts", removed: hosts.count - cand.count, remaining: cand.count))
        }
        if let only = spec.requestedHost {
            let before = cand.count
            cand.removeAll { hosts[$0].name != only }
            reports.append(FilterReport(filter: "requested_destination", removed: before - cand.count, remaining: cand.count))
        }
        for f in config.driver == .chance ? Self.chanceFilters : filters {
            guard f.isRelevant(to: spec) else { skipped.append(f.name); continue }
            let before = cand.count
            f.filterAll(hosts, &cand, spec, ctx)
            reports.append(FilterReport(filter: f.name, removed: before - cand.count, remaining: cand.count))
        }

        let m = cand.count
        var weights = [Double](repeating: 0, count: m)
        var runs: [WeigherRun] = [], norms: [Normalization] = [], used: [any HostWeigher] = []
        if config.driver == .chance {
            // One raw draw per host: [0, 1) from the top 53 bits (the stdlib's generic
            // `Double.random(in:using:)` costs ~10× more when not specialised).
            for j in 0..<m { weights[j] = Double(rng.next() >> 11) * 0x1p-53 }
            if !avoid.isEmpty { for j in 0..<m where avoid.contains(cand[j]) { weights[j] -= 2 } }
        } else if m > 1 {   // Nova: zero or one host is not weighed at all
            var raw = [Double](repeating: 0, count: m)
            for w in weighers where w.multiplier != 0 && w.isRelevant(to: spec) {
                let n = w.weighAll(hosts, cand, spec, ctx, into: &raw)
                let k = w.multiplier
                weights.withUnsafeMutableBufferPointer { out in
                    raw.withUnsafeBufferPointer { r in for j in 0..<m { out[j] += k * n(r[j]) } }
                }
                runs.append(WeigherRun(name: w.name, multiplier: k)); norms.append(n); used.append(w)
            }
        }

        // Order only the best few; pick among the best host_subset_size.
        let subset = min(config.hostSubsetSize, m)
        // At most m hosts are ranked: clamp first, so a huge max_attempts cannot overflow.
        let best = Ranking.best(subset + min(config.maxAttempts, m) - 1, of: m, weights: weights) { hosts[cand[$0]].name }
        var pickPos: Int? = best.first
        if subset > 1 { pickPos = best[Int.random(in: 0..<subset, using: &rng)] }
        if config.shuffleBestSameWeighedHosts, let top = best.first, config.driver == .filter {
            pickPos = Ranking.randomTied(with: top, subset: subset, of: m, weights: weights, rng: &rng) ?? pickPos
        }

        var decision = Decision(driver: config.driver, candidates: hosts.count, reports: reports, skipped: skipped,
                                weighers: runs, names: HostNames(snapshots: hosts), passed: cand, weights: weights,
                                pick: nil, alternates: [], top: [])
        guard let p = pickPos else { return (decision, nil) }
        let order = [p] + best.filter { $0 != p }.prefix(config.maxAttempts - 1)
        decision.pick = hosts[cand[p]].name
        decision.alternates = order.dropFirst().map { hosts[cand[$0]].name }
        decision.top = order.map { j in
            let h = hosts[cand[j]]
            let parts = zip(used, norms).map { w, n in w.multiplier * n(w.clampedWeight(h, spec, ctx)) }
            return WeighedHost(name: h.name, weight: weights[j], parts: parts)
        }
        return (decision, cand[p])
    }
}
