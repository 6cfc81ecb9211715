import CloudCore
import CloudStore
import Foundation

/// What a restarted engine does before it serves: Nova's `init_host` — drop uploads that
/// never finished, re-attach to running domains, and resume builds and deletes from the
/// step the store says they reached.
extension Engine {
    func recover() {
        // Uploads interrupted by a crash: no bytes, no rows.
        if let paths = try? store.purgeUnfinishedImages() {
            for p in paths { unlink(p) }
            if !paths.isEmpty {
                catalog.withLock { c in c.images = c.images.filter { $0.value.status == .active } }
                events.append(kind: "image.purged", object: "-", ["count": "\(paths.count)", "reason": "upload did not finish before restart"])
            }
        }
        removeStrayFiles()
        try? store.pruneTasks()
        // Open tasks: builds, deletes and the idempotent multi-step tasks resume from the
        // step the instance's row records; an action or move caught half-way is settled
        // from what its host reports (Nova's init_host handling of task_states).
        var queued = Set<String>()
        for t in (try? store.openTasks()) ?? [] {
            guard let tid = t.id else { continue }
            guard let r = current(t.instanceId) else {
                try? store.finishTask(id: tid, .cancelled, result: "the instance no longer exists")
                continue
            }
            if t.state == .running {
                switch t.kind {
                case .build, .delete, .rebuild, .resize, .confirmResize, .revertResize:
                    events.append(kind: "instance.resumed", object: r.name, ["task": t.kind.rawValue, "step": t.step.isEmpty ? r.taskState.rawValue : t.step])
                case .action, .migrate, .evacuate:
                    let what = t.kind == .action ? t.argument : t.kind.rawValue
                    let settled = settle(r, note: "\(what) was interrupted by a restart")
                    try? store.finishTask(id: tid, .interrupted, result: settled)
                    continue
                }
            }
            queued.insert(r.id)
        }
        let all = catalog.withLock { Array($0.instances.values) }
        for r in all where !queued.contains(r.id) && r.taskState != .none && !r.deleteRequested && r.vmState != .building {
            settle(r, note: "\(r.taskState.rawValue) was interrupted by a restart")
        }
        // Power states of every idle instance: one listing per host, one transaction each.
        let hosts = catalog.withLock { c in c.hosts.values.map { ($0.record.name, $0.connection) } }
        for (host, conn) in hosts {
            if let conn {
                if let domains = try? conn.listDomains() { syncHost(host, domains: domains) }
            } else {
                let mine = catalog.withLock { c in c.instances.values.filter { $0.host == host && idle($0) } }
                commit(mine.compactMap { r in
                    r.powerState == .nostate ? nil : PowerSync(record: r, vm: r.vmState, power: .nostate, fault: r.fault, note: "host down")
                })
            }
        }
        for id in queued { dispatch(id) }
    }

    /// Settles an instance whose action or move a restart interrupted, from what the hosts
    /// report: stale copies of its domain on other hosts are destroyed, a domain missing on
    /// its host is defined again over its disk, and vm_state follows the power state.
    /// Returns the resulting status for the task's result.
    @discardableResult
    func settle(_ r: InstanceRecord, note: String) -> String {
        let others = catalog.withLock { c in c.hosts.values.filter { $0.record.name != r.host }.compactMap(\.connection) }
        for conn in others where ((try? conn.powerState(uuid: r.id)) ?? nil) != nil { try? conn.destroy(uuid: r.id) }
        var power: PowerState? = nil
        var fault = note
        if let host = r.host, let conn = connection(forHost: host) {
            power = (try? conn.powerState(uuid: r.id)) ?? nil
            if power == nil, FileManager.default.fileExists(atPath: config.instanceDir(r.id) + "/disk") {
                if let spec = try? domainSpec(r), (try? conn.spawn(spec)) != nil {
                    if r.vmState != .active { try? conn.perform(.powerOff, uuid: r.id) }
                    power = (try? conn.powerState(uuid: r.id)) ?? nil
                }
            }
            if power == nil { fault += "; the domain is missing on host \(host)" }
        } else {
            fault += "; host \(r.host ?? "?") is not connected"
        }
        let vm = Self.vmState(observed: power, previous: r.vmState)
        let (seen, reason) = (power, fault)
        let settled = commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id) { x in
                x.taskState = .none; x.vmState = vm; x.powerState = seen ?? .nostate; x.fault = reason
            }
        }, event: { [self] x in
            events.append(kind: "instance.settled", object: r.name,
                          ["status": InstanceStatus.derive(vm: x.vmState, task: x.taskState).rawValue, "reason": note])
        })
        return settled.map { InstanceStatus.derive(vm: $0.vmState, task: $0.taskState).rawValue } ?? "deleted"
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
    func removeStrayFiles() {
        let fm = FileManager.default
        let (imagePaths, instanceIDs) = catalog.withLock { c in
            (Set(c.images.values.map(\.path)), Set(c.instanceNames.keys))
        }
        for f in (try? fm.contentsOfDirectory(atPath: config.imagesDir)) ?? [] where !imagePaths.contains(config.imagesDir + "/" + f) {
            try? fm.removeItem(atPath: config.imagesDir + "/" + f)
        }
        for d in (try? fm.contentsOfDirectory(atPath: config.instancesDir)) ?? [] where !instanceIDs.contains(d) {
            try? fm.removeItem(atPath: config.instancesDir + "/" + d)
        }
    }
}
