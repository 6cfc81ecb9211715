import CloudCore
import CloudStore

/// The catalog's volumes and snapshots, and which volume each instance holds at which
/// device (for `instances/NAME/volumes/` and the domain definition).
struct VolumeCatalog {
    var byName: [String: VolumeRecord] = [:]
    var names: [String: String] = [:]                  // id → name
    var snapshots: [String: SnapshotRecord] = [:]      // by id

    mutating func put(_ v: VolumeRecord) {
        if let old = names[v.id], old != v.name { byName[old] = nil }
        byName[v.name] = v
        names[v.id] = v.name
    }

    mutating func remove(_ id: String) {
        if let name = names.removeValue(forKey: id) { byName[name] = nil }
    }

    func volume(id: String) -> VolumeRecord? { names[id].flatMap { byName[$0] } }

    /// device → volume name of the volumes attached (or attaching, detaching) to an instance.
    func attachments(of instanceID: String) -> [String: String] {
        var out: [String: String] = [:]
        for v in byName.values where v.instanceId == instanceID { if let d = v.device { out[d] = v.name } }
        return out
    }

    func snapshots(of volumeID: String) -> [SnapshotRecord] {
        snapshots.values.filter { $0.volumeId == volumeID }.sorted { $0.name < $1.name }
    }
}
