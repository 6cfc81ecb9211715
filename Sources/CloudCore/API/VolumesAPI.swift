/// Cinder's volume status (cinder/objects/fields.py `VolumeStatus`), the states cloudfs
/// enters. Every transition is a compare-and-set on the row.
public enum VolumeStatus: String, Sendable, Codable, CaseIterable {
    case creating, available, reserved, attaching
    case inUse = "in-use"
    case detaching, extending, deleting, error
    case errorDeleting = "error_deleting"
    case errorExtending = "error_extending"

    /// Cinder's delete rule: only from available or an error state.
    public var isDeletable: Bool { [.available, .error, .errorDeleting, .errorExtending].contains(self) }
    /// A state a step is running in (what a restart must not leave a volume in).
    public var isTransitional: Bool { [.creating, .reserved, .attaching, .detaching, .extending, .deleting].contains(self) }
}

/// Cinder's snapshot status.
public enum SnapshotStatus: String, Sendable, Codable, CaseIterable {
    case creating, available, deleting, error
}

/// Where a volume's first bytes come from (Cinder's create from image, snapshot or
/// volume), as `source` reads and takes it: `image NAME`, `snapshot VOLUME/SNAP`,
/// `volume NAME`, or "" for a blank volume.
public enum VolumeSource: Sendable, Equatable {
    case blank
    case image(String)
    case snapshot(volume: String, snapshot: String)
    case volume(String)

    /// Parses what is written to `source`; `EINVAL` naming the accepted forms.
    public init(parsing text: String) throws(CloudError) {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        switch (words.first, words.count) {
        case (nil, _): self = .blank
        case ("image", 2): self = .image(words[1])
        case ("volume", 2): self = .volume(words[1])
        case ("snapshot", 2):
            let parts = words[1].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .invalid("source: a snapshot is named VOLUME/SNAPSHOT, not '\(words[1].prefix(80))'")
            }
            self = .snapshot(volume: parts[0], snapshot: parts[1])
        default:
            throw .invalid("source must be 'image NAME', 'snapshot VOLUME/SNAPSHOT' or 'volume NAME', not '\(text.prefix(80))'")
        }
    }

    /// The text `source` shows.
    public var text: String {
        switch self {
        case .blank: ""
        case .image(let n): "image \(n)"
        case .snapshot(let v, let s): "snapshot \(v)/\(s)"
        case .volume(let n): "volume \(n)"
        }
    }
}

/// A Cinder snapshot as the tree shows it (`/volumes/NAME/snapshots/SNAP/`).
public struct SnapshotInfo: Sendable, Equatable {
    public var name: String
    public var id: String
    public var status: SnapshotStatus
    public var sizeGB: Int
    public var created: Double
    public var fault: String
    /// Volumes created from it (it cannot be removed while there are any).
    public var sourceOf: [String]
    public init(name: String, id: String, status: SnapshotStatus, sizeGB: Int, created: Double, fault: String, sourceOf: [String]) {
        self.name = name; self.id = id; self.status = status; self.sizeGB = sizeGB; self.created = created
        self.fault = fault; self.sourceOf = sourceOf
    }
}

/// A Cinder volume as the tree shows it (`/volumes/NAME/`).
public struct VolumeInfo: Sendable, Equatable {
    public var name: String
    public var id: String
    public var status: VolumeStatus
    public var sizeGB: Int
    /// The instance it is attached (or being attached) to, "" when none.
    public var instance: String
    /// Its device in that instance (`vdb` ...), "" when none.
    public var device: String
    public var source: VolumeSource
    /// The Cinder driver that holds it: `file` or `lvm`.
    public var backend: String
    public var project: String
    public var ownerUID: UInt32
    public var created: Double
    public var attachedAt: Double?
    public var fault: String
    /// Once attached, `source` can no longer be written.
    public var everAttached: Bool
    public var snapshots: [SnapshotInfo]
    public init(name: String, id: String, status: VolumeStatus, sizeGB: Int, instance: String, device: String,
                source: VolumeSource, backend: String, project: String, ownerUID: UInt32, created: Double,
                attachedAt: Double?, fault: String, everAttached: Bool, snapshots: [SnapshotInfo]) {
        self.name = name; self.id = id; self.status = status; self.sizeGB = sizeGB; self.instance = instance
        self.device = device; self.source = source; self.backend = backend; self.project = project
        self.ownerUID = ownerUID; self.created = created; self.attachedAt = attachedAt; self.fault = fault
        self.everAttached = everAttached; self.snapshots = snapshots
    }
}

/// Cinder's volumes and snapshots, with Nova's attach and detach: `/volumes` and
/// `instances/NAME/volumes/`. Every refusal throws a `CloudError` already in `/events`.
public protocol VolumesAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [VolumeInfo]
    func get(_ name: String, _ caller: Caller) -> VolumeInfo?
    /// `mkdir /volumes/NAME`: a blank volume of `/defaults/volume_size_gb` in the caller's
    /// project (`EDQUOT` over the volumes or gigabytes quota).
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /volumes/NAME`: only from available or an error state, never attached or
    /// with snapshots (`EBUSY` with the reason).
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// Writes `size_gb`: a larger size extends (live when attached), a smaller is `EINVAL`.
    func extend(_ name: String, sizeGB text: String, _ caller: Caller) throws(CloudError)
    /// Writes `source` (only before the first attach): refills the volume from an image,
    /// a snapshot or another volume.
    func setSource(_ name: String, _ source: VolumeSource, _ caller: Caller) throws(CloudError)
    /// Writes `instance`: attaches to that instance; "" detaches.
    func setInstance(_ name: String, instance: String, _ caller: Caller) throws(CloudError)
    /// `rm instances/INSTANCE/volumes/DEVICE`: detaches what is attached there.
    func detach(instance: String, device: String, _ caller: Caller) throws(CloudError)
    /// `mkdir /volumes/NAME/snapshots/SNAP`.
    func createSnapshot(_ volume: String, _ snapshot: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /volumes/NAME/snapshots/SNAP`: `EBUSY` while a volume was made from it.
    func deleteSnapshot(_ volume: String, _ snapshot: String, _ caller: Caller) throws(CloudError)
}

extension ChangeNotice.Kind {
    /// `/volumes` (a volume's name).
    public static let volume = ChangeNotice.Kind(rawValue: "volume")
}
