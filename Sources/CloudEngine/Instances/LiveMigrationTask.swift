import CloudCore
import CloudScheduler
import CloudStore
import Foundation

/// Nova's live migration (the conductor's LiveMigrationTask + the libvirt driver's
/// `live_migration`): the destination is picked (or named) and claimed while the source's
/// claim stays held; pre-checks (CPU, the image and boot files cached there); the
/// destination's disk prepared (a qcow2 overlay over its cached image, the config drive
/// uploaded); then libvirt moves the running guest peer to peer (paused for the transfer
/// where the hypervisor would lose its writes), copying the overlay when storage is not
/// shared, while the task polls the job for `instances/NAME/migration`,
/// aborts on request or after `live_migration_completion_timeout` seconds per GiB of RAM.
/// Any failure leaves the guest running where it was, with its claim; a `migration` row
/// records each attempt, and a restart settles one still marked running from what both
/// hosts report. The guest is never restarted.
struct LiveMigrationTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }
    private var disks: HostDisks { ctx.guests.disks }

    func run(_ id: String, target: String?) throws(CloudError) {
        guard let r = core.instance(id: id), r.taskState == .migrating else { return }
        if let m = try core.store.runningMigration(instanceID: id) { return try settle(r, m) }
        guard let source = r.host else { return }
        var spec = ctx.placement.requestSpec(for: r, resources: nil)
        // Only a libvirt daemon takes incoming migrations (not this machine's embedded driver).
        let daemons = disks.remoteHosts()
        spec.ignoreHosts = core.catalog.withLock { c in Set(c.hosts.keys).subtracting(daemons) }.union([source])
        spec.requestedHost = target
        let claimed: InstanceRecord?
        do throws(CloudError) {
            claimed = try ctx.placement.selectAndClaim(spec, for: r.name, placing: .migrating, attempt: 1) {
                host, fits throws(CloudError) in
                try core.commit { (s) throws(CloudError) in try s.claimLiveMigration(instanceID: id, to: host, fits: fits) }
            }
        } catch where error.errno == .noSpace || error.errno == .noEntry {
            return try endUnmoved(r, fault: "live migration failed: \(error.reason)", status: "failed", migration: nil)
        }
        guard let moved = claimed, let dest = moved.host else { return }
        let m = try core.store.startMigration(instanceID: id, kind: "live", source: source, dest: dest)
        CrashPoints.pass("live_migration.claimed")
        do throws(CloudError) {
            let outcome = try migrate(moved, from: source, to: dest)
            try finishMoved(moved, source: source, dest: dest, migration: m, detail: outcome)
        } catch where !error.fromStore {
            disks.discardMoved(id, source: source, dest: dest, guests: ctx.guests)
            let aborted = core.catalog.withLock { $0.migrationAborts.contains(id) }
            try endUnmoved(moved, fault: "live migration to \(dest) \(aborted ? "aborted" : "failed"): \(error.reason)",
                           status: aborted ? "aborted" : "failed", migration: m)
        }
    }

    /// Pre-checks, prepares the destination, runs the job and watches it. Returns the
    /// outcome's words for the history; throws when the guest did not move.
    private func migrate(_ moved: InstanceRecord, from source: String, to dest: String) throws(CloudError) -> String {
        let id = moved.id
        let src = try ctx.guests.connection(source), dst = try ctx.guests.connection(dest)
        guard let back = core.instance(id: id) else { throw CloudError.notFound("the instance is gone") }
        var before = back
        before.host = source
        // Nova's check_can_live_migrate_destination: the destination's CPU runs the source's guests.
        if let why = try dst.cpuIncompatibility(with: try src.hostCPUXML()) { throw CloudError.invalid(why) }
        guard try dst.powerState(uuid: id) == nil else { throw CloudError.exists("a domain with this uuid already exists on \(dest)") }
        // Nova's pre_live_migration: the destination's disk over its copy of the image.
        let (srcSpec, dstSpec) = (try ctx.guests.domainSpec(before), try ctx.guests.domainSpec(moved))
        try prepareDisk(moved, on: dest)
        var xml = try src.migratableXML(uuid: id)
        var pairs = zip(srcSpec.disks.map(\.path), dstSpec.disks.map(\.path)).map { ($0, $1) }
        if let a = srcSpec.kernelPath, let b = dstSpec.kernelPath { pairs.append((a, b)) }
        if let a = srcSpec.initrdPath, let b = dstSpec.initrdPath { pairs.append((a, b)) }
        if let img = ctx.images.image(id: moved.imageId), let base = core.catalog.withLock({ $0.hostImages[dest]?[img.id] }) {
            pairs.append((disks.isRemote(source) ? (core.catalog.withLock { $0.hostImages[source]?[img.id] } ?? img.path) : img.path, base))
        }
        for (a, b) in pairs where a != b {
            xml = xml.replacingOccurrences(of: "'\(a)'", with: "'\(b)'").replacingOccurrences(of: ">\(a)<", with: ">\(b)<")
        }
        if dstSpec.consolePath.isEmpty { xml = Self.droppingConsoleLog(xml) }
        // A hypervisor that would lose the guest's writes while it runs moves it paused; one
        // that cannot say is a failed pre-check like the others (never a blind live move).
        let hazard = try src.liveMigrationHazard(uuid: id)
        let mode = hazard.map { "paused (\($0))" } ?? "live"
        // The job, on its own thread; this one watches it.
        let bandwidth = Int(ctx.settings.configValue(.liveMigrationBandwidth)) ?? 0
        let perGiB = Double(ctx.settings.configValue(.liveMigrationCompletionTimeout)) ?? 800
        let limit = perGiB * max(Double(moved.ramMb) / 1024, 1.0 / 1024)
        let job = MigrationJob()
        let destURI = core.catalog.withLock { $0.hosts[dest]?.record.uri } ?? ""
        let destXML = xml
        DispatchQueue.global().async {
            do throws(CloudError) {
                try src.migrateLive(uuid: id, to: destURI, destinationXML: destXML, copyStorage: true, bandwidthMiBs: bandwidth,
                                    pausingGuest: hazard != nil)
                job.finish(nil)
            } catch { job.finish(error) }
        }
        let started = Date()
        var last = MigrationProgress()
        var stopping: String? = nil
        while !job.wait(0.5) {
            if let p = try? src.migrationProgress(uuid: id, completed: false) {
                last = p
                publish(moved, p, status: "running", mode: mode)
                if p.memoryTotal > 0 { CrashPoints.pass("live_migration.running") }
            }
            let elapsed = Date().timeIntervalSince(started)
            if stopping == nil, core.catalog.withLock({ $0.migrationAborts.contains(id) }) { stopping = "aborted by request" }
            if stopping == nil, perGiB > 0, elapsed > limit {
                stopping = "did not complete within \(Int(limit.rounded(.up))) s (live_migration_completion_timeout: \(Int(perGiB)) s per GiB of RAM)"
                core.catalog.withLock { _ = $0.migrationAborts.insert(id) }
            }
            if stopping != nil { try? src.abortMigration(uuid: id) }
        }
        if let error = job.error {
            // libvirt rolled back: the guest runs on the source. A destination that has it
            // running anyway (the answer was lost) means it moved.
            if let p = ctx.guests.power(of: id, on: dst), p == .running || p == .paused, ctx.guests.power(of: id, on: src) == nil {
                return "took_ms=\(Int(Date().timeIntervalSince(started) * 1000)) (the job reported: \(error.reason))"
            }
            if let stopping { throw CloudError(.io, stopping + " (\(error.reason))") }
            throw error
        }
        // The destination keeps the finished job's statistics: the downtime the guest saw.
        if let done = try? dst.migrationProgress(uuid: id, completed: true) { last = done; publish(moved, done, status: "running", mode: mode) }
        let downtime = last.downtimeMs.map { " downtime_ms=\($0)" } ?? ""
        let paused = hazard.map { " paused: \($0)" } ?? ""
        return "took_ms=\(Int(Date().timeIntervalSince(started) * 1000))\(downtime)\(paused)"
    }

    /// The destination's copy of the instance's disk and config drive (its image cached),
    /// made as a build on that host makes it.
    private func prepareDisk(_ moved: InstanceRecord, on dest: String) throws(CloudError) {
        var configDrive: String?
        if moved.configDrive {
            configDrive = ctx.guests.configDrivePath(moved.id)
            if !FileManager.default.fileExists(atPath: configDrive!) { try ctx.guests.makeConfigDrive(moved) }
        }
        try disks.makeRemoteDisk(moved, on: dest, configDrive: configDrive)
    }

    /// The guest runs on `dest`: the source's claim and disk go, the history says so.
    private func finishMoved(_ moved: InstanceRecord, source: String, dest: String, migration: Int64, detail: String) throws(CloudError) {
        let conn = try? ctx.guests.connection(dest)
        let power = conn.flatMap { ctx.guests.power(of: moved.id, on: $0) } ?? .running
        let xml = (conn.flatMap { try? $0.currentXML(uuid: moved.id, persistent: false) }) ?? moved.domainXml
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: moved.id, expecting: [.migrating]) { x in
                x.clearResize(); x.taskState = .none; x.powerState = power; x.domainXml = xml; x.fault = ""
            }
        }, event: { _ in
            core.events.append(kind: "instance.live_migrated", object: moved.name, ["from": source, "to": dest, "detail": detail])
        })
        try core.store.finishMigration(id: migration, status: "completed", detail: detail)
        disks.removeSource(moved, source: source, dest: dest, guests: ctx.guests)
        publishEnd(moved, status: "completed", detail: detail)
    }

    /// The guest stayed where it was: the destination's claim goes back, the reason stays
    /// in `fault`.
    private func endUnmoved(_ r: InstanceRecord, fault: String, status: String, migration: Int64?) throws(CloudError) {
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.migrating]) { x in
                if let back = x.oldHost { x.host = back }
                x.clearResize(); x.taskState = .none; x.fault = fault
            }
        }, event: { _ in
            core.events.append(kind: status == "aborted" ? "instance.live_migration_aborted" : "instance.live_migration_failed",
                               object: r.name, ["reason": fault])
        })
        if let migration { try core.store.finishMigration(id: migration, status: status, detail: fault) }
        publishEnd(r, status: status, detail: fault)
    }

    /// After a restart: a migration row still running is settled from what both hosts
    /// report once the source has no job left (the source's libvirt may still be moving
    /// the guest) and the guest runs on one host only (or 30 s passed): running on the
    /// destination only is a completed move; running on the source is a rollback (the
    /// destination's copy removed); on neither, ERROR. A guest the interrupted job left
    /// paused is resumed where it stays, unless it was paused before.
    private func settle(_ r: InstanceRecord, _ m: MigrationRecord) throws(CloudError) {
        let src = ctx.hosts.connection(forHost: m.source), dst = ctx.hosts.connection(forHost: m.dest)
        let deadline = Date().addingTimeInterval(600)
        while let src, Date() < deadline, (try? src.migrationProgress(uuid: r.id, completed: false)) != nil { usleep(500_000) }
        // After the job, libvirt's finish and confirm phases still resume one side and drop
        // the other: wait (up to 30 s) for the guest to run on exactly one host.
        let look = { (dst.flatMap { ctx.guests.power(of: r.id, on: $0) }, src.flatMap { ctx.guests.power(of: r.id, on: $0) }) }
        let live: (PowerState?) -> Bool = { $0 == .running || (r.vmState == .paused && $0 == .paused) }
        var (onDest, onSource) = look()
        let settled = Date().addingTimeInterval(30)
        while Date() < settled, !((live(onDest) && onSource == nil) || (live(onSource) && onDest == nil)) {
            usleep(200_000)
            (onDest, onSource) = look()
        }
        var moved = r
        moved.host = m.dest
        if let p = onDest, p == .running || p == .paused, onSource == nil || onSource == .shutdown {
            if onSource != nil { try? src?.destroy(uuid: r.id) }
            // libvirt resumes the guest on the destination in the migration's finish phase;
            // one left paused there (that phase never ran) runs again, as it did before.
            if p == .paused, r.vmState != .paused, let dst { try? dst.perform(.unpause, uuid: r.id) }
            return try finishMoved(moved, source: m.source, dest: m.dest, migration: m.id, detail: "settled after a restart")
        }
        if let p = onSource {
            if onDest != nil { try? dst?.destroy(uuid: r.id) }
            if p == .paused, r.vmState != .paused, let src { try? src.perform(.unpause, uuid: r.id) }
            disks.discardMoved(r.id, source: m.source, dest: m.dest, guests: ctx.guests)
            return try endUnmoved(r, fault: "live migration to \(m.dest) was interrupted by a restart; the guest stayed on \(m.source)",
                                  status: "failed", migration: m.id)
        }
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.migrating]) { x in
                if let back = x.oldHost { x.host = back }
                x.clearResize(); x.taskState = .none; x.vmState = .error; x.powerState = .nostate
                x.fault = "live migration to \(m.dest) was interrupted by a restart and the guest runs on neither host"
            }
        })
        try core.store.finishMigration(id: m.id, status: "failed", detail: "the guest runs on neither host after a restart")
    }

    /// `instances/NAME/migration` while the job runs.
    private func publish(_ r: InstanceRecord, _ p: MigrationProgress, status: String, mode: String) {
        var lines = ["status \(status)", "source \(r.oldHost ?? "?")", "dest \(r.host ?? "?")", "mode \(mode)", "elapsed_ms \(p.elapsedMs)",
                     "memory_total_bytes \(p.memoryTotal)", "memory_remaining_bytes \(p.memoryRemaining)",
                     "disk_total_bytes \(p.diskTotal)", "disk_remaining_bytes \(p.diskRemaining)"]
        if let d = p.downtimeMs { lines.append("downtime_ms \(d)") }
        core.catalog.withLock { $0.migrationProgress[r.id] = lines }
        core.announce(.instance, r.name)
    }

    private func publishEnd(_ r: InstanceRecord, status: String, detail: String) {
        core.catalog.withLock { c in
            var lines = (c.migrationProgress[r.id] ?? []).filter { !$0.hasPrefix("status ") && !$0.hasPrefix("result ") }
            lines.insert("status \(status)", at: 0)
            lines.append("result \(detail)")
            c.migrationProgress[r.id] = lines
            c.migrationAborts.remove(r.id)
        }
        core.announce(.instance, r.name)
        // l2population: the guest's MAC is where it ended; a host it left drops the segment.
        ctx.networks.networksMoved()
    }

    /// The domain XML without its serial console's `<log .../>` (a remote destination has
    /// no such file; the console is recorded from the stream there).
    static func droppingConsoleLog(_ xml: String) -> String {
        var out = xml
        while let start = out.range(of: "<log file="), let end = out.range(of: "/>", range: start.upperBound..<out.endIndex) {
            out.removeSubrange(start.lowerBound..<end.upperBound)
        }
        return out
    }
}

/// The outcome of a migration job running on another thread.
private final class MigrationJob: @unchecked Sendable {
    // @unchecked: `result` is written once before the semaphore is signalled.
    private let done = DispatchSemaphore(value: 0)
    private var result: CloudError?
    private var finished = false
    func finish(_ error: CloudError?) { result = error; done.signal() }
    /// Waits up to `seconds`; true once the job ended (and stays true).
    func wait(_ seconds: Double) -> Bool {
        if finished { return true }
        finished = done.wait(timeout: .now() + seconds) == .success
        return finished
    }
    var error: CloudError? { result }
}
