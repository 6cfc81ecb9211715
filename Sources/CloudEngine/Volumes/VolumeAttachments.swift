import CloudCore
import CloudStore
import Foundation

/// Nova's attach_volume and detach_volume with Cinder's reserve / attaching / in-use /
/// detaching states: attach runs in the caller's write (a hotplug takes a fraction of a
/// second), detach is queued, because the guest must release the device and Nova's
/// `_detach_with_retry` may wait `device_detach_attempts` × `device_detach_timeout`.
extension VolumeService {
    func setInstance(_ name: String, instance: String, _ caller: Caller) throws(CloudError) {
        if instance.isEmpty { return try detachVolume(name, caller) }
        try attach(name, to: instance, caller)
    }

    func detach(instance: String, device: String, _ caller: Caller) throws(CloudError) {
        let name = try core.refusing("instance", instance, caller) { () throws(CloudError) -> String in
            guard let r = core.catalog.withLock({ $0.instances[instance] }), core.visible(caller, InstanceService.ref(r)) else {
                throw CloudError.notFound("no instance named '\(instance)'")
            }
            guard let name = core.catalog.withLock({ $0.volumes.attachments(of: r.id)[device] }) else {
                throw CloudError.notFound("instance '\(instance)' has no volume at \(device)")
            }
            return name
        }
        try detachVolume(name, caller)
    }

    /// The instance a volume may be attached to now, or the refusal.
    private func attachable(_ instance: String, _ caller: Caller) throws(CloudError) -> InstanceRecord {
        guard let r = core.catalog.withLock({ $0.instances[instance] }), core.visible(caller, InstanceService.ref(r)) else {
            throw CloudError.notFound("no instance named '\(instance)'")
        }
        try core.authorize(caller, .operate, InstanceService.ref(r))
        guard !r.deleteRequested else { throw CloudError.busy("instance '\(instance)' is being deleted") }
        guard r.taskState == .none else { throw CloudError.busy("instance '\(instance)' is busy (task_state \(r.taskState.rawValue))") }
        // Nova's check_instance_state for attach: active, paused or stopped.
        guard [.active, .paused, .stopped].contains(r.vmState), r.host != nil else {
            throw CloudError.busy("instance '\(instance)' is \(r.vmState.rawValue); volumes attach to active, paused or stopped instances")
        }
        if let host = r.host, core.catalog.withLock({ c in c.hosts[host]?.isRemote ?? false }) {
            throw CloudError(.notSupported, "instance '\(instance)' runs on remote host \(host), which cannot reach this cloud's volumes (they are files or LVM volumes on the controller; no network export yet)")
        }
        return r
    }

    private func attach(_ name: String, to instance: String, _ caller: Caller) throws(CloudError) {
        let t0 = Date()
        let v = try core.refusing("volume", name, caller) { () throws(CloudError) -> VolumeRecord in
            let v = try owned(name, caller)
            let r = try attachable(instance, caller)
            if v.instanceId == r.id { throw CloudError.exists("volume '\(name)' is already attached to '\(instance)' as \(v.device ?? "?")") }
            if let other = v.instanceId {
                let n = core.catalog.withLock { $0.instanceNames[other] } ?? other
                throw CloudError.busy("volume '\(name)' is \(v.status.rawValue) (attached to '\(n)' as \(v.device ?? "?")); detach it first")
            }
            guard v.status == .available else { throw CloudError.busy("volume '\(name)' is \(v.status.rawValue), not available") }
            guard let reserved = try step({ (s) throws(CloudError) in try s.reserveVolume(v.id, instanceID: r.id) }) else {
                throw CloudError.busy("volume '\(name)' changed meanwhile; try again")
            }
            return reserved
        }
        CrashPoints.pass("attach.reserved")
        try core.refusing("volume", name, caller) { () throws(CloudError) in
            try plug(v, caller: caller)
        }
        core.events.append(kind: "volume.attached", object: name,
                           ["instance": instance, "device": v.device ?? "?", "uid": "\(caller.uid)",
                            "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
    }

    /// reserved → attaching → the hotplug → in-use; any failure puts it back to available
    /// with the reason in `fault`.
    private func plug(_ v: VolumeRecord, caller: Caller) throws(CloudError) {
        guard let attaching = try transition(v.id, from: [.reserved], { $0.status = .attaching }),
              let id = attaching.instanceId, let device = attaching.device else {
            throw CloudError.busy("volume '\(v.name)' changed meanwhile; try again")
        }
        CrashPoints.pass("attach.attaching")
        do throws(CloudError) {
            guard let r = core.instance(id: id), let host = r.host, let conn = hosts.connection(forHost: host) else {
                throw CloudError.io("the instance's host is not connected")
            }
            let power = try conn.powerState(uuid: id)
            guard let power else { throw CloudError.io("instance '\(r.name)' has no domain on \(host)") }
            try conn.attachDisk(try backend(v).disk(volumeID: v.id, device: device), uuid: id, live: power == .running || power == .paused)
        } catch {
            _ = try? transition(v.id, from: [.attaching]) { x in
                x.status = .available; x.instanceId = nil; x.device = nil; x.fault = "attach failed: \(error.reason)"
            }
            throw error
        }
        CrashPoints.pass("attach.plugged")
        try transition(v.id, from: [.attaching]) { x in
            x.status = .inUse; x.everAttached = true; x.attachedAt = Date().timeIntervalSince1970; x.fault = ""
        }
        refreshDomainXML(id)
    }

    /// Copies the domain's XML as libvirt now has it into the instance's `domain.xml`
    /// after its disks changed. Best effort: a failed read leaves the previous text.
    func refreshDomainXML(_ instanceID: String) {
        guard let r = core.instance(id: instanceID), let host = r.host, let conn = hosts.connection(forHost: host) else { return }
        do throws(CloudError) {
            guard let xml = try conn.currentXML(uuid: instanceID, persistent: false) else { return }
            try core.commit { (s) throws(CloudError) in try s.update(instanceID: instanceID) { $0.domainXml = xml } }
        } catch {
            core.recordFailure(error, kind: "instance", object: r.name, doing: "reading its domain XML after a volume change")
        }
    }

    private func detachVolume(_ name: String, _ caller: Caller) throws(CloudError) {
        let v = try core.refusing("volume", name, caller) { () throws(CloudError) -> VolumeRecord? in
            let v = try owned(name, caller)
            if v.status == .available && v.instanceId == nil { return nil }   // nothing attached: done
            guard v.status == .inUse else { throw CloudError.busy("volume '\(name)' is \(v.status.rawValue), not in-use") }
            if let id = v.instanceId, let r = core.instance(id: id) {
                try core.authorize(caller, .operate, InstanceService.ref(r))
            }
            guard let d = try transition(v.id, from: [.inUse], { $0.status = .detaching; $0.fault = "" }) else {
                throw CloudError.busy("volume '\(name)' changed meanwhile; try again")
            }
            return d
        }
        guard let v else { return }
        core.events.append(kind: "volume.detaching", object: name, ["device": v.device ?? "?", "uid": "\(caller.uid)"])
        startDetach(v.id)
    }

    /// Runs the detach of a volume in `detaching` on the jobs queue (also after a restart).
    func startDetach(_ id: String) {
        running.enter()
        jobs.async { [self] in
            defer { running.leave() }
            do throws(CloudError) { try unplug(id) } catch {
                core.recordFailure(error, kind: "volume", object: core.catalog.withLock { $0.volumes.names[id] } ?? id,
                                   doing: "detaching")
            }
        }
    }

    /// Nova's detach: the persistent definition first, then the live unplug, waiting for
    /// DeviceRemoved up to `device_detach_timeout` and asking again up to
    /// `device_detach_attempts` times; a refusal or running out of attempts puts the
    /// device back into the definition and the volume back to in-use with the reason.
    func unplug(_ id: String) throws(CloudError) {
        guard let v = core.catalog.withLock({ $0.volumes.volume(id: id) }), v.status == .detaching else { return }
        let t0 = Date()
        CrashPoints.pass("detach.detaching")
        let instance = v.instanceId.flatMap { core.instance(id: $0) }
        if let r = instance, let device = v.device, let host = r.host {
            guard let conn = hosts.connection(forHost: host) else {
                return try backToInUse(v, "host \(host) is not connected")
            }
            do throws(CloudError) { try conn.detachDiskPersistent(device: device, uuid: r.id) } catch {
                return try backToInUse(v, "detaching from the definition failed: \(error.reason)")
            }
            CrashPoints.pass("detach.config")
            let timeout = settings.seconds(.deviceDetachTimeout)
            let attempts = max(1, Int(settings.configValue(.deviceDetachAttempts)) ?? 8)
            var outcome = DetachOutcome.timedOut
            for attempt in 1...attempts {
                do throws(CloudError) {
                    outcome = try conn.detachDiskLive(device: device, uuid: r.id, timeout: timeout)
                } catch where error.errno == .noEntry {
                    outcome = .removed   // the domain is gone: nothing holds the disk
                } catch {
                    outcome = .failed(error.reason)
                }
                if outcome != .timedOut { break }
                core.events.append(kind: "volume.detach_retry", object: v.name,
                                   ["instance": r.name, "device": device, "attempt": "\(attempt)/\(attempts)",
                                    "waited_s": "\(Int(timeout))"])
            }
            switch outcome {
            case .removed: break
            case .failed(let why):
                return try reattach(v, r, conn, why)
            case .timedOut:
                return try reattach(v, r, conn, "the guest did not release \(device) after \(attempts) attempts of \(Int(timeout)) s")
            }
            CrashPoints.pass("detach.unplugged")
        }
        try transition(id, from: [.detaching]) { x in
            x.status = .available; x.instanceId = nil; x.device = nil; x.attachedAt = nil
        }
        if let r = instance { refreshDomainXML(r.id) }
        core.events.append(kind: "volume.detached", object: v.name,
                           ["instance": instance?.name ?? "-", "device": v.device ?? "-",
                            "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
    }

    /// A live detach that did not happen: the device goes back into the persistent
    /// definition (the guest still has it), and the volume back to in-use.
    private func reattach(_ v: VolumeRecord, _ r: InstanceRecord, _ conn: any ComputeConnection, _ why: String) throws(CloudError) {
        if let device = v.device {
            do throws(CloudError) {
                let persistent = try conn.disks(uuid: r.id, persistent: true)
                if persistent[device] == nil { try conn.attachDisk(try backend(v).disk(volumeID: v.id, device: device), uuid: r.id, live: false) }
            } catch {
                core.recordFailure(error, kind: "volume", object: v.name, doing: "putting \(device) back into the definition of \(r.name)")
            }
        }
        try backToInUse(v, why)
        refreshDomainXML(r.id)
    }

    private func backToInUse(_ v: VolumeRecord, _ why: String) throws(CloudError) {
        try transition(v.id, from: [.detaching]) { x in x.status = .inUse; x.fault = "detach failed: \(why)" }
        core.events.append(kind: "volume.detach_failed", object: v.name, ["reason": why])
    }
}
