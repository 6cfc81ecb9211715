import CloudCore
import CloudStore
import Foundation

/// Cinder's extend (available → extending → available; in-use → extending, then Nova's
/// live block resize so the guest sees the new size: Cinder 3.42 + volume-extended) and
/// snapshots (a running guest's disk as it is at that moment).
extension VolumeService {
    func extend(_ name: String, sizeGB text: String, _ caller: Caller) throws(CloudError) {
        let t0 = Date()
        let (v, old) = try core.refusing("volume", name, caller) { () throws(CloudError) -> (VolumeRecord, Int)? in
            guard let size = Int(text), size >= 1, size <= 16_384 else {
                throw CloudError.invalid("size_gb must be a whole number of GiB from 1 to 16384, not '\(text.prefix(40))'")
            }
            let v = try owned(name, caller)
            if size == v.sizeGb && v.status != .errorExtending { return nil }
            guard size > v.sizeGb else { throw CloudError.invalid("volumes only grow: \(size) GiB is smaller than \(v.sizeGb) GiB") }
            guard [.available, .inUse, .errorExtending].contains(v.status) else {
                throw CloudError.busy("volume '\(name)' is \(v.status.rawValue); extend needs it available or in-use")
            }
            guard let x = try step({ (s) throws(CloudError) in try s.beginExtend(v.id, to: size) }) else {
                throw CloudError.busy("volume '\(name)' changed meanwhile; try again")
            }
            return (x, v.sizeGb)
        } ?? (nil, 0)
        guard let v else { return }
        core.events.append(kind: "volume.extending", object: name, ["from_gb": "\(old)", "to_gb": "\(v.targetSizeGb ?? 0)", "uid": "\(caller.uid)"])
        CrashPoints.pass("extend.extending")
        try core.refusing("volume", name, caller) { () throws(CloudError) in try grow(v) }
        core.events.append(kind: "volume.extended", object: name,
                           ["size_gb": "\(v.targetSizeGb ?? 0)", "live": v.instanceId == nil ? "no" : "yes",
                            "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
    }

    /// Grows a volume in `extending` to its target and returns it to where it was. A
    /// restart runs it again: growing to the size it already has changes nothing.
    func grow(_ v: VolumeRecord) throws(CloudError) {
        guard let target = v.targetSizeGb else { return }
        let bytes = Int64(target) << 30
        do throws(CloudError) {
            let b = try backend(v)
            if let a = try attachment(of: v), a.live {
                // Attached to a running guest: QEMU holds the disk; it resizes a qcow2 itself,
                // an LV is grown underneath first and QEMU told of the new size.
                if !b.resizesThroughHypervisor { try b.extend(volumeID: v.id, sizeGB: target) }
                try a.conn.resizeDisk(device: a.device, uuid: a.instanceID, bytes: bytes)
            } else {
                try b.extend(volumeID: v.id, sizeGB: target)
            }
        } catch {
            _ = try? transition(v.id, from: [.extending]) { x in x.status = .errorExtending; x.fault = "extend to \(target) GiB failed: \(error.reason)" }
            throw error
        }
        CrashPoints.pass("extend.resized")
        try transition(v.id, from: [.extending]) { x in
            x.sizeGb = target; x.targetSizeGb = nil; x.status = x.previousStatus ?? (x.instanceId == nil ? .available : .inUse)
            if x.instanceId == nil && x.status == .inUse { x.status = .available }
            x.previousStatus = nil; x.fault = ""
        }
    }

    // MARK: snapshots

    func createSnapshot(_ volume: String, _ snapshot: String, _ caller: Caller) throws(CloudError) {
        let object = "\(volume)/\(snapshot)"
        let t0 = Date()
        let (v, s) = try core.refusing("snapshot", object, caller) { () throws(CloudError) -> (VolumeRecord, SnapshotRecord) in
            try ObjectName.validate(snapshot, kind: "snapshot")
            let v = try owned(volume, caller)
            let s = SnapshotRecord(id: UUID().uuidString.lowercased(), volumeId: v.id, name: snapshot, project: v.project,
                                   ownerUID: caller.uid, sizeGB: v.sizeGb)
            try core.write({ (st) throws(CloudError) in try st.insertSnapshot(s) }) { c, _ in c.volumes.snapshots[s.id] = s }
            core.announce(.volume, volume)
            return (v, s)
        }
        CrashPoints.pass("snapshot.creating")
        do throws(CloudError) {
            try takeSnapshot(v, s)
        } catch {
            // No half-made snapshot is left: its storage and row go, the reason stays in /events.
            try? backend(v).deleteSnapshot(snapshotID: s.id)
            try? dropSnapshotRow(s)
            core.announce(.volume, volume)
            throw core.refuse(error, kind: "snapshot", object: object, caller: caller)
        }
        core.events.append(kind: "snapshot.available", object: object,
                           ["size_gb": "\(s.sizeGb)", "uid": "\(caller.uid)", "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
    }

    /// Takes the snapshot's copy: of the running guest's disk through the hypervisor when
    /// the volume is attached to one (the file backend), else of the storage itself.
    private func takeSnapshot(_ v0: VolumeRecord, _ s: SnapshotRecord) throws(CloudError) {
        let v = core.catalog.withLock { $0.volumes.volume(id: v0.id) } ?? v0
        var live: ((String) throws(CloudError) -> Void)? = nil
        if let a = try attachment(of: v), a.live {
            live = { path throws(CloudError) in try a.conn.copyDisk(device: a.device, uuid: a.instanceID, to: path, timeout: 600) }
        }
        try backend(v).snapshot(volumeID: v.id, snapshotID: s.id, liveCopy: live)
        CrashPoints.pass("snapshot.copied")
        guard try snapshotStep({ (st) throws(CloudError) in
            try st.updateSnapshot(s.id, expecting: [.creating]) { $0.status = .available }
        }) != nil else {
            throw CloudError.busy("snapshot '\(s.name)' changed meanwhile")
        }
        core.announce(.volume, v.name)
    }

    func deleteSnapshot(_ volume: String, _ snapshot: String, _ caller: Caller) throws(CloudError) {
        let object = "\(volume)/\(snapshot)"
        try core.refusing("snapshot", object, caller) { () throws(CloudError) in
            let v = try owned(volume, caller)
            guard let s = core.catalog.withLock({ $0.volumes.snapshots(of: v.id) }).first(where: { $0.name == snapshot }) else {
                throw CloudError.notFound("volume '\(volume)' has no snapshot named '\(snapshot)'")
            }
            guard let d = try snapshotStep({ (st) throws(CloudError) in try st.beginSnapshotDelete(s.id) }) else {
                throw CloudError.busy("snapshot '\(object)' is \(s.status.rawValue)")
            }
            core.announce(.volume, volume)
            try removeSnapshot(d, v)
        }
        core.events.append(kind: "snapshot.deleted", object: object, ["uid": "\(caller.uid)"])
    }

    /// Removes a snapshot in `deleting` (run again by a restart).
    func removeSnapshot(_ s: SnapshotRecord, _ v: VolumeRecord) throws(CloudError) {
        do throws(CloudError) { try backend(v).deleteSnapshot(snapshotID: s.id) } catch {
            _ = try? snapshotStep { (st) throws(CloudError) in
                try st.updateSnapshot(s.id, expecting: [.deleting]) { $0.status = .error; $0.fault = "delete failed: \(error.reason)" }
            }
            throw error
        }
        try dropSnapshotRow(s)
        core.announce(.volume, v.name)
    }
}
