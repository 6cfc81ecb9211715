import CloudCore
import CloudScheduler
import CloudStore
import Foundation

/// Nova's cold migration (`migrate [HOST]`) and evacuation (`evacuate` of a down host),
/// both placed by the scheduler with the source host ignored. Instance disks live in
/// the state directory, which every host of this cloud shares, so the overlay moves with
/// the instance (Nova's shared-storage case); the migration is confirmed at once.
extension Engine {
    /// `migrate [HOST]` written to `ctl`.
    func requestMigrate(_ name: String, action: String, caller: Caller) throws(CloudError) {
        let (r, target) = try refusing("instance", name, caller) { () throws(CloudError) -> (InstanceRecord, String?) in
            guard let r = catalog.withLock({ $0.instances[name] }) else { throw CloudError.notFound("no instance named '\(name)'") }
            guard caller.isAdmin || UInt32(r.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "instance '\(name)' is not yours") }
            let words = action.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.first == "migrate", words.count <= 2 else {
                throw CloudError.invalid("unknown action '\(action.prefix(40))'")
            }
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may migrate instances") }
            let target = words.count == 2 ? words[1] : nil
            if let target {
                guard host(target) != nil else { throw CloudError.notFound("no host named '\(target)'") }
                guard target != r.host else { throw CloudError.invalid("\(name) is already on \(target)") }
            }
            guard r.vmState == .active, r.taskState == .none, r.host != nil else {
                throw CloudError.busy("cannot migrate \(name) while it is \(InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue)")
            }
            guard commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(.migrate, target ?? "")) { $0.taskState = .migrating }
            }) != nil else { throw CloudError.busy("\(name) is busy") }
            return (r, target)
        }
        events.append(kind: "instance.migrating", object: name, ["from": r.host ?? "", "to": target ?? "(scheduler)"])
        dispatch(r.id)
    }

    /// `echo evacuate > /hosts/NAME/ctl`: the host must be down (Nova: the compute service
    /// is dead); each of its idle instances is rebuilt elsewhere.
    func evacuate(_ name: String) throws(CloudError) {
        guard let h = host(name) else { throw CloudError.notFound("no host named '\(name)'") }
        guard h.state == .down else { throw CloudError.busy("host \(name) is \(h.state.rawValue); only a down host is evacuated (migrate its instances instead)") }
        let ids = catalog.withLock { c in c.instances.values.filter { $0.host == name && $0.taskState == .none }.map(\.id) }
        for id in ids {
            guard commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [.none], queue: NewTask(.evacuate)) { $0.taskState = .rebuilding }
            }) != nil else { continue }
            dispatch(id)
        }
        events.append(kind: "host.evacuating", object: name, ["instances": "\(ids.count)"])
    }

    /// The move: pick a destination (never the source), move the claim atomically, stop the
    /// domain on a live source, start it on the destination. A failure puts the instance
    /// back (migration) or in ERROR (evacuation), with the reason in `fault`.
    func move(_ id: String, target: String?, sourceIsUp: Bool) {
        guard let r = current(id),
              let source = r.host else { return }
        let expected: TaskState = sourceIsUp ? .migrating : .rebuilding
        let scheduler = currentScheduler()
        var spec = requestSpec(r, tried: [])
        spec.ignoreHosts = [source]
        spec.requestedHost = target
        let hosts = snapshots()
        let decision = scheduler.select(spec, from: hosts)
        recordDecision(decision, instance: r.name, attempt: 1)
        var moved: InstanceRecord?
        for name in decision.ranked where name != source {
            guard let snap = hosts.first(where: { $0.name == name }) else { continue }
            moved = commitInstance { (e) throws(CloudError) in
                try e.store.moveClaim(instanceID: id, to: name, expecting: expected,
                                      fits: Self.claimCheck(scheduler, spec, snap))
            }
            if moved != nil { break }
        }
        guard let moved, let dest = moved.host else {
            return finishMove(r, ok: false, reason: decision.failureReason, evacuating: !sourceIsUp)
        }
        do throws(CloudError) {
            if sourceIsUp, let conn = connection(forHost: source) { try conn.destroy(uuid: id) }
            guard let conn = connection(forHost: dest) else { throw CloudError.io("host \(dest) is not connected") }
            try conn.destroy(uuid: id)
            let xml = try conn.spawn(try domainSpec(moved))
            let power = (try? conn.powerState(uuid: id)) ?? .running
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [expected]) { x in
                    x.taskState = .none; x.vmState = .active; x.powerState = power; x.domainXml = xml; x.fault = ""
                }
            }, event: { [self] _ in
                events.append(kind: sourceIsUp ? "instance.migrated" : "instance.evacuated", object: r.name,
                              ["from": source, "to": dest])
            })
        } catch {
            // Put the claim back on the source; a live source starts the guest again.
            commitInstance { (e) throws(CloudError) in
                try e.store.moveClaim(instanceID: id, to: source, expecting: expected) { _, _, _, _ in true }
            }
            if sourceIsUp, let conn = connection(forHost: source), let back = catalog.withLock({ $0.instances[r.name] }),
               (try? conn.spawn(try domainSpec(back))) != nil {
                return finishMove(r, ok: true, reason: "migration to \(dest) failed: \(error.reason)", evacuating: false)
            }
            finishMove(r, ok: false, reason: "\(sourceIsUp ? "migration" : "evacuation") to \(dest) failed: \(error.reason)",
                       evacuating: !sourceIsUp)
        }
    }

    /// Ends a move that did not happen: a migration leaves the instance ACTIVE where it was
    /// (with the reason in `fault`); an evacuation that found no host leaves it in ERROR.
    func finishMove(_ r: InstanceRecord, ok stillRunning: Bool, reason: String, evacuating: Bool) {
        let expected: TaskState = evacuating ? .rebuilding : .migrating
        let keepActive = !evacuating
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id, expecting: [expected]) { x in
                x.taskState = .none; x.fault = reason
                if !keepActive { x.vmState = .error; x.powerState = .nostate }
            }
        }, event: { [self] _ in
            events.append(kind: evacuating ? "instance.evacuate_failed" : "instance.migrate_failed", object: r.name, ["reason": reason])
        })
    }

    /// When a host comes back, domains of instances that now live elsewhere (evacuated
    /// while it was down) are destroyed there, so no guest runs twice.
    func destroyEvacuatedDomains(on host: String) {
        guard let conn = connection(forHost: host), let domains = try? conn.listDomains() else { return }
        let elsewhere = catalog.withLock { c in Set(c.instances.values.filter { $0.host != host }.map(\.id)) }
        for d in domains where elsewhere.contains(d.uuid) {
            if (try? conn.destroy(uuid: d.uuid)) != nil {
                events.append(kind: "host.cleaned", object: host, ["domain": d.name, "reason": "instance was evacuated"])
            }
        }
    }
}
