import CloudCore
import CloudStore
import Foundation

/// What a restarted engine does before it serves: Nova's `init_host` — drop uploads that
/// never finished, re-attach to running domains, and resume builds and deletes from the
/// step the store says they reached. Also settles an instance whose task failed.
struct Recovery {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    /// Runs at start-up; returns the instances whose open tasks must be dispatched.
    func run(reconciler: Reconciler) throws(CloudError) -> Set<String> {
        // Uploads interrupted by a crash: no bytes, no rows.
        let paths = try core.store.purgeUnfinishedImages()
        for p in paths { unlink(p) }
        if !paths.isEmpty {
            core.catalog.withLock { c in c.images = c.images.filter { $0.value.status == .active } }
            core.events.append(kind: "image.purged", object: "-", ["count": "\(paths.count)", "reason": "upload did not finish before restart"])
        }
        removeStrayFiles()
        try core.store.pruneTasks()
        // Open tasks: builds, deletes and the idempotent multi-step tasks resume from the
        // step the instance's row records; an action or move caught half-way is settled
        // from what its host reports (Nova's init_host handling of task_states).
        var queued = Set<String>()
        for t in try core.store.openTasks() where try resume(t, cause: "a restart") { queued.insert(t.instanceId) }
        let all = core.catalog.withLock { Array($0.instances.values) }
        for r in all where !queued.contains(r.id) && r.taskState != .none && !r.deleteRequested && r.vmState != .building {
            try settle(r, note: "\(r.taskState.rawValue) was interrupted by a restart")
        }
        // Power states of every idle instance: one listing per host, one transaction each.
        let connected = Dictionary(ctx.hosts.connectedHosts().map { ($0.name, $0.connection) }, uniquingKeysWith: { a, _ in a })
        for host in core.catalog.withLock({ Array($0.hosts.keys) }) {
            if let conn = connected[host] {
                do throws(CloudError) { try reconciler.syncHost(host, conn: conn) } catch {
                    core.recordFailure(error, kind: "host", object: host, doing: "listing domains at start-up (the sweep retries)")
                }
            } else {
                reconciler.hostDown(host)
            }
        }
        return queued
    }

    /// What becomes of a task found open with no worker (after a restart, or left by a
    /// worker whose store failed): builds, deletes and the idempotent multi-step tasks
    /// resume from the step the instance's row records (true: dispatch it); an action or
    /// move caught half-way is settled from what its host reports (Nova's init_host
    /// handling of task_states) and the task ends `interrupted`. A `running` task may not
    /// have begun (the commit that queued it took it for an idle worker); settling it from
    /// the host then finds nothing done, and says the action was interrupted.
    func resume(_ t: TaskRecord, cause: String) throws(CloudError) -> Bool {
        guard let tid = t.id else { return false }
        guard let r = core.instance(id: t.instanceId) else {
            try core.store.finishTask(id: tid, .cancelled, result: "the instance no longer exists")
            return false
        }
        guard t.state == .running else { return true }
        switch t.command {
        case .build, .delete, .rebuild, .resize, .confirmResize, .revertResize, .liveMigrate:
            core.events.append(kind: "instance.resumed", object: r.name,
                               ["task": t.kind, "step": t.step.isEmpty ? r.taskState.rawValue : t.step])
            return true
        case .power, .migrate, .evacuate:
            let what: String
            if case .power(let p) = t.command { what = p.rawValue } else { what = t.kind }
            let settled = try settle(r, note: "\(what) was interrupted by \(cause)")
            try core.store.finishTask(id: tid, .interrupted, result: settled)
            return false
        }
    }

    /// Settles an instance whose action or move a restart interrupted, from what the hosts
    /// report: stale copies of its domain on other hosts are destroyed, a domain missing on
    /// its host is defined again over its disk, and vm_state follows the power state.
    /// Returns the resulting status for the task's result.
    @discardableResult
    func settle(_ r: InstanceRecord, note: String) throws(CloudError) -> String {
        for (name, conn) in ctx.hosts.connectedHosts() where name != r.host {
            do throws(CloudError) {
                if try conn.powerState(uuid: r.id) != nil { try conn.destroy(uuid: r.id) }
            } catch {
                core.recordFailure(error, kind: "instance", object: r.name, doing: "destroying a stale copy on \(name)")
            }
        }
        var power: PowerState? = nil
        var fault = note
        if let host = r.host, let conn = ctx.hosts.connection(forHost: host) {
            power = ctx.guests.power(of: r.id, on: conn)
            if power == nil, ctx.guests.mayHaveDisk(r) {
                do throws(CloudError) {
                    _ = try ctx.guests.startDomain(r, on: conn, stopped: r.vmState != .active)
                    power = ctx.guests.power(of: r.id, on: conn)
                } catch {
                    fault += "; defining its domain again failed: \(error.reason)"
                }
            }
            if power == nil { fault += "; the domain is missing on host \(host)" }
        } else {
            fault += "; host \(r.host ?? "?") is not connected"
        }
        let vm = Self.vmState(observed: power, previous: r.vmState)
        let (seen, reason) = (power, fault)
        let settled = try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id) { x in
                x.taskState = .none; x.vmState = vm; x.powerState = seen ?? .nostate; x.fault = reason
            }
        }, event: { x in
            core.events.append(kind: "instance.settled", object: r.name,
                               ["status": InstanceStatus.derive(vm: x.vmState, task: x.taskState).rawValue, "reason": note])
        })
        return settled.applied.map { InstanceStatus.derive(vm: $0.vmState, task: $0.taskState).rawValue } ?? "deleted"
    }

    /// The vm_state a power state means, keeping what power cannot tell apart.
    static func vmState(observed: PowerState?, previous: VmState) -> VmState {
        switch observed {
        case .running?: previous == .resized ? .resized : .active
        case .paused?: .paused
        case .suspended?: .suspended
        case .shutdown?, .crashed?: previous == .suspended || previous == .resized ? previous : .stopped
        case .nostate?, nil: previous
        }
    }

    /// Image files and instance directories that no row owns (left by a crash) are removed.
    private func removeStrayFiles() {
        let fm = FileManager.default
        let config = core.config
        let (imagePaths, instanceIDs) = core.catalog.withLock { c in
            (Set(c.images.values.map(\.path)), Set(c.instanceNames.keys))
        }
        var stray: [String] = []
        do {
            stray += try fm.contentsOfDirectory(atPath: config.imagesDir).map { config.imagesDir + "/" + $0 }.filter { !imagePaths.contains($0) }
            stray += try fm.contentsOfDirectory(atPath: config.instancesDir).filter { !instanceIDs.contains($0) }.map { config.instancesDir + "/" + $0 }
            for path in stray { try fm.removeItem(atPath: path) }
        } catch {
            core.recordFailure(CloudError.io(error.localizedDescription), kind: "store", object: config.stateDir, doing: "removing files no row owns")
        }
    }
}
