import CloudCore
import Foundation

extension Collections {
    /// `/volumes/NAME/`: Cinder volumes. `size_gb` (rw: larger extends), `instance` (rw:
    /// attach, empty to detach), `source` (rw until first attached), the rest read-only;
    /// `snapshots/SNAP/` made and removed with mkdir and rmdir. Every member of a project
    /// makes volumes (sticky directory).
    static let volumes = Collection.of(
        "volumes", notice: .volume, noun: "volume", mode: 0o1777,
        members: .directories(volumeFields, keys: [snapshotDirectory]),
        list: { ctx in ctx.api.volumes.list(ctx.caller) },
        lookup: { ctx, name in ctx.api.volumes.get(name, ctx.caller) },
        describe: { v in
            Member(name: v.name, identity: v.id, owner: v.ownerUID, created: v.created, project: v.project,
                   leaving: v.status == .deleting, object: v)
        },
        create: { w, name throws(CloudError) in try w.api.volumes.create(name, w.caller) },
        remove: { w, name throws(CloudError) in try w.api.volumes.delete(name, w.caller) })

    private typealias V = VolumeInfo

    static let volumeFields: [Field] = [
        .text("status", V.self) { $0.status.rawValue },
        .text("size_gb", V.self, .readWrite, { String($0.sizeGB) }) { w, name, v throws(CloudError) in
            try w.api.volumes.extend(name, sizeGB: v, w.caller)
        },
        emptied(.text("instance", V.self, .readWrite, { $0.instance }) { w, name, v throws(CloudError) in
            try w.api.volumes.setInstance(name, instance: v, w.caller)
        }),
        .text("device", V.self) { $0.device },
        emptied(.text("source", V.self, .readWrite, { $0.source.text }) { w, name, v throws(CloudError) in
            try w.api.volumes.setSource(name, try w.parse { () throws(CloudError) in try VolumeSource(parsing: v) }, w.caller)
        }),
        .text("backend", V.self) { $0.backend },
        .text("project", V.self) { $0.project },
        .text("created", V.self) { Timestamp.string(Date(timeIntervalSince1970: $0.created)) },
        .text("attached_at", V.self) { v in v.attachedAt.map { Timestamp.string(Date(timeIntervalSince1970: $0)) } ?? "" },
        .text("fault", V.self) { $0.fault },
        .text("id", V.self) { $0.id },
        .of("info.json", V.self, read: { v, _ in volumeJSON(v) }),
    ]

    /// `volumes/NAME/snapshots/SNAP/`: Cinder snapshots of the volume, each a directory
    /// with `status`, `size_gb`, `created`, `fault` and `source_of` (the volumes made from it).
    static let snapshotDirectory = KeyDirectory(
        name: "snapshots",
        entries: { obj in Dictionary(uniqueKeysWithValues: ((obj as? V)?.snapshots ?? []).map { ($0.name, "") }) },
        set: { w, volume, snapshot, value throws(CloudError) in
            if value != nil { try w.api.volumes.createSnapshot(volume, snapshot, w.caller) }
            else { try w.api.volumes.deleteSnapshot(volume, snapshot, w.caller) }
        },
        isKey: { ObjectName.problem($0) == nil },
        kind: .directories(snapshotFields, entry: { obj, name in (obj as? V)?.snapshots.first { $0.name == name } }))

    private typealias S = SnapshotInfo

    static let snapshotFields: [Field] = [
        .text("status", S.self) { $0.status.rawValue },
        .text("size_gb", S.self) { String($0.sizeGB) },
        .text("created", S.self) { Timestamp.string(Date(timeIntervalSince1970: $0.created)) },
        .text("fault", S.self) { $0.fault },
        .text("id", S.self) { $0.id },
        .lines("source_of", S.self) { $0.sourceOf },
    ]

    /// `info.json`: the whole volume as one JSON object with sorted keys.
    static func volumeJSON(_ v: VolumeInfo) -> [UInt8] {
        let object: [String: Any] = [
            "name": v.name, "id": v.id, "status": v.status.rawValue, "size_gb": v.sizeGB, "instance": v.instance,
            "device": v.device, "source": v.source.text, "backend": v.backend, "project": v.project,
            "owner_uid": Int(v.ownerUID), "created": Timestamp.string(Date(timeIntervalSince1970: v.created)),
            "attached_at": v.attachedAt.map { Timestamp.string(Date(timeIntervalSince1970: $0)) } ?? "",
            "fault": v.fault, "snapshots": v.snapshots.map { s in
                ["name": s.name, "id": s.id, "status": s.status.rawValue, "size_gb": s.sizeGB, "source_of": s.sourceOf] as [String: Any]
            },
        ]
        return Text.json(object)
    }
}
