import CloudCore
import CloudStore
import Foundation

/// Nova's periodic tasks and event handling: `_sync_power_states` (driven by libvirt
/// lifecycle events, with a sweep every `sync_power_state_interval` as backstop),
/// `_cleanup_running_deleted_instances` (domains no instance owns: reported, and reaped
/// when `running_deleted_instance_action` is `reap`), `_check_instance_build_time`
/// (`instance_build_timeout`) and `_poll_unconfirmed_resizes` (`resize_confirm_window`).
extension Engine {
    // MARK: options

    /// The effective value of a `/config` key.
    public func configValue(_ key: ConfigKey) -> String {
        if let v = catalog.withLock({ $0.settings["config." + key.rawValue] }) { return v }
        if key == .shutdownTimeout { return "\(Int(config.shutdownTimeout))" }
        return key.defaultValue
    }

    func configSeconds(_ key: ConfigKey) -> TimeInterval { TimeInterval(Int(configValue(key)) ?? 0) }

    public func setConfig(_ key: ConfigKey, _ value: String, caller: Caller) throws(CloudError) {
        try refusing("config", key.rawValue, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may change \(key.rawValue)") }
            try key.validate(value)
            mutation.lock(); defer { mutation.unlock() }
            try store.setSetting("config." + key.rawValue, value)
            catalog.withLock { $0.settings["config." + key.rawValue] = value }
        }
        events.append(kind: "config.set", object: key.rawValue, ["value": value, "uid": "\(caller.uid)"])
        announce(ChangeNotice(.config, key.rawValue))
    }

    // MARK: the loop

    /// Runs `reconcile` every `sync_power_state_interval` seconds until the engine is gone.
    func startReconciler() {
        let interval = max(1, configSeconds(.syncPowerStateInterval))
        reconcileQueue.asyncAfter(deadline: .now() + interval) { [weak self] in
            guard let self else { return }
            reconcile()
            startReconciler()
        }
    }

    /// Subscribes to a fresh connection's lifecycle events: each one syncs that instance.
    func observe(_ conn: any ComputeConnection, host: String) {
        // The callback runs on libvirt's event thread: it must never hold the last reference
        // to the engine (its deinit closes connections, which waits for that thread).
        let queue = reconcileQueue
        conn.observeLifecycle { [weak self] uuid in
            queue.async { [weak self] in self?.lifecycleChanged(uuid: uuid, host: host) }
        }
    }

    func lifecycleChanged(uuid: String, host: String) {
        guard let r = current(uuid),
              r.host == host, idle(r), let conn = connection(forHost: host) else { return }
        // (Not `try?`: it would flatten "no such domain" into the error case.)
        let observed: PowerState?
        do { observed = try conn.powerState(uuid: uuid) } catch { return }   // EIO: the sweep retries
        apply(observed: observed, to: r, host: host)
    }

    /// Runs one sweep now, on the reconcile queue, and returns when it is done (for an
    /// operator's script or a test that cannot wait for the next period).
    public func reconcileNow() { reconcileQueue.sync { reconcile() } }

    /// One sweep over every connected host, then the time-based checks.
    func reconcile() {
        let hosts = catalog.withLock { c in c.hosts.values.compactMap { h in h.connection.map { (h.record.name, $0) } } }
        for (host, conn) in hosts {
            guard let domains = try? conn.listDomains() else { continue }
            syncHost(host, domains: domains)
            handleOrphans(domains, on: host, conn: conn)
        }
        timeOutBuilds()
        confirmOverdueResizes()
    }

    /// Syncs every idle instance of `host` against one listing of its domains, committing
    /// all changes in one transaction (a restart with 1,000 instances pays for one).
    func syncHost(_ host: String, domains: [DomainSummary]) {
        var seen: [String: PowerState] = [:]
        for d in domains { seen[d.uuid.lowercased()] = d.power }
        let mine = catalog.withLock { c in c.instances.values.filter { $0.host == host } }
        commit(mine.filter(idle).compactMap { r in decide(observed: seen[r.id], for: r, host: host) })
    }

    /// No task runs or waits: every queued task set task_state in its own transaction, and
    /// a sync commits only while task_state is still `none` (compare-and-set).
    func idle(_ r: InstanceRecord) -> Bool { r.taskState == .none && !r.deleteRequested }

    // MARK: power state

    /// One instance's change from a power-state sync.
    struct PowerSync {
        var record: InstanceRecord
        var vm: VmState
        var power: PowerState
        var fault: String
        var note: String
    }

    /// Syncs one idle instance with what its host reports.
    func apply(observed: PowerState?, to r: InstanceRecord, host: String) {
        commit([decide(observed: observed, for: r, host: host)].compactMap { $0 })
    }

    /// Nova's `_sync_instance_power_state` for an idle instance: the hypervisor's view wins
    /// for a guest that stopped, paused or vanished behind our back; a guest running while
    /// the instance is SHUTOFF is powered off again (the stored vm_state is the intent).
    /// Returns nil when nothing changes.
    func decide(observed: PowerState?, for r: InstanceRecord, host: String) -> PowerSync? {
        var vm = r.vmState
        var fault = r.fault
        var power = observed ?? .nostate
        var note = ""
        switch (r.vmState, observed) {
        case (_, nil):
            fault = "the domain is missing on host \(host); start or reboot hard re-creates it"
            if r.vmState == .active || r.vmState == .paused { vm = .stopped }
            note = "domain missing"
        case (.active, .shutdown?), (.active, .crashed?), (.paused, .shutdown?), (.paused, .crashed?):
            vm = .stopped; note = "the guest stopped behind cloudfs's back"
        case (.active, .paused?): vm = .paused; note = "the guest was paused behind cloudfs's back"
        case (.paused, .running?): vm = .active; note = "the guest was resumed behind cloudfs's back"
        case (.stopped, .running?), (.stopped, .paused?):
            if let conn = connection(forHost: host), (try? conn.perform(.powerOff, uuid: r.id)) != nil {
                note = "the guest was running while the instance is SHUTOFF; powered it off"
                power = .shutdown
            }
        default: break
        }
        if observed != nil && fault.hasPrefix("the domain is missing") { fault = "" }
        guard vm != r.vmState || power != r.powerState || fault != r.fault else { return nil }
        return PowerSync(record: r, vm: vm, power: power, fault: fault, note: note)
    }

    /// Commits power-state syncs in one transaction, each only if its instance is still
    /// idle, then mirrors them in the catalog and writes their events.
    func commit(_ syncs: [PowerSync]) {
        guard !syncs.isEmpty else { return }
        mutation.lock()
        let rows: [InstanceRecord]
        do {
            rows = try store.updateEach(syncs.map { s in
                (s.record.id, { (x: inout InstanceRecord) in x.vmState = s.vm; x.powerState = s.power; x.fault = s.fault })
            }, expecting: [.none])
        } catch {
            mutation.unlock()
            log.error("power sync failed: \(error)")
            return
        }
        catalog.withLock { c in for r in rows { c.put(r) } }
        mutation.unlock()
        let byID = Dictionary(syncs.map { ($0.record.id, $0) }, uniquingKeysWith: { a, _ in a })
        for x in rows {
            guard let s = byID[x.id] else { continue }
            let status = InstanceStatus.derive(vm: x.vmState, task: x.taskState).rawValue
            if s.note == "domain missing" {
                events.append(kind: "instance.missing", object: x.name, ["host": x.host ?? "?", "status": status])
            } else {
                events.append(kind: "instance.power_synced", object: x.name,
                              ["power": x.powerState.rawValue, "status": status, "note": s.note.isEmpty ? "-" : s.note])
            }
            announce(ChangeNotice(.instance, x.name))
        }
    }

    // MARK: orphans, timeouts, resizes

    /// Domains named like this cloud's (`cloudfs-ID-`) that no instance on this host owns.
    func handleOrphans(_ domains: [DomainSummary], on host: String, conn: any ComputeConnection) {
        let action = configValue(.runningDeletedInstanceAction)
        guard action != "noop" else { return }
        let owned = catalog.withLock { c -> Set<String> in
            Set(c.instances.values.filter { $0.host == host || $0.taskState != .none || c.busy.contains($0.id) }.map(\.id))
        }
        let prefix = domainPrefix
        for d in domains where d.name.hasPrefix(prefix) && !owned.contains(d.uuid.lowercased()) {
            let uuid = d.uuid.lowercased()
            let first = catalog.withLock { $0.reportedOrphans.insert(host + "/" + uuid).inserted }
            if action == "reap" {
                do throws(CloudError) {
                    try conn.destroy(uuid: uuid)
                    events.append(kind: "host.orphan_reaped", object: host, ["domain": d.name, "power": d.power.rawValue])
                } catch {
                    if first { events.append(kind: "host.orphan_domain", object: host, ["domain": d.name, "reason": error.reason]) }
                }
            } else if first {
                events.append(kind: "host.orphan_domain", object: host, ["domain": d.name, "power": d.power.rawValue])
            }
        }
    }

    /// Builds running longer than `instance_build_timeout` go to ERROR (their worker's
    /// later steps then fail their compare-and-set, and the sweep reaps a late domain).
    func timeOutBuilds() {
        let limit = configSeconds(.instanceBuildTimeout)
        guard limit > 0 else { return }
        let now = Date().timeIntervalSince1970
        let stuck = catalog.withLock { c in
            c.instances.values.filter { $0.vmState == .building && !$0.deleteRequested && now - max($0.created, startedAt) > limit }
        }
        for r in stuck { fail(r.id, "Instance build timed out after \(Int(limit)) s (instance_build_timeout)") }
    }

    /// Resizes waiting longer than `resize_confirm_window` are confirmed.
    func confirmOverdueResizes() {
        let window = configSeconds(.resizeConfirmWindow)
        guard window > 0 else { return }
        let now = Date().timeIntervalSince1970
        let due = catalog.withLock { c in
            c.instances.values.filter { $0.vmState == .resized && $0.taskState == .none && now - ($0.resizedAt ?? now) >= window }
        }
        for r in due {
            guard commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(.confirmResize)) { $0.taskState = .resizeConfirming }
            }) != nil else { continue }
            events.append(kind: "instance.resize_auto_confirm", object: r.name, ["after_s": "\(Int(window))"])
            dispatch(r.id)
        }
    }
}
