import CloudCore
import CloudScheduler
import CloudStore
import Foundation
import ImageStore

/// Nova's resize: the new flavor is placed by `selectAndClaim` (its own host allowed) while
/// the old claim stays held; the guest is stopped, its disk backed up and grown, and it is
/// started with the new flavor: VERIFY_RESIZE. With a remote host on either side the disk
/// moves through this machine (`HostDisks.resizeDisk`), its backup kept here.
/// `confirm-resize` drops the backup and the old claim (also done after
/// `resize_confirm_window` seconds); `revert-resize` restores both. Every step is
/// idempotent, so a restart resumes a resize from its task_state.
struct ResizeTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    /// The resize task.
    func run(_ id: String, to flavorName: String) throws(CloudError) {
        guard var r = core.instance(id: id), [.resizePrep, .resizeMigrating, .resizeFinish].contains(r.taskState) else { return }
        if r.taskState == .resizePrep {
            guard let f = core.catalog.withLock({ $0.flavors[flavorName] }) else { return try end(r, "flavor \(flavorName) was deleted") }
            let spec = ctx.placement.requestSpec(for: r, resources: ResourceRequest(vcpus: f.vcpus, ramMB: f.ramMB, diskGB: f.diskGB))
            // The instance's own claim counts against its host until confirm, as in Nova.
            let claimed: InstanceRecord?
            do throws(CloudError) {
                claimed = try ctx.placement.selectAndClaim(spec, for: r.name, placing: .resizePrep, attempt: 1) { host, fits throws(CloudError) in
                    try core.commit { (s) throws(CloudError) in try s.claimResize(instanceID: r.id, to: host, flavor: f, fits: fits) }
                }
            } catch where error.errno == .noSpace {
                return try end(r, "resize to \(f.name) failed: \(error.reason)")
            }
            guard let claimed else { return }
            core.events.append(kind: "instance.resize_claimed", object: r.name, ["host": claimed.host ?? "?", "flavor": f.name])
            CrashPoints.pass("resize.claimed")
            r = claimed
        }
        guard let source = r.oldHost, let dest = r.host else { return }
        let disk = ctx.guests.diskPath(id)
        let outcome: (xml: String, power: PowerState?)
        do throws(CloudError) {
            if r.taskState == .resizeMigrating {
                let conn = try ctx.guests.connection(source)
                _ = try ctx.guests.cleanShutdown(conn, id, timeout: ctx.settings.seconds(.shutdownTimeout))
                try conn.destroy(uuid: id)
                if ctx.guests.disks.resizeMoves(from: source, to: dest) {
                    try ctx.guests.disks.resizeDisk(r, from: source, to: dest, sizeBytes: Int64(r.diskGb) << 30, guests: ctx.guests)
                } else {
                    try Overlay.backUp(disk, to: disk + ".resize")
                    try Overlay.grow(disk, to: Int64(r.diskGb) << 30)
                }
                CrashPoints.pass("resize.disk")
                guard let next = try core.commit({ (s) throws(CloudError) in
                    try s.update(instanceID: id, expecting: [.resizeMigrating]) { $0.taskState = .resizeFinish }
                }).applied else { return }
                r = next
            }
            let conn = try ctx.guests.connection(dest)
            try conn.destroy(uuid: id)
            outcome = try ctx.guests.startDomain(r, on: conn, stopped: r.oldVmState == .stopped)
            CrashPoints.pass("resize.spawned")
        } catch where !error.fromStore {
            // Undo: the revert path restores the disk, the old claim and the old domain.
            return try revert(id, failure: "resize to \(r.flavor) failed: \(error.reason)")
        }
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [.resizeFinish]) { x in
                x.vmState = .resized; x.taskState = .none; x.powerState = outcome.power ?? .nostate
                x.domainXml = outcome.xml; x.fault = ""; x.resizedAt = Date().timeIntervalSince1970
            }
        }, event: { x in
            core.events.append(kind: "instance.resized", object: r.name,
                               ["flavor": x.flavor, "from": x.oldFlavor ?? "?", "host": dest, "status": "VERIFY_RESIZE"])
        })
    }

    /// Ends a resize that never claimed anything: the instance is as it was, with a fault.
    private func end(_ r: InstanceRecord, _ reason: String) throws(CloudError) {
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.resizePrep]) { x in x.taskState = .none; x.fault = reason }
        }, event: { _ in core.events.append(kind: "instance.action_failed", object: r.name, ["action": "resize", "reason": reason]) })
    }

    /// The confirm task: the backup and the old claim go; the guest keeps running.
    func confirm(_ id: String) throws(CloudError) {
        guard let r = core.instance(id: id), r.taskState == .resizeConfirming else { return }
        if let old = r.oldHost, old != r.host, let conn = ctx.hosts.connection(forHost: old) { try conn.destroy(uuid: id) }
        let backup = ctx.guests.diskPath(id) + ".resize"
        if let old = r.oldHost, let host = r.host, ctx.guests.disks.resizeMoves(from: old, to: host) {
            try ctx.guests.disks.confirmResizedDisk(id, source: old, dest: host, guests: ctx.guests)
        } else if FileManager.default.fileExists(atPath: backup) {
            do { try FileManager.default.removeItem(atPath: backup) } catch {
                throw CloudError.io("cannot remove \(backup): \(error.localizedDescription)")
            }
        }
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [.resizeConfirming]) { x in
                x.vmState = x.powerState == .shutdown ? .stopped : .active
                x.taskState = .none; x.clearResize()
            }
        }, event: { x in core.events.append(kind: "instance.resize_confirmed", object: r.name, ["flavor": x.flavor]) })
    }

    /// The revert task (and a failed resize's undo): destroy the new domain, restore the
    /// disk, move the claim back to the old flavor and host, start the old domain there.
    func revert(_ id: String, failure: String? = nil) throws(CloudError) {
        guard var r = core.instance(id: id) else { return }
        let expected: Set<TaskState> = failure == nil ? [.resizeReverting] : [.resizeMigrating, .resizeFinish]
        guard expected.contains(r.taskState) else { return }
        let disk = ctx.guests.diskPath(id)
        if r.oldHost != nil {
            if let conn = r.host.flatMap({ ctx.hosts.connection(forHost: $0) }) {
                // The new domain goes; one that will not is overwritten by the start below.
                do throws(CloudError) { try conn.destroy(uuid: id) } catch {}
            }
            do throws(CloudError) {
                if let old = r.oldHost, let host = r.host, ctx.guests.disks.resizeMoves(from: old, to: host) {
                    try ctx.guests.disks.revertResizedDisk(id, source: old, dest: host, guests: ctx.guests)
                } else {
                    try Overlay.restore(disk, from: disk + ".resize")
                }
            } catch {
                return try failResize(r, "revert failed: \(error.reason)")
            }
            CrashPoints.pass("revert.restored")
            guard let back = try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: id, expecting: expected) { x in
                    if let f = x.oldFlavor { x.flavor = f }
                    x.vcpus = x.oldVcpus; x.ramMb = x.oldRamMb; x.diskGb = x.oldDiskGb
                    x.host = x.oldHost; x.vmState = x.oldVmState ?? .active
                    x.clearResize()
                }
            }).applied else { return }
            r = back
        }
        let outcome: (xml: String, power: PowerState?)
        do throws(CloudError) {
            let conn = try ctx.guests.connection(r.host)
            try conn.destroy(uuid: id)
            outcome = try ctx.guests.startDomain(r, on: conn, stopped: r.vmState == .stopped)
        } catch {
            return try failResize(r, (failure.map { $0 + "; " } ?? "") + "restarting the old domain failed: \(error.reason)")
        }
        let host = r.host ?? "?"
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: expected) { x in
                x.taskState = .none; x.powerState = outcome.power ?? .nostate; x.domainXml = outcome.xml; x.fault = failure ?? ""
            }
        }, event: { x in
            if let failure {
                core.events.append(kind: "instance.action_failed", object: r.name, ["action": "resize", "reason": failure, "status": "reverted"])
            } else {
                core.events.append(kind: "instance.resize_reverted", object: r.name, ["flavor": x.flavor, "host": host])
            }
        })
    }

    private func failResize(_ r: InstanceRecord, _ reason: String) throws(CloudError) {
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id) { x in x.vmState = .error; x.taskState = .none; x.fault = reason }
        }, event: { _ in core.events.append(kind: "instance.error", object: r.name, ["fault": reason]) })
    }
}
