import CloudCore
import CloudStore
import Foundation

/// What a restart does with volumes a crash left mid-step (Cinder's `init_host` cleanup,
/// without its most reported bug: nothing stays in reserved, attaching, detaching or
/// extending). Each transitional state is finished or undone from what the row says and
/// what the domain's definition shows, so the tree and the domain XML agree again.
extension VolumeService {
    func recover() {
        let (volumes, snapshots) = core.catalog.withLock { c in (Array(c.volumes.byName.values), Array(c.volumes.snapshots.values)) }
        for s in snapshots where s.status == .creating || s.status == .deleting {
            guard let v = volumes.first(where: { $0.id == s.volumeId }) else { continue }
            step(v.name, "snapshot \(s.name)") { () throws(CloudError) in
                if s.status == .creating {
                    // An interrupted mkdir: no half-made snapshot is kept.
                    try? backend(v).deleteSnapshot(snapshotID: s.id)
                    try dropSnapshotRow(s)
                    core.events.append(kind: "snapshot.removed", object: "\(v.name)/\(s.name)", ["why": "its creation was interrupted by a restart"])
                } else {
                    try removeSnapshot(s, v)
                }
            }
        }
        for v in volumes where v.status.isTransitional {
            step(v.name, v.status.rawValue) { () throws(CloudError) in try resume(v) }
        }
        for v in volumes where v.status == .inUse { step(v.name, "checking its attachment") { () throws(CloudError) in try verify(v) } }
    }

    private func step(_ name: String, _ what: String, _ body: () throws(CloudError) -> Void) {
        do throws(CloudError) { try body() } catch {
            core.recordFailure(error, kind: "volume", object: name, doing: "recovering (\(what)) after a restart")
        }
    }

    /// The persistent disks of the volume's instance, nil when it has no domain to ask.
    private func definition(_ v: VolumeRecord) throws(CloudError) -> [String: String]? {
        guard let a = try attachment(of: v) else { return nil }
        return try a.conn.disks(uuid: a.instanceID, persistent: true)
    }

    private func resume(_ v: VolumeRecord) throws(CloudError) {
        switch v.status {
        case .creating:
            do throws(CloudError) { try fill(v) } catch {
                try? backend(v).delete(volumeID: v.id)
                try transition(v.id, from: [.creating]) { $0.status = .error; $0.fault = "creation interrupted, then failed: \(error.reason)" }
            }
        case .deleting:
            try remove(v)
            core.events.append(kind: "volume.deleted", object: v.name, ["why": "resumed after a restart"])
        case .reserved, .attaching:
            // Attached if the definition has it (the hotplug happened), else never was.
            let path = try backend(v).disk(volumeID: v.id, device: v.device ?? "").path
            if let disks = try definition(v), let device = v.device, disks[device] == path {
                try transition(v.id, from: [.reserved, .attaching]) { x in
                    x.status = .inUse; x.everAttached = true; x.attachedAt = x.attachedAt ?? Date().timeIntervalSince1970; x.fault = ""
                }
                core.events.append(kind: "volume.attached", object: v.name, ["device": device, "why": "the attach finished before a restart"])
                if let id = v.instanceId { refreshDomainXML(id) }
            } else {
                try transition(v.id, from: [.reserved, .attaching]) { x in
                    x.status = .available; x.instanceId = nil; x.device = nil; x.fault = "attach interrupted by a restart; attach again"
                }
                core.events.append(kind: "volume.available", object: v.name, ["why": "attach interrupted by a restart"])
            }
        case .detaching:
            startDetach(v.id)
        case .extending:
            do throws(CloudError) { try grow(v) } catch {}   // grow leaves error_extending with the reason
        default:
            break
        }
    }

    /// An in-use volume whose domain definition lost its disk (a crash between a failed
    /// unplug and putting it back) gets it back, so the definition says what the tree says.
    private func verify(_ v: VolumeRecord) throws(CloudError) {
        guard let a = try attachment(of: v) else { return }
        let disk = try backend(v).disk(volumeID: v.id, device: a.device)
        if try a.conn.disks(uuid: a.instanceID, persistent: true)[a.device] == disk.path { return }
        let live = try a.conn.disks(uuid: a.instanceID, persistent: false)[a.device] == disk.path
        try a.conn.attachDisk(disk, uuid: a.instanceID, live: !live && a.live)
        core.events.append(kind: "volume.reattached", object: v.name, ["device": a.device, "why": "the domain's definition had lost it"])
        refreshDomainXML(a.instanceID)
    }
}
