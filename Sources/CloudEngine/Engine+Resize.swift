import CloudCore
import CloudScheduler
import CloudStore
import Foundation
import ImageStore

/// Nova's resize: writing a new flavor to `flavor` schedules the instance with the new
/// resources (its own host allowed), claims them while the old claim stays held, stops
/// the guest, keeps a backup of its disk, grows the disk and starts it with the new
/// flavor: VERIFY_RESIZE. `confirm-resize` drops the backup and the old claim (also done
/// after `resize_confirm_window` seconds); `revert-resize` restores both.
/// Every step is idempotent, so a restart resumes a resize from its recorded task_state.
extension Engine {
    func requestResize(_ name: String, flavor flavorName: String, caller: Caller) throws(CloudError) {
        let r = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            let r = try actionTarget(name, caller)
            guard let f = flavor(flavorName) else { throw CloudError.notFound("no flavor named '\(flavorName)'") }
            guard r.taskState == .none, [.active, .stopped].contains(r.vmState), r.host != nil else {
                throw CloudError.busy("cannot resize \(name) while it is \(InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue)")
            }
            guard f.name != r.flavor else { throw CloudError.invalid("\(name) already has flavor \(f.name)") }
            guard f.diskGB >= r.diskGb else {
                throw CloudError.invalid("resize to a smaller disk is not allowed (\(r.diskGb) GB → \(f.diskGB) GB)")
            }
            if let img = catalog.withLock({ c in c.images.values.first { $0.id == r.imageId } }) { try Self.checkFits(f, img) }
            guard let moved = commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(.resize, f.name)) { $0.taskState = .resizePrep }
            }) else { throw CloudError.busy("\(name) is busy") }
            return moved
        }
        events.append(kind: "instance.action", object: name, ["action": "resize", "flavor": flavorName, "uid": "\(caller.uid)"])
        dispatch(r.id)
    }

    /// `confirm-resize` and `revert-resize` written to ctl: only in VERIFY_RESIZE.
    func requestResizeDecision(_ name: String, confirm: Bool, caller: Caller) throws(CloudError) {
        let verb = confirm ? "confirm-resize" : "revert-resize"
        let r = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            let r = try actionTarget(name, caller)
            guard r.vmState == .resized, r.taskState == .none else {
                throw CloudError.busy("cannot \(verb) \(name) while it is \(InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue)")
            }
            guard let moved = commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(confirm ? .confirmResize : .revertResize)) {
                    $0.taskState = confirm ? .resizeConfirming : .resizeReverting
                }
            }) else { throw CloudError.busy("\(name) is busy") }
            return moved
        }
        events.append(kind: "instance.action", object: name, ["action": verb, "uid": "\(caller.uid)"])
        dispatch(r.id)
    }

    /// The resize task.
    func resize(_ id: String, to flavorName: String) {
        guard var r = current(id), [.resizePrep, .resizeMigrating, .resizeFinish].contains(r.taskState) else { return }
        if r.taskState == .resizePrep {
            guard let f = flavor(flavorName) else { return endResize(r, "flavor \(flavorName) was deleted") }
            switch claimForResize(r, f) {
            case .success(let claimed): r = claimed
            case .failure(let e): return endResize(r, "resize to \(f.name) failed: \(e.reason)")
            }
            CrashPoints.pass("resize.claimed")
        }
        guard let source = r.oldHost, let dest = r.host else { return }
        let disk = config.instanceDir(id) + "/disk"
        do throws(CloudError) {
            if r.taskState == .resizeMigrating {
                if let conn = connection(forHost: source) {
                    _ = try cleanShutdown(conn, id)
                    try conn.destroy(uuid: id)
                } else { throw CloudError.io("host \(source) is not connected") }
                try Overlay.backUp(disk, to: disk + ".resize")
                try Overlay.grow(disk, to: Int64(r.diskGb) << 30)
                CrashPoints.pass("resize.disk")
                guard let next = commitInstance({ (e) throws(CloudError) in
                    try e.store.update(instanceID: id, expecting: [.resizeMigrating]) { $0.taskState = .resizeFinish }
                }) else { return }
                r = next
            }
            guard let conn = connection(forHost: dest) else { throw CloudError.io("host \(dest) is not connected") }
            try conn.destroy(uuid: id)
            let (xml, power) = try startDomain(r, on: conn, stopped: r.oldVmState == .stopped)
            CrashPoints.pass("resize.spawned")
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [.resizeFinish]) { x in
                    x.vmState = .resized; x.taskState = .none; x.powerState = power ?? .nostate
                    x.domainXml = xml; x.fault = ""; x.resizedAt = Date().timeIntervalSince1970
                }
            }, event: { [self] x in
                events.append(kind: "instance.resized", object: r.name,
                              ["flavor": x.flavor, "from": x.oldFlavor ?? "?", "host": dest, "status": "VERIFY_RESIZE"])
            })
        } catch {
            // Undo: the revert path restores the disk, the old claim and the old domain.
            revertResize(id, failure: "resize to \(r.flavor) failed: \(error.reason)")
        }
    }

    private func claimForResize(_ r: InstanceRecord, _ f: Flavor) -> Result<InstanceRecord, CloudError> {
        let scheduler = currentScheduler()
        var spec = requestSpec(r, tried: [])
        spec.resources = ResourceRequest(vcpus: f.vcpus, ramMB: f.ramMB, diskGB: f.diskGB)
        // The instance's own claim counts against its host until confirm, as in Nova.
        let hosts = snapshots()
        let decision = scheduler.select(spec, from: hosts)
        recordDecision(decision, instance: r.name, attempt: 1)
        for name in decision.ranked {
            guard let snap = hosts.first(where: { $0.name == name }) else { continue }
            if let claimed = commitInstance({ (e) throws(CloudError) in
                try e.store.claimResize(instanceID: r.id, to: name, flavor: f, fits: Self.claimCheck(scheduler, spec, snap))
            }) {
                events.append(kind: "instance.resize_claimed", object: r.name, ["host": name, "flavor": f.name])
                return .success(claimed)
            }
        }
        return .failure(CloudError.noSpace(decision.ranked.isEmpty ? decision.failureReason
                                                                   : "every candidate host filled up meanwhile"))
    }

    /// Ends a resize that never claimed anything: the instance is as it was, with a fault.
    private func endResize(_ r: InstanceRecord, _ reason: String) {
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id, expecting: [.resizePrep]) { x in x.taskState = .none; x.fault = reason }
        }, event: { [self] _ in events.append(kind: "instance.action_failed", object: r.name, ["action": "resize", "reason": reason]) })
    }

    /// The confirm task: the backup and the old claim go; the guest keeps running.
    func confirmResize(_ id: String) {
        guard let r = current(id), r.taskState == .resizeConfirming else { return }
        if let old = r.oldHost, old != r.host, let conn = connection(forHost: old) { try? conn.destroy(uuid: id) }
        try? FileManager.default.removeItem(atPath: config.instanceDir(id) + "/disk.resize")
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: id, expecting: [.resizeConfirming]) { x in
                x.vmState = x.powerState == .shutdown ? .stopped : .active
                x.taskState = .none; x.clearResize()
            }
        }, event: { [self] x in events.append(kind: "instance.resize_confirmed", object: r.name, ["flavor": x.flavor]) })
    }

    /// The revert task (and a failed resize's undo): destroy the new domain, restore the
    /// disk, move the claim back to the old flavor and host, start the old domain there.
    func revertResize(_ id: String, failure: String? = nil) {
        guard var r = current(id) else { return }
        let expected: Set<TaskState> = failure == nil ? [.resizeReverting] : [.resizeMigrating, .resizeFinish]
        guard expected.contains(r.taskState) else { return }
        let disk = config.instanceDir(id) + "/disk"
        if r.oldHost != nil {
            if let host = r.host, let conn = connection(forHost: host) { try? conn.destroy(uuid: id) }
            do throws(CloudError) { try Overlay.restore(disk, from: disk + ".resize") } catch {
                return failResize(r, "revert failed: \(error.reason)")
            }
            CrashPoints.pass("revert.restored")
            guard let back = commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: expected) { x in
                    if let f = x.oldFlavor { x.flavor = f }
                    x.vcpus = x.oldVcpus; x.ramMb = x.oldRamMb; x.diskGb = x.oldDiskGb
                    x.host = x.oldHost; x.vmState = x.oldVmState ?? .active
                    x.clearResize()
                }
            }) else { return }
            r = back
        }
        do throws(CloudError) {
            guard let host = r.host, let conn = connection(forHost: host) else { throw CloudError.io("host \(r.host ?? "?") is not connected") }
            try conn.destroy(uuid: id)
            let (xml, power) = try startDomain(r, on: conn, stopped: r.vmState == .stopped)
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: expected) { x in
                    x.taskState = .none; x.powerState = power ?? .nostate; x.domainXml = xml; x.fault = failure ?? ""
                }
            }, event: { [self] x in
                if let failure {
                    events.append(kind: "instance.action_failed", object: r.name, ["action": "resize", "reason": failure, "status": "reverted"])
                } else {
                    events.append(kind: "instance.resize_reverted", object: r.name, ["flavor": x.flavor, "host": host])
                }
            })
        } catch {
            failResize(r, (failure.map { $0 + "; " } ?? "") + "restarting the old domain failed: \(error.reason)")
        }
    }

    private func failResize(_ r: InstanceRecord, _ reason: String) {
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id) { x in x.vmState = .error; x.taskState = .none; x.fault = reason }
        }, event: { [self] _ in events.append(kind: "instance.error", object: r.name, ["fault": reason]) })
    }
}
