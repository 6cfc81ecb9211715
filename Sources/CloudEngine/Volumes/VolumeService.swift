import CloudCore
import CloudStore
import Foundation

/// Cinder's volume API and manager in one (`/volumes`): create, delete, create from an
/// image, snapshot or volume, extend, snapshots, and with Nova's compute manager the
/// attach and detach of a volume to an instance (`instance`, `instances/NAME/volumes/`).
/// Every status change is a compare-and-set (`Store.updateVolume`); each step that a crash
/// can interrupt has a crash point, and `VolumeRecovery` finishes or undoes what a restart
/// finds in a transitional state.
final class VolumeService: VolumesAPI, VolumeProvider, @unchecked Sendable {
    // @unchecked: immutable after init.
    let core: EngineCore
    let hosts: any HostConnections
    let images: any ImageProvider
    let settings: any SettingsReader
    /// The Cinder drivers by name: `file` always, `lvm` with `--volume-group`.
    let backends: [String: any VolumeBackend]
    /// Detaches wait for the guest off the caller's thread (Nova's detach is asynchronous).
    let jobs = DispatchQueue(label: "cloudfs.volumes.jobs", attributes: .concurrent)
    let running = DispatchGroup()

    init(core: EngineCore, hosts: any HostConnections, images: any ImageProvider, settings: any SettingsReader) {
        self.core = core; self.hosts = hosts; self.images = images; self.settings = settings
        var b: [String: any VolumeBackend] = ["file": FileVolumeBackend(directory: core.config.volumesDir)]
        if let vg = core.config.volumeGroup { b["lvm"] = LVMVolumeBackend(volumeGroup: vg) }
        backends = b
    }

    static func ref(_ v: VolumeRecord) -> ObjectRef {
        ObjectRef("volume", v.name, ownerUID: UInt32(v.ownerUid), project: v.project)
    }

    func load() throws(CloudError) {
        let volumes = try core.store.volumes(), snapshots = try core.store.snapshots()
        core.catalog.withLock { c in
            for v in volumes { c.volumes.put(v) }
            for s in snapshots { c.volumes.snapshots[s.id] = s }
        }
    }

    /// Waits for running detach jobs (tests, a clean unmount).
    func drain() { running.wait() }

    func backend(_ v: VolumeRecord) throws(CloudError) -> any VolumeBackend {
        guard let b = backends[v.backend] else {
            throw CloudError.io("volume '\(v.name)' is on backend \(v.backend), which this mount does not have (mount with --volume-group)")
        }
        return b
    }

    // MARK: reads

    func list(_ caller: Caller) -> [VolumeInfo] {
        core.catalog.withLock { c in
            c.volumes.byName.values.sorted { $0.name < $1.name }.filter { core.visible(caller, Self.ref($0)) }.map { info($0, c) }
        }
    }

    func get(_ name: String, _ caller: Caller) -> VolumeInfo? {
        core.catalog.withLock { c in
            c.volumes.byName[name].flatMap { core.visible(caller, Self.ref($0)) ? info($0, c) : nil }
        }
    }

    private func info(_ v: VolumeRecord, _ c: Catalog) -> VolumeInfo {
        let snaps = c.volumes.snapshots(of: v.id).map { s in
            SnapshotInfo(name: s.name, id: s.id, status: s.status, sizeGB: s.sizeGb, created: s.created, fault: s.fault,
                         sourceOf: c.volumes.byName.values.filter { $0.sourceSnapshotId == s.id }.map(\.name).sorted())
        }
        return VolumeInfo(name: v.name, id: v.id, status: v.status, sizeGB: v.sizeGb,
                          instance: v.instanceId.flatMap { c.instanceNames[$0] } ?? "", device: v.device ?? "",
                          source: v.source, backend: v.backend, project: v.project, ownerUID: UInt32(v.ownerUid),
                          created: v.created, attachedAt: v.attachedAt, fault: v.fault, everAttached: v.everAttached,
                          snapshots: snaps)
    }

    /// The volume `caller` may see, by name; `ENOENT` otherwise.
    func visible(_ name: String, _ caller: Caller) throws(CloudError) -> VolumeRecord {
        guard let v = core.catalog.withLock({ $0.volumes.byName[name] }), core.visible(caller, Self.ref(v)) else {
            throw CloudError.notFound("no volume named '\(name)'")
        }
        return v
    }

    /// The volume `caller` may change, by name.
    func owned(_ name: String, _ caller: Caller) throws(CloudError) -> VolumeRecord {
        let v = try visible(name, caller)
        try core.authorize(caller, .change, Self.ref(v))
        return v
    }

    // MARK: writes shared by the steps

    /// A compare-and-set step, mirrored in the catalog and announced (with the instance
    /// it concerns, whose `volumes/` changes). nil: the volume was not in `expected`.
    @discardableResult
    func transition(_ id: String, from expected: Set<VolumeStatus>,
                    _ change: @escaping (inout VolumeRecord) -> Void) throws(CloudError) -> VolumeRecord? {
        try step { (s) throws(CloudError) in try s.updateVolume(id, expecting: expected) { v, _ in change(&v) } }
    }

    /// One store step that returns the volume's new row (nil: a conflict), mirrored in the
    /// catalog and announced: what every transition, reserve and extend start goes through.
    func step(_ body: (Store) throws(CloudError) -> VolumeRecord?) throws(CloudError) -> VolumeRecord? {
        var before: VolumeRecord?
        let v = try core.write(body) { c, v in
            guard let v else { return }
            before = c.volumes.volume(id: v.id)
            c.volumes.put(v)
        }
        if let v { announce(v, before) }
        return v
    }

    /// Removes a volume's row and its catalog entry.
    func dropRow(_ v: VolumeRecord) throws(CloudError) {
        try core.write({ (s) throws(CloudError) in try s.deleteVolume(v.id) }) { c, _ in c.volumes.remove(v.id) }
        core.announce(.volume, v.name)
        announceOwners(ofSnapshots: Set([v.sourceSnapshotId].compactMap { $0 }))
    }

    /// A snapshot's store step, mirrored in the catalog (nil: a conflict).
    func snapshotStep(_ body: (Store) throws(CloudError) -> SnapshotRecord?) throws(CloudError) -> SnapshotRecord? {
        try core.write(body) { c, s in if let s { c.volumes.snapshots[s.id] = s } }
    }

    /// Removes a snapshot's row and its catalog entry.
    func dropSnapshotRow(_ s: SnapshotRecord) throws(CloudError) {
        try core.write({ (st) throws(CloudError) in try st.deleteSnapshotRow(s.id) }) { c, _ in c.volumes.snapshots[s.id] = nil }
    }

    /// The attachment of a volume as the hypervisor has it now: the connection of its
    /// instance's host, the instance id, the device, and whether the guest runs (running or
    /// paused: QEMU holds the disk). nil when it is attached to nothing, or its instance has
    /// no host or no domain there.
    func attachment(of v: VolumeRecord) throws(CloudError) -> (conn: any ComputeConnection, instanceID: String, device: String, live: Bool)? {
        guard let id = v.instanceId, let device = v.device, let r = core.instance(id: id), let host = r.host,
              let conn = hosts.connection(forHost: host), let power = try conn.powerState(uuid: id) else { return nil }
        return (conn, id, device, power == .running || power == .paused)
    }

    /// Announces a volume's change and the instances whose attachments it touched.
    func announce(_ v: VolumeRecord, _ before: VolumeRecord?) {
        core.announce(.volume, v.name)
        let ids = Set([v.instanceId, before?.instanceId].compactMap { $0 })
        let names = core.catalog.withLock { c in ids.compactMap { c.instanceNames[$0] } }
        for n in names { core.announce(.instance, n) }
        if v.sourceSnapshotId != before?.sourceSnapshotId {
            announceOwners(ofSnapshots: Set([v.sourceSnapshotId, before?.sourceSnapshotId].compactMap { $0 }))
        }
    }

    /// Announces the volumes holding these snapshots: their `source_of` lists the volumes
    /// made from them, which just gained or lost one.
    private func announceOwners(ofSnapshots ids: Set<String>) {
        guard !ids.isEmpty else { return }
        let owners = core.catalog.withLock { c in
            ids.compactMap { c.volumes.snapshots[$0].flatMap { c.volumes.volume(id: $0.volumeId)?.name } }
        }
        for n in Set(owners) { core.announce(.volume, n) }
    }

    // MARK: create, source, delete

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        let v = try core.refusing("volume", name, caller) { () throws(CloudError) -> VolumeRecord in
            try ObjectName.validate(name, kind: "volume")
            try core.authorize(caller, .create, ObjectRef("volume", name))
            let project = try core.project(of: caller)
            let size = Int(settings.defaultValue(.volumeSizeGB)) ?? 1
            let backendName = backends[settings.defaultValue(.volumeBackend)] != nil ? settings.defaultValue(.volumeBackend) : "file"
            let v = VolumeRecord(id: UUID().uuidString.lowercased(), name: name, project: project, ownerUID: caller.uid,
                                 sizeGB: size, backend: backendName)
            try core.write({ (s) throws(CloudError) in try s.insertVolume(v) }) { c, _ in c.volumes.put(v) }
            return v
        }
        core.events.append(kind: "volume.creating", object: name,
                           ["size_gb": "\(v.sizeGb)", "backend": v.backend, "project": v.project, "uid": "\(caller.uid)"])
        core.announce(.volume, name)
        CrashPoints.pass("volume.creating")
        do {
            try fill(v)
        } catch {
            // A volume that could not be made is not left behind half-made.
            try? backend(v).delete(volumeID: v.id)
            try? dropRow(v)
            throw core.refuse(error, kind: "volume", object: name, caller: caller)
        }
    }

    /// Makes the storage of a volume in `creating` from its source, then `available`.
    /// Run again by a restart that finds it `creating`.
    func fill(_ v: VolumeRecord) throws(CloudError) {
        let t0 = Date()
        try backend(v).create(volumeID: v.id, sizeGB: v.sizeGb, fill: try resolvedFill(v))
        try transition(v.id, from: [.creating]) { $0.status = .available; $0.fault = "" }
        core.events.append(kind: "volume.available", object: v.name,
                           ["size_gb": "\(v.sizeGb)", "source": v.source.text.isEmpty ? "-" : v.source.text,
                            "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
    }

    /// What a volume's `source` names, as the backend's input.
    private func resolvedFill(_ v: VolumeRecord) throws(CloudError) -> VolumeFill {
        switch v.source {
        case .blank: return .blank
        case .image(let name):
            let img = try images.activeImage(named: name)
            return .image(path: img.path, format: img.format, virtualSize: img.virtualSize)
        case .snapshot:
            guard let id = v.sourceSnapshotId else { throw CloudError.notFound("the source snapshot of volume '\(v.name)' is gone") }
            return .snapshot(id: id)
        case .volume(let name):
            guard let src = core.catalog.withLock({ $0.volumes.byName[name] }) else {
                throw CloudError.notFound("the source volume '\(name)' is gone")
            }
            return .volume(id: src.id)
        }
    }

    func setSource(_ name: String, _ source: VolumeSource, _ caller: Caller) throws(CloudError) {
        let v = try core.refusing("volume", name, caller) { () throws(CloudError) -> VolumeRecord in
            let v = try owned(name, caller)
            if v.everAttached { throw CloudError.busy("volume '\(name)' has been attached; its source is fixed (make a new volume)") }
            guard v.status == .available else { throw CloudError.busy("volume '\(name)' is \(v.status.rawValue)") }
            var snapshotID: String? = nil
            var needed = 0
            switch source {
            case .blank: break
            case .image(let img):
                let info = try images.activeImage(named: img)
                guard images.isVisible(info, to: caller) else { throw CloudError.notFound("no image named '\(img)'") }
                needed = Int((info.virtualSize + (1 << 30) - 1) >> 30)
            case .snapshot(let vol, let snap):
                let owner = try visible(vol, caller)
                guard let s = core.catalog.withLock({ $0.volumes.snapshots(of: owner.id) }).first(where: { $0.name == snap }) else {
                    throw CloudError.notFound("volume '\(vol)' has no snapshot named '\(snap)'")
                }
                guard s.status == .available else { throw CloudError.busy("snapshot '\(vol)/\(snap)' is \(s.status.rawValue)") }
                guard owner.backend == v.backend else {
                    throw CloudError.invalid("snapshot '\(vol)/\(snap)' is on backend \(owner.backend), volume '\(name)' on \(v.backend)")
                }
                snapshotID = s.id
                needed = s.sizeGb
            case .volume(let other):
                let src = try visible(other, caller)
                guard src.id != v.id else { throw CloudError.invalid("a volume cannot be its own source") }
                guard src.status == .available else {
                    throw CloudError.busy("volume '\(other)' is \(src.status.rawValue); clone an available volume, or snapshot it and use the snapshot")
                }
                guard src.backend == v.backend else {
                    throw CloudError.invalid("volume '\(other)' is on backend \(src.backend), volume '\(name)' on \(v.backend)")
                }
                needed = src.sizeGb
            }
            if needed > v.sizeGb {
                throw CloudError.invalid("the source needs \(needed) GiB, volume '\(name)' has \(v.sizeGb) GiB (write a larger size_gb first)")
            }
            guard let updated = try transition(v.id, from: [.available], { x in
                x.status = .creating
                switch source {
                case .blank: x.sourceKind = ""; x.sourceName = ""
                case .image(let n): x.sourceKind = "image"; x.sourceName = n
                case .snapshot(let vol, let snap): x.sourceKind = "snapshot"; x.sourceName = "\(vol)/\(snap)"
                case .volume(let n): x.sourceKind = "volume"; x.sourceName = n
                }
                x.sourceSnapshotId = snapshotID
            }) else { throw CloudError.busy("volume '\(name)' changed meanwhile; try again") }
            return updated
        }
        core.events.append(kind: "volume.creating", object: name, ["source": source.text.isEmpty ? "-" : source.text, "uid": "\(caller.uid)"])
        CrashPoints.pass("volume.creating")
        do {
            try fill(v)
        } catch {
            // The volume stays (it held data before), blank and in error with the reason.
            _ = try? transition(v.id, from: [.creating]) { $0.status = .error; $0.fault = "filling from \(source.text) failed: \(error.reason)" }
            throw core.refuse(error, kind: "volume", object: name, caller: caller)
        }
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let v = try core.refusing("volume", name, caller) { () throws(CloudError) -> VolumeRecord in
            let v = try owned(name, caller)
            if let i = v.instanceId {
                let inst = core.catalog.withLock { $0.instanceNames[i] } ?? i
                throw CloudError.busy("volume '\(name)' is \(v.status.rawValue) (attached to \(inst) as \(v.device ?? "?")); detach it first")
            }
            guard v.status.isDeletable else { throw CloudError.busy("volume '\(name)' is \(v.status.rawValue); only available or error volumes can be deleted") }
            let snaps = core.catalog.withLock { $0.volumes.snapshots(of: v.id) }.map(\.name)
            if !snaps.isEmpty { throw CloudError.busy("volume '\(name)' has snapshots (\(snaps.joined(separator: ", "))); remove them first") }
            guard let d = try transition(v.id, from: [.available, .error, .errorDeleting, .errorExtending], { $0.status = .deleting }) else {
                throw CloudError.busy("volume '\(name)' changed meanwhile; try again")
            }
            return d
        }
        CrashPoints.pass("volume.deleting")
        try core.refusing("volume", name, caller) { () throws(CloudError) in try remove(v) }
        core.events.append(kind: "volume.deleted", object: name, ["uid": "\(caller.uid)"])
    }

    /// Removes a volume in `deleting`: its storage, then its row (run again by a restart).
    func remove(_ v: VolumeRecord) throws(CloudError) {
        do {
            try backend(v).delete(volumeID: v.id)
        } catch {
            _ = try? transition(v.id, from: [.deleting]) { $0.status = .errorDeleting; $0.fault = "delete failed: \(error.reason)" }
            throw error
        }
        try dropRow(v)
    }

    // MARK: VolumeProvider

    func disks(forInstance id: String) -> [DiskSpec] {
        let attached = core.catalog.withLock { c in
            c.volumes.byName.values.filter { $0.instanceId == id && [.inUse, .extending, .errorExtending].contains($0.status) }
        }
        return attached.compactMap { v in
            guard let d = v.device, let b = backends[v.backend] else { return nil }
            return b.disk(volumeID: v.id, device: d)
        }.sorted { $0.device < $1.device }
    }

    func instanceDeleted(_ id: String) throws(CloudError) {
        var before: [String: VolumeRecord] = [:]
        let changed = try core.write({ (s) throws(CloudError) in try s.releaseVolumes(instanceID: id) }) { c, rows in
            for v in rows { before[v.id] = c.volumes.volume(id: v.id); c.volumes.put(v) }
        }
        for v in changed {
            core.events.append(kind: "volume.detached", object: v.name, ["instance": "-", "why": "instance deleted"])
            announce(v, before[v.id])
        }
    }
}
