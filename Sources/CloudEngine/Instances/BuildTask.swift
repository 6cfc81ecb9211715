import CloudCore
import CloudScheduler
import CloudStore
import Foundation
import Synchronization

/// Nova's build_and_run_instance, as three compare-and-set steps: schedule (claim a host)
/// → network (fixed IP + MAC) → spawn (overlay disk, domain XML, define + start) → ACTIVE.
/// Each step starts from the task_state the previous one committed, so a restarted engine
/// resumes a build where it stopped. Any failure ends in ERROR with a fault, after
/// releasing everything the build had taken.
struct BuildTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }
    /// Builds running in this process (`Guests.makeDisk` makes a lone build's two files at once).
    private static let running = Atomic<Int>(0)

    /// Runs each remaining step; stops quietly when a delete was requested. A spawn that
    /// fails is rescheduled onto another host (`Attempts`: Nova's RetryFilter and
    /// `max_attempts`), keeping the fixed IP; the fault then names every failure.
    func run(_ id: String) throws(CloudError) {
        Self.running.add(1, ordering: .relaxed)
        defer { Self.running.subtract(1, ordering: .relaxed) }
        let started = Date()
        var attempts = Attempts(max: ctx.placement.maxAttempts, what: "Build")
        while let r = core.instance(id: id), !r.deleteRequested {
            do throws(CloudError) {
                switch r.taskState {
                case .scheduling: try schedule(r, attempts)
                case .networking: _ = try ctx.networks.allocate(for: r)
                case .blockDeviceMapping, .spawning:
                    do throws(CloudError) { try spawn(r, started: started) } catch where !error.fromStore {
                        if let end = attempts.failed(on: r.host ?? "?", error) { throw end }
                        guard try reschedule(r, after: error.reason) else { return }
                    }
                default: return
                }
            } catch where !error.fromStore {
                // A store failure is not the build's: it goes up, and the build is resumed.
                try fail(id, attempts.fault(error))
                return
            }
        }
    }

    /// The schedule step: `selectAndClaim` moves the instance from scheduling to
    /// networking with its host claimed.
    private func schedule(_ r: InstanceRecord, _ attempts: Attempts) throws(CloudError) {
        let t0 = Date()
        var spec = ctx.placement.requestSpec(for: r, resources: nil)
        spec.triedHosts = Set(attempts.tried)
        let events = core.events
        let claimed = try ctx.placement.selectAndClaim(spec, for: r.name, placing: .scheduling, attempt: attempts.number) {
            host, fits throws(CloudError) in
            try core.commit({ (s) throws(CloudError) in try s.claim(instanceID: r.id, host: host, fits: fits) }, event: { x in
                events.append(kind: "instance.scheduled", object: r.name,
                              ["host": x.host ?? "?", "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
            })
        }
        guard claimed != nil else { return }
        CrashPoints.pass("build.scheduled")
    }

    /// Undoes a failed spawn on its host (domain, disk, claim) and sends the build back to
    /// scheduling; the fixed IP is kept. Returns false when the instance moved on.
    private func reschedule(_ r: InstanceRecord, after reason: String) throws(CloudError) -> Bool {
        if let conn = r.host.flatMap({ ctx.hosts.connection(forHost: $0) }) { try conn.destroy(uuid: r.id) }
        try ctx.guests.removeFiles(r.id, host: r.host)
        let back = try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.spawning]) { x in x.host = nil; x.taskState = .scheduling }
        }, event: { _ in
            core.events.append(kind: "instance.rescheduled", object: r.name, ["from": r.host ?? "?", "reason": reason])
        })
        return back.applied != nil
    }

    /// The libvirt driver's spawn: overlay disk, then define + start. A domain left by an
    /// interrupted earlier attempt is destroyed first, so the step can be repeated.
    private func spawn(_ r: InstanceRecord, started: Date) throws(CloudError) {
        guard let host = r.host else { throw CloudError.io("host ? is not connected") }
        let conn = try ctx.guests.connection(host)
        let spec = try ctx.guests.domainSpec(r)
        let xml: String
        let running = ctx.guests.mayHaveDisk(r) ? ctx.guests.power(of: r.id, on: conn) : nil
        if let p = running, p == .running || p == .paused {
            // Started by this build before a restart: adopt it, so the guest is never disturbed.
            xml = conn.domainXML(for: spec)
            core.events.append(kind: "instance.adopted", object: r.name, ["host": host, "power": p.rawValue])
        } else {
            try conn.destroy(uuid: r.id)
            try ctx.guests.removeFiles(r.id, host: host)
            try ctx.guests.makeDisk(r, alone: Self.running.load(ordering: .relaxed) == 1)
            CrashPoints.pass("build.disk")
            xml = try conn.spawn(spec)
            CrashPoints.pass("build.spawned")
        }
        let power = ctx.guests.power(of: r.id, on: conn) ?? .running
        // A conflict here means a delete came meanwhile: the delete task cleans up.
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.spawning]) { x in
                x.vmState = .active; x.taskState = .none; x.powerState = power; x.domainXml = xml; x.fault = ""
            }
        }, event: { _ in
            core.events.append(kind: "instance.active", object: r.name,
                               ["host": host, "took_ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
        })
    }

    /// Ends a build in ERROR: releases the domain, disk, IPs and claim, keeps the fault.
    func fail(_ id: String, _ reason: String) throws(CloudError) {
        guard let r = core.instance(id: id), !r.deleteRequested else { return }
        let released = try ctx.guests.release(r)
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id) { x in
                x.vmState = .error; x.taskState = .none; x.powerState = .nostate; x.fault = reason
                x.host = nil; x.domainXml = ""
            }
        }, event: { _ in
            core.events.append(kind: "instance.error", object: r.name, ["fault": reason, "released": released.joined(separator: ",")])
        })
    }
}
