import CloudCore
import CloudStore
import Foundation

/// Nova's periodic tasks and event handling: `_sync_power_states` (driven by libvirt
/// lifecycle events, with a sweep every `sync_power_state_interval` as backstop),
/// `_cleanup_running_deleted_instances` (domains no instance owns: reported, and reaped
/// when `running_deleted_instance_action` is `reap`), `_check_instance_build_time`
/// (`instance_build_timeout`) and `_poll_unconfirmed_resizes` (`resize_confirm_window`).
final class Reconciler: @unchecked Sendable {
    // @unchecked: immutable after init.
    let ctx: TaskContext
    /// Queues the tasks the sweep starts.
    let dispatch: @Sendable (String) -> Void
    /// Resumes tasks a failure left open (the task worker's `resumeLeftTasks`).
    let resumeLeftTasks: @Sendable () -> Void
    let queue = DispatchQueue(label: "cloudfs.engine.reconcile")
    private var core: EngineCore { ctx.core }

    init(ctx: TaskContext, worker: TaskWorker) {
        self.ctx = ctx
        dispatch = { [weak worker] id in worker?.dispatch(id) }
        resumeLeftTasks = { [weak worker] in worker?.resumeLeftTasks() }
    }

    /// Runs `reconcile` every `sync_power_state_interval` seconds until the reconciler is gone.
    func start() {
        let interval = max(1, ctx.settings.seconds(.syncPowerStateInterval))
        queue.asyncAfter(deadline: .now() + interval) { [weak self] in
            guard let self else { return }
            reconcile()
            start()
        }
    }

    /// Subscribes to a fresh connection's lifecycle events: each one syncs that instance.
    func observe(_ conn: any ComputeConnection, host: String) {
        // The callback runs on libvirt's event thread: it must never hold the last reference
        // to the engine (its deinit closes connections, which waits for that thread).
        let queue = self.queue
        conn.observeLifecycle { [weak self] uuid in
            queue.async { [weak self] in self?.lifecycleChanged(uuid: uuid, host: host) }
        }
    }

    private func lifecycleChanged(uuid: String, host: String) {
        guard let (r, revision) = core.catalog.withLock({ c in
                  c.instance(id: uuid).map { ($0, c.revisions[uuid] ?? 0) } }),
              r.host == host, Self.idle(r), let conn = ctx.hosts.connection(forHost: host) else { return }
        let observed: PowerState?
        do throws(CloudError) { observed = try conn.powerState(uuid: uuid) } catch { return }   // EIO: the sweep retries
        commit([decide(observed: observed, for: r, revision: revision)].compactMap { $0 })
    }

    /// Runs one sweep now, on the reconcile queue, and returns when it is done.
    func reconcileNow() { queue.sync { reconcile() } }

    /// One sweep over every connected host, then the time-based checks.
    private func reconcile() {
        for (host, conn) in ctx.hosts.connectedHosts() {
            let domains: [DomainSummary]
            do throws(CloudError) { domains = try syncHost(host, conn: conn) } catch { continue }   // the health check takes it down
            handleOrphans(domains, on: host, conn: conn)
        }
        timeOutBuilds()
        confirmOverdueResizes()
        resumeLeftTasks()
    }

    /// Syncs every idle instance of `host` against one listing of its domains, committing
    /// all changes in one transaction (a restart with 1,000 instances pays for one), and
    /// returns the listing. The instances are taken *before* the listing: one that became
    /// idle after it (a build that just went ACTIVE, its domain defined after the listing
    /// was made) would otherwise be called missing and stopped — seen at 10,000 instances,
    /// where a listing takes long enough for builds to finish during it.
    @discardableResult
    func syncHost(_ host: String, conn: any ComputeConnection) throws(CloudError) -> [DomainSummary] {
        let mine = idleInstances(on: host)
        let domains = try conn.listDomains()
        var seen: [String: PowerState] = [:]
        for d in domains { seen[d.uuid.lowercased()] = d.power }
        commit(mine.compactMap { r, revision in decide(observed: seen[r.id], for: r, revision: revision) })
        return domains
    }

    /// Every idle instance of a host that went down: power state unknown.
    func hostDown(_ host: String) {
        commit(idleInstances(on: host).compactMap { r, revision in
            r.powerState == .nostate ? nil
                : PowerSync(record: r, revision: revision, vm: r.vmState, power: .nostate, fault: r.fault, note: "host down")
        })
    }

    /// The host's idle instances with their catalog revisions.
    private func idleInstances(on host: String) -> [(InstanceRecord, UInt64)] {
        core.catalog.withLock { c in
            c.instances.values.filter { $0.host == host && Self.idle($0) }.map { ($0, c.revisions[$0.id] ?? 0) }
        }
    }

    /// No task runs or waits: every queued task set task_state in its own transaction, and
    /// a sync commits only while task_state is still `none` (compare-and-set).
    static func idle(_ r: InstanceRecord) -> Bool { r.taskState == .none && !r.deleteRequested }

    // MARK: power state

    /// One instance's change from a power-state sync.
    struct PowerSync {
        var record: InstanceRecord
        /// The record's catalog revision when it was read: the sync is dropped if it moved.
        var revision: UInt64
        /// The guest runs while the instance is SHUTOFF: power it off before committing.
        var powerOff = false
        var vm: VmState
        var power: PowerState
        var fault: String
        var note: String
    }

    /// Nova's `_sync_instance_power_state` for an idle instance: the hypervisor's view wins
    /// for a guest that stopped, paused or vanished behind our back; a guest running while
    /// the instance is SHUTOFF is powered off again (the stored vm_state is the intent).
    /// Returns nil when nothing changes.
    private func decide(observed: PowerState?, for r: InstanceRecord, revision: UInt64) -> PowerSync? {
        let host = r.host ?? "?"
        var vm = r.vmState
        var fault = r.fault
        var power = observed ?? .nostate
        var note = ""
        var powerOff = false
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
            // Done by `commit`, only if no commit touched the instance since `r` was read:
            // a guest the user has just started is running because of that start.
            powerOff = true
            note = "the guest was running while the instance is SHUTOFF; powered it off"
            power = .shutdown
        default: break
        }
        if observed != nil && fault.hasPrefix("the domain is missing") { fault = "" }
        guard powerOff || vm != r.vmState || power != r.powerState || fault != r.fault else { return nil }
        return PowerSync(record: r, revision: revision, powerOff: powerOff, vm: vm, power: power, fault: fault, note: note)
    }

    /// Commits power-state syncs in one transaction, each only if no commit touched its
    /// instance since it was read (same catalog revision: no action began or ended in
    /// between, so what libvirt showed is not an action's doing) and it is still idle;
    /// powers off the guests it must first. Then mirrors them in the catalog and writes
    /// their events. Under the mutation lock the catalog holds exactly the stored rows, so
    /// a changed row is the catalog's record with the sync's three columns set.
    private func commit(_ syncs: [PowerSync]) {
        guard !syncs.isEmpty else { return }
        var rows: [InstanceRecord] = []
        do throws(CloudError) {
            try core.write({ (s) throws(CloudError) in
                let current = core.catalog.withLock { c in syncs.filter { c.revisions[$0.record.id] == $0.revision } }
                var changes: [PowerSyncChange] = []
                for sync in current {
                    if sync.powerOff {
                        // Under the mutation lock: no action can be accepted meanwhile.
                        do throws(CloudError) {
                            guard let conn = sync.record.host.flatMap({ ctx.hosts.connection(forHost: $0) }) else { continue }
                            try conn.perform(.powerOff, uuid: sync.record.id)
                        } catch {
                            core.recordFailure(error, kind: "instance", object: sync.record.name,
                                               doing: "powering off a guest that should be stopped")
                            continue
                        }
                    }
                    changes.append(PowerSyncChange(id: sync.record.id, vmState: sync.vm, powerState: sync.power, fault: sync.fault))
                }
                return try s.applyPowerSyncs(changes)
            }) { c, applied in
                for sync in syncs where applied.contains(sync.record.id) {
                    guard var r = c.instance(id: sync.record.id) else { continue }
                    r.vmState = sync.vm; r.powerState = sync.power; r.fault = sync.fault
                    c.put(r)
                    rows.append(r)
                }
            }
        } catch {
            return core.recordFailure(error, kind: "store", object: "-", doing: "committing \(syncs.count) power state(s)")
        }
        let byID = Dictionary(syncs.map { ($0.record.id, $0) }, uniquingKeysWith: { a, _ in a })
        for x in rows {
            guard let s = byID[x.id] else { continue }
            let status = InstanceStatus.derive(vm: x.vmState, task: x.taskState).rawValue
            if s.note == "domain missing" {
                core.events.append(kind: "instance.missing", object: x.name, ["host": x.host ?? "?", "status": status])
            } else {
                core.events.append(kind: "instance.power_synced", object: x.name,
                                   ["power": x.powerState.rawValue, "status": status, "note": s.note.isEmpty ? "-" : s.note])
            }
            core.announce(.instance, x.name)
        }
    }

    // MARK: orphans, timeouts, resizes

    /// Domains named like this cloud's (`cloudfs-ID-`) that no instance on this host owns.
    private func handleOrphans(_ domains: [DomainSummary], on host: String, conn: any ComputeConnection) {
        let action = ctx.settings.configValue(.runningDeletedInstanceAction)
        guard action != "noop" else { return }
        let owned = core.catalog.withLock { c -> Set<String> in
            Set(c.instances.values.filter { $0.host == host || $0.taskState != .none || c.busy.contains($0.id) }.map(\.id))
        }
        let prefix = ctx.guests.domainPrefix
        for d in domains where d.name.hasPrefix(prefix) && !owned.contains(d.uuid.lowercased()) {
            let uuid = d.uuid.lowercased()
            let first = core.catalog.withLock { $0.reportedOrphans.insert(host + "/" + uuid).inserted }
            if action == "reap" {
                do throws(CloudError) {
                    try conn.destroy(uuid: uuid)
                    core.events.append(kind: "host.orphan_reaped", object: host, ["domain": d.name, "power": d.power.rawValue])
                } catch {
                    if first { core.events.append(kind: "host.orphan_domain", object: host, ["domain": d.name, "reason": error.reason]) }
                }
            } else if first {
                core.events.append(kind: "host.orphan_domain", object: host, ["domain": d.name, "power": d.power.rawValue])
            }
        }
    }

    /// Builds running longer than `instance_build_timeout` go to ERROR (their worker's
    /// later steps then fail their compare-and-set, and the sweep reaps a late domain).
    private func timeOutBuilds() {
        let limit = ctx.settings.seconds(.instanceBuildTimeout)
        guard limit > 0 else { return }
        let now = Date().timeIntervalSince1970
        let startedAt = core.startedAt
        let stuck = core.catalog.withLock { c in
            c.instances.values.filter { $0.vmState == .building && !$0.deleteRequested && now - max($0.created, startedAt) > limit }
        }
        for r in stuck {
            do throws(CloudError) { try BuildTask(ctx: ctx).fail(r.id, "Instance build timed out after \(Int(limit)) s (instance_build_timeout)") } catch {
                core.recordFailure(error, kind: "instance", object: r.name, doing: "ending a timed-out build")
            }
        }
    }

    /// Resizes waiting longer than `resize_confirm_window` are confirmed.
    private func confirmOverdueResizes() {
        let window = ctx.settings.seconds(.resizeConfirmWindow)
        guard window > 0 else { return }
        let now = Date().timeIntervalSince1970
        let due = core.catalog.withLock { c in
            c.instances.values.filter { $0.vmState == .resized && $0.taskState == .none && now - ($0.resizedAt ?? now) >= window }
        }
        for r in due {
            do throws(CloudError) {
                guard try core.commit({ (s) throws(CloudError) in
                    try s.update(instanceID: r.id, expecting: [.none], queue: .confirmResize) { $0.taskState = .resizeConfirming }
                }).applied != nil else { continue }
            } catch {
                core.recordFailure(error, kind: "instance", object: r.name, doing: "queueing the automatic confirm-resize")
                continue
            }
            core.events.append(kind: "instance.resize_auto_confirm", object: r.name, ["after_s": "\(Int(window))"])
            dispatch(r.id)
        }
    }
}
