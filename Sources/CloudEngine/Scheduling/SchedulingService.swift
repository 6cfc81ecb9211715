import CloudCore
import CloudScheduler
import CloudStore
import Foundation
import Synchronization

/// Nova's scheduler as the engine runs it: the live FilterScheduler options
/// (`/scheduler/*`, Nova's `[filter_scheduler]`), host snapshots built from the catalog
/// (our own claims, never a re-read of the world), the last decision (`/scheduler/last`),
/// and `selectAndClaim`, the one path by which builds, migrations, evacuations and resizes
/// get a host.
final class SchedulingService: SchedulerAPI, Placement, @unchecked Sendable {
    // @unchecked: `state` is a Mutex; the rest is immutable after init.
    private struct State {
        var config = SchedulerConfig() { didSet { scheduler = nil } }
        /// The FilterScheduler for `config`, built at the first placement after it changed:
        /// parsing and checking the filter and weigher lists was 4% of a build's
        /// instructions when every placement built its own.
        var scheduler: FilterScheduler?
        var last = "no decision yet\n"
    }
    let core: EngineCore
    private let state = Mutex(State())

    init(core: EngineCore) { self.core = core }

    // MARK: SchedulerAPI

    var keys: [String] { SchedulerConfig.keys() }

    func value(_ key: String, _ caller: Caller) -> String? {
        guard core.visible(caller, ObjectRef("scheduler option", key, readers: .admins)) else { return nil }
        return state.withLock { $0.config.value(of: key) }
    }

    func last(_ caller: Caller) -> String {
        guard core.visible(caller, ObjectRef("scheduler option", "last", readers: .admins)) else { return "" }
        return state.withLock { $0.last }
    }

    func set(_ key: String, _ value: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("scheduler", key, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("change the scheduler"), ObjectRef("scheduler option", key))
            var config = state.withLock { $0.config }
            try config.set(key, to: value)
            try config.validate()
            // Every option is saved as its current text, so a restart replays one consistent state.
            let saved = SchedulerConfig.keys().map { k in
                (SettingKey.scheduler(k), config.value(of: k)?.trimmingCharacters(in: .newlines) ?? "")
            }
            try core.write({ (s) throws(CloudError) in try s.setSettings(saved) }) { c, _ in
                for (k, v) in saved { c.settings[k] = v.isEmpty ? nil : v }
            }
            state.withLock { $0.config = config }
        }
        core.events.append(kind: "scheduler.set", object: key, ["value": value.replacingOccurrences(of: "\n", with: ","),
                                                               "uid": "\(caller.uid)"])
        core.announce(.scheduler, key)
    }

    /// Replays the saved options (in key order) at start-up; a value that no longer
    /// parses is reported and skipped.
    func load() {
        var config = SchedulerConfig()
        for k in SchedulerConfig.keys() {
            guard let text = core.setting(.scheduler(k)) else { continue }
            do throws(CloudError) { try config.set(k, to: text) } catch {
                core.events.append(kind: "scheduler.ignored", object: k, ["reason": error.reason])
            }
        }
        state.withLock { $0.config = config }
    }

    // MARK: Placement

    var maxAttempts: Int { state.withLock { $0.config.maxAttempts } }

    /// The FilterScheduler for the live options (built once per change of them).
    private func currentScheduler() -> FilterScheduler {
        let built = state.withLock { s -> Result<FilterScheduler, CloudError> in
            if let scheduler = s.scheduler { return .success(scheduler) }
            do throws(CloudError) {
                let scheduler = try FilterScheduler(config: s.config)
                s.scheduler = scheduler
                return .success(scheduler)
            } catch { return .failure(error) }
        }
        switch built {
        case .success(let scheduler): return scheduler
        case .failure(let error):
            // Options are validated when written, so this cannot happen; say so if it does.
            core.recordFailure(error, kind: "scheduler", object: "-", doing: "building the filter scheduler")
            return FilterScheduler()
        }
    }

    func requestSpec(for r: InstanceRecord, resources: ResourceRequest?) -> RequestSpec {
        var spec = RequestSpec(resources ?? ResourceRequest(vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb))
        let (props, group) = core.catalog.withLock { c -> ([String: String], ServerGroupSpec?) in
            var group: ServerGroupSpec?
            if let name = r.groupName, let g = c.groups[name], let policy = ServerGroupPolicy(rawValue: g.policy) {
                group = ServerGroupSpec(name: name, policy: policy, hosts: Self.memberHosts(name, besides: r.id, c))
            }
            return (c.image(id: r.imageId)?.properties ?? [:], group)
        }
        spec.setImageProperties(props)
        spec.group = group
        spec.availabilityZone = r.availabilityZone
        spec.imageID = r.imageId
        // The cloud's bridges, DHCP and firewall exist on this machine only; on a remote
        // host an agent builds vxlan segments and nothing else: with managed networking a
        // remote host takes only guests of vxlan networks, and only when it has an agent.
        let managedRemote = core.catalog.withLock { c in
            let vxlan = c.managedNetwork && c.plannedNetworkMode(for: r) == .vxlan
            return c.managedNetwork ? c.hosts.values.filter { h in
                h.isRemote && !(vxlan && !h.record.agent.isEmpty)
            }.map(\.record.name) : []
        }
        spec.ignoreHosts.formUnion(managedRemote)
        return spec
    }

    /// Where a server group's other members run (ServerGroup(Anti)AffinityFilter's input).
    private static func memberHosts(_ group: String, besides id: String, _ c: Catalog) -> [String] {
        c.instances.values.filter { $0.groupName == group && $0.id != id }.compactMap(\.host)
    }

    /// The hosts as the scheduler sees them: capacity from their connections, usage from
    /// the store's usage sums as last read.
    func snapshots() -> [HostSnapshot] {
        core.reloadUsageIfStale()
        return core.catalog.withLock { c in
            c.hosts.values.map { h in
                let u = c.usage[h.record.name] ?? HostUsage()
                var s = HostSnapshot(name: h.record.name, state: h.state, vcpus: h.capacity?.vcpus ?? 0,
                                     ramMB: h.capacity?.ramMB ?? 0, diskGB: h.capacity?.diskGB ?? 0,
                                     vcpusUsed: u.vcpus, ramMBUsed: u.ramMB, diskGBUsed: u.diskGB)
                s.availabilityZone = h.record.availabilityZone
                s.hypervisorType = h.capacity?.hypervisorType ?? ""
                s.arch = h.capacity?.arch ?? "x86_64"
                if h.isRemote { s.cachedImages = Set((c.hostImages[h.record.name] ?? [:]).keys) }
                return s
            }
        }
    }

    /// How often a decision is made again when every host it ranked was taken by
    /// concurrent claims before this one (a lost race is not a failed attempt: some other
    /// claim succeeded, so the cloud moved on).
    static let raceRounds = 8

    /// Nova's select_destinations + the resource tracker's claim, made atomic: filter and
    /// weigh fresh snapshots, then try the ranked hosts in order, each through `claim`,
    /// whose transaction runs every filter again on the host's usage as it is then (the
    /// `fits` check). A lost race decides again (`raceRounds`). Returns the claimed row;
    /// nil when the instance moved on (left `placing`, the task_state it holds while it is
    /// placed, or a delete came); `ENOSPC` with
    /// the filter report of a decision that saw every claim when no host fits. Every
    /// decision is recorded for `/scheduler/last`.
    func selectAndClaim(_ spec: RequestSpec, for instance: String, placing: TaskState, attempt: Int,
                        claim: (_ host: String, _ fits: @escaping ClaimCheck) throws(CloudError) -> Commit<InstanceRecord>)
        throws(CloudError) -> InstanceRecord? {
        let scheduler = currentScheduler()
        var spec = spec
        for _ in 0..<Self.raceRounds {
            // Each round sees every claim made so far: the hosts' usage and where the
            // server group's other members went.
            if let g = spec.group {
                spec.group?.hosts = core.catalog.withLock { c in
                    c.instances[instance].map { Self.memberHosts(g.name, besides: $0.id, c) } ?? g.hosts
                }
            }
            let hosts = snapshots()
            let decision = scheduler.select(spec, from: hosts)
            record(decision, instance: instance, attempt: attempt)
            let ranked = decision.ranked   // computed: sorts every passing host, so read it once
            guard !ranked.isEmpty else { throw CloudError.noSpace(decision.failureReason) }
            for name in ranked {
                guard let snap = hosts.first(where: { $0.name == name }) else { continue }
                switch try claim(name, Self.claimCheck(scheduler, spec, snap)) {
                case .applied(let r): return r
                case .conflict:
                    // The host filled up meanwhile (try the next), or the instance moved on.
                    let r = core.catalog.withLock { $0.instances[instance] }
                    guard let r, r.taskState == placing, !r.deleteRequested else { return nil }
                }
            }
        }
        throw CloudError.noSpace("No valid host was found. Every candidate filled up while this request was being placed.")
    }

    /// The check a claim transaction runs: every enabled filter again, on the host's usage
    /// and the group members' hosts as they are inside that transaction.
    static func claimCheck(_ scheduler: FilterScheduler, _ spec: RequestSpec, _ snap: HostSnapshot) -> ClaimCheck {
        { used, groupHosts in
            var host = snap
            host.vcpusUsed = used.vcpus; host.ramMBUsed = used.ramMB; host.diskGBUsed = used.diskGB
            var fresh = spec
            fresh.group?.hosts = groupHosts
            return scheduler.passesFilters(fresh, on: host)
        }
    }

    /// Records a decision for `/scheduler/last`.
    private func record(_ d: FilterScheduler.Decision, instance: String, attempt: Int) {
        let text = "instance \(instance) (attempt \(attempt)) at \(Timestamp.string(Date()))\n" + d.describe()
        state.withLock { $0.last = text.hasSuffix("\n") ? text : text + "\n" }
        core.announce(.scheduler, "last")
    }
}
