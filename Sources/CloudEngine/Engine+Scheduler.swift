import CloudCore
import CloudScheduler
import CloudStore
import Foundation

/// The scheduler's live configuration (`/scheduler/*`, Nova's [filter_scheduler] options)
/// and its last decision, plus the operator's host controls (Nova's service
/// enable/disable and availability zones).
struct SchedulerState: Sendable {
    var config = SchedulerConfig()
    var last = "no decision yet\n"
}

extension Engine {
    public var schedulerKeys: [String] { SchedulerConfig.keys() }

    public func schedulerValue(_ key: String) -> String? {
        scheduler.withLock { $0.config.value(of: key) }
    }

    public var schedulerLast: String { scheduler.withLock { $0.last } }

    public func setSchedulerValue(_ key: String, _ value: String, caller: Caller) throws(CloudError) {
        try refusing("scheduler", key, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may change the scheduler") }
            var config = scheduler.withLock { $0.config }
            try config.set(key, to: value)
            try config.validate()
            mutation.lock(); defer { mutation.unlock() }
            // Every option is saved as its current text, so a restart replays one consistent state.
            for k in SchedulerConfig.keys() {
                try store.setSetting("scheduler." + k, config.value(of: k)?.trimmingCharacters(in: .newlines) ?? "")
            }
            scheduler.withLock { $0.config = config }
        }
        events.append(kind: "scheduler.set", object: key, ["value": value.replacingOccurrences(of: "\n", with: ","),
                                                          "uid": "\(caller.uid)"])
        announce(ChangeNotice(.scheduler, key))
    }

    /// Replays the saved options (in key order) at start-up; a value that no longer
    /// parses is reported and skipped.
    func loadSchedulerConfig() {
        let saved = catalog.withLock { $0.settings }
        var config = SchedulerConfig()
        for k in SchedulerConfig.keys() {
            guard let text = saved["scheduler." + k] else { continue }
            do throws(CloudError) { try config.set(k, to: text) } catch {
                events.append(kind: "scheduler.ignored", object: k, ["reason": error.reason])
            }
        }
        scheduler.withLock { $0.config = config }
    }

    /// A FilterScheduler for the live options (validated when written, so building one
    /// cannot fail; the defaults stand in if it ever did).
    func currentScheduler() -> FilterScheduler {
        let config = scheduler.withLock { $0.config }
        return (try? FilterScheduler(config: config)) ?? FilterScheduler()
    }

    /// The check a claim transaction runs: every enabled filter again, on the host's usage
    /// and the group members' hosts as they are inside that transaction.
    static func claimCheck(_ scheduler: FilterScheduler, _ spec: RequestSpec, _ snap: HostSnapshot)
        -> (Int, Int, Int, [String]) -> Bool {
        { v, ram, d, groupHosts in
            var host = snap
            host.vcpusUsed = v; host.ramMBUsed = ram; host.diskGBUsed = d
            var fresh = spec
            fresh.group?.hosts = groupHosts
            return scheduler.passesFilters(fresh, on: host)
        }
    }

    /// Records a decision for `/scheduler/last`.
    func recordDecision(_ d: FilterScheduler.Decision, instance: String, attempt: Int) {
        let text = "instance \(instance) (attempt \(attempt)) at \(Timestamp.string(Date()))\n" + d.describe()
        scheduler.withLock { $0.last = text.hasSuffix("\n") ? text : text + "\n" }
        announce(ChangeNotice(.scheduler, "last"))
    }

    public func setHostField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        try refusing("host", name, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may change hosts") }
            if field == "uri" { return try registerURI(name, value) }
            guard field == "availability_zone" else { throw CloudError.readOnly("\(field) of a host is read-only") }
            try ObjectName.validate(value, kind: "availability zone")
            try updateHost(name) { $0.availabilityZone = value }
        }
        events.append(kind: "host.updated", object: name, [field: value])
    }

    public func hostAction(_ name: String, action: String, caller: Caller) throws(CloudError) {
        try refusing("host", name, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may enable or disable hosts") }
            switch action {
            case "enable": try updateHost(name) { $0.enabled = true }
            case "disable": try updateHost(name) { $0.enabled = false }
            case "evacuate": try evacuate(name)
            default: throw CloudError.invalid("unknown host action '\(action.prefix(40))'; use enable, disable or evacuate")
            }
        }
        if action != "evacuate" {
            events.append(kind: action == "enable" ? "host.enabled" : "host.disabled", object: name, ["uid": "\(caller.uid)"])
        }
    }

    private func updateHost(_ name: String, _ change: (inout HostRecord) -> Void) throws(CloudError) {
        mutation.lock(); defer { mutation.unlock() }
        guard var rec = catalog.withLock({ $0.hosts[name]?.record }) else { throw CloudError.notFound("no host named '\(name)'") }
        change(&rec)
        // A host made by mkdir is stored when its URI is written (registerURI keeps this record).
        if !rec.uri.isEmpty { try store.updateHost(rec) }
        catalog.withLock { $0.hosts[name]?.record = rec }
        announce(ChangeNotice(.host, name))
    }
}
