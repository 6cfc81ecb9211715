import CloudCore
import CloudStore

/// The catalog's volumes and snapshots, and which volume each instance holds at which
/// device (for `instances/NAME/volumes/` and the domain definition).
struct VolumeCatalog {
    var byName: [String: VolumeRecord] = [:]
    var names: [String: String] = [:]                  // id → name
    var snapshots: [String: SnapshotRecord] = [:]      // by id
    /// instance id → device → volume name (read for every instance's `volumes/`).
    private var byInstance: [String: [String: String]] = [:]

    mutating func put(_ v: VolumeRecord) {
        if let oldName = names[v.id], let old = byName[oldName] {
            unindex(old)
            if oldName != v.name { byName[oldName] = nil }
        }
        byName[v.name] = v
        names[v.id] = v.name
        if let i = v.instanceId, let d = v.device { byInstance[i, default: [:]][d] = v.name }
    }

    mutating func remove(_ id: String) {
        guard let name = names.removeValue(forKey: id) else { return }
        if let old = byName[name] { unindex(old) }
        byName[name] = nil
    }

    private mutating func unindex(_ v: VolumeRecord) {
        guard let i = v.instanceId, let d = v.device else { return }
        byInstance[i]?[d] = nil
        if byInstance[i]?.isEmpty == true { byInstance[i] = nil }
    }

    func volume(id: String) -> VolumeRecord? { names[id].flatMap { byName[$0] } }

    /// device → volume name of the volumes attached (or attaching, detaching) to an instance.
    func attachments(of instanceID: String) -> [String: String] { byInstance[instanceID] ?? [:] }

    func snapshots(of volumeID: String) -> [SnapshotRecord] {
        snapshots.values.filter { $0.volumeId == volumeID }.sorted { $0.name < $1.name }
    }
}
