import CloudCore
import CloudScheduler
import CloudStore
import Foundation

/// Nova's cold migration (`migrate [HOST]`) and evacuation (`evacuate` of a down host),
/// both placed by `selectAndClaim` with the source host ignored. Between hosts that see
/// the controller's files the overlay stays where it is (Nova's shared-storage case);
/// when a remote host is either end, `HostDisks.moveDisk` copies it over (or, evacuating a
/// down remote host, makes a fresh one). The migration is confirmed at once. A start
/// that fails on the destination is tried on another host (`Attempts`, `max_attempts`).
struct MoveTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    /// The move: pick a destination, move the claim atomically, stop the domain on a live
    /// source, start it on the destination. When no destination works, a migration goes
    /// back to its source (ACTIVE with the reason in `fault`) and an evacuation ends in
    /// ERROR.
    func run(_ id: String, target: String?, sourceIsUp: Bool) throws(CloudError) {
        guard let r = core.instance(id: id), let source = r.host else { return }
        let moving: TaskState = sourceIsUp ? .migrating : .rebuilding
        var attempts = Attempts(max: ctx.placement.maxAttempts, what: sourceIsUp ? "Migration" : "Evacuation")
        var sourceStopped = false
        while true {
            var spec = ctx.placement.requestSpec(for: r, resources: nil)
            spec.ignoreHosts = [source]
            spec.triedHosts = Set(attempts.tried)
            spec.requestedHost = target
            let moved: InstanceRecord?
            do throws(CloudError) {
                moved = try ctx.placement.selectAndClaim(spec, for: r.name, placing: moving, attempt: attempts.number) {
                    host, fits throws(CloudError) in
                    try core.commit { (s) throws(CloudError) in try s.moveClaim(instanceID: id, to: host, expecting: moving, fits: fits) }
                }
            } catch where error.errno == .noSpace {
                return try giveUp(r, source: source, stopped: sourceStopped, reason: attempts.fault(error), sourceIsUp: sourceIsUp)
            }
            guard let moved, let dest = moved.host else { return }
            do throws(CloudError) {
                if sourceIsUp, !sourceStopped, let conn = ctx.hosts.connection(forHost: source) {
                    try conn.destroy(uuid: id)
                    sourceStopped = true
                }
                let conn = try ctx.guests.connection(dest)
                try conn.destroy(uuid: id)
                try ctx.guests.disks.moveDisk(moved, from: source, sourceIsUp: sourceIsUp, guests: ctx.guests)
                let xml = try conn.spawn(try ctx.guests.domainSpec(moved))
                let power = ctx.guests.power(of: id, on: conn) ?? .running
                try core.commit({ (s) throws(CloudError) in
                    try s.update(instanceID: id, expecting: [moving]) { x in
                        x.taskState = .none; x.vmState = .active; x.powerState = power; x.domainXml = xml; x.fault = ""
                    }
                }, event: { _ in
                    core.events.append(kind: sourceIsUp ? "instance.migrated" : "instance.evacuated", object: r.name,
                                       ["from": source, "to": dest])
                })
                ctx.guests.disks.removeSource(moved, source: source, dest: dest, guests: ctx.guests)
                ctx.networks.networksMoved()
                return
            } catch where !error.fromStore {
                ctx.guests.disks.discardMoved(id, source: source, dest: dest, guests: ctx.guests)
                // The claim goes back to the source while another host is looked for.
                try core.commit { (s) throws(CloudError) in
                    try s.moveClaim(instanceID: id, to: source, expecting: moving) { _, _ in true }
                }
                if let end = attempts.failed(on: dest, error) {
                    let reason = attempts.tried.count == 1 ? "\(sourceIsUp ? "migration" : "evacuation") to \(dest) failed: \(error.reason)"
                                                           : end.reason
                    return try giveUp(r, source: source, stopped: sourceStopped, reason: reason, sourceIsUp: sourceIsUp)
                }
            }
        }
    }

    /// Ends a move that did not happen. A migration whose source is up starts the guest
    /// there again and stays ACTIVE (with the reason in `fault`); an evacuation, or a
    /// migration whose guest could not be started again, ends in ERROR.
    private func giveUp(_ r: InstanceRecord, source: String, stopped: Bool, reason: String, sourceIsUp: Bool) throws(CloudError) {
        var running = sourceIsUp && !stopped
        var reason = reason
        if sourceIsUp, stopped, let conn = ctx.hosts.connection(forHost: source), let back = core.instance(id: r.id) {
            do throws(CloudError) { _ = try conn.spawn(try ctx.guests.domainSpec(back)); running = true } catch {
                reason += "; starting it again on \(source) failed: \(error.reason)"
            }
        }
        let moving: TaskState = sourceIsUp ? .migrating : .rebuilding
        let (keepActive, fault) = (running, reason)
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [moving]) { x in
                x.taskState = .none; x.fault = fault
                if !keepActive { x.vmState = .error; x.powerState = .nostate }
            }
        }, event: { _ in
            core.events.append(kind: sourceIsUp ? "instance.migrate_failed" : "instance.evacuate_failed", object: r.name, ["reason": fault])
        })
    }
}

extension MoveTask {
    /// When a host comes back, domains of instances that now live elsewhere (evacuated
    /// while it was down) are destroyed there, so no guest runs twice.
    func destroyEvacuatedDomains(on host: String) {
        guard let conn = ctx.hosts.connection(forHost: host) else { return }
        let domains: [DomainSummary]
        do throws(CloudError) { domains = try conn.listDomains() } catch {
            return core.recordFailure(error, kind: "host", object: host, doing: "listing domains after it came back")
        }
        let elsewhere = core.catalog.withLock { c in Set(c.instances.values.filter { $0.host != host }.map(\.id)) }
        for d in domains where elsewhere.contains(d.uuid) {
            do throws(CloudError) {
                try conn.destroy(uuid: d.uuid)
                if ctx.guests.disks.isRemote(host) { try ctx.guests.disks.removeRemote(d.uuid, on: host) }
                core.events.append(kind: "host.cleaned", object: host, ["domain": d.name, "reason": "instance was evacuated"])
            } catch {
                core.recordFailure(error, kind: "host", object: host, doing: "destroying evacuated domain \(d.name)")
            }
        }
    }
}
