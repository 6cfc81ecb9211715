import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Where a new volume's bytes come from, resolved to files by the service.
enum VolumeFill: Sendable {
    case blank
    /// An image file and its format (Cinder's create from image: qemu-img convert).
    case image(path: String, format: DiskFormat, virtualSize: Int64)
    /// A snapshot of this backend (Cinder's create from snapshot).
    case snapshot(id: String)
    /// Another volume of this backend, not attached (Cinder's clone).
    case volume(id: String)
}

/// A Cinder volume driver (cinder/volume/driver.py, narrowed): makes, fills, grows,
/// snapshots and removes a volume's storage, and says what a domain's `<disk>` names.
/// Every step is idempotent where a restart may repeat it: a create replaces what an
/// interrupted one left, a delete of what is gone succeeds.
protocol VolumeBackend: Sendable {
    /// `file` or `lvm`: the volume's `backend` file.
    var name: String { get }
    /// The disk a domain attaches for the volume at `device`.
    func disk(volumeID: String, device: String) -> DiskSpec
    /// Makes the volume's storage, `sizeGB` large, holding `fill`'s bytes.
    func create(volumeID: String, sizeGB: Int, fill: VolumeFill) throws(CloudError)
    /// Grows an unattached volume (Cinder's extend_volume).
    func extend(volumeID: String, sizeGB: Int) throws(CloudError)
    /// Removes the volume's storage; missing is success.
    func delete(volumeID: String) throws(CloudError)
    /// Takes a snapshot of the volume. `liveCopy`, when the volume is attached to a running
    /// guest, copies the guest's disk as it is at that moment into a path (a backend that
    /// can snapshot its storage atomically by itself does not need it).
    func snapshot(volumeID: String, snapshotID: String, liveCopy: ((String) throws(CloudError) -> Void)?) throws(CloudError)
    /// Removes a snapshot's storage; missing is success.
    func deleteSnapshot(snapshotID: String) throws(CloudError)
    /// Whether an attached, running guest's disk must be resized through the hypervisor
    /// (a qcow2 file QEMU holds open) rather than underneath it first (an LV).
    var resizesThroughHypervisor: Bool { get }
}

/// Runs qemu-img and the LVM tools, with their stderr in the error.
struct Tools: Sendable {
    let runner = CommandRunner()
    @discardableResult
    func run(_ argv: [String]) throws(CloudError) -> String { try runner.check(argv) }
}

/// Cinder's NFS/"file" style driver on the local disk: each volume is a qcow2 file under
/// `STATE/volumes/` (`volume-ID.qcow2`), each snapshot a standalone qcow2
/// (`snapshot-ID.qcow2`); a volume made from a snapshot is a qcow2 overlay on it, which is
/// why a snapshot in use as a source cannot go. New files are written beside their name
/// (`.part`) and renamed into place, so a crash never leaves a half-made volume under a
/// real name.
struct FileVolumeBackend: VolumeBackend {
    let directory: String
    let tools = Tools()
    var name: String { "file" }
    var resizesThroughHypervisor: Bool { true }

    func path(volumeID: String) -> String { directory + "/volume-\(volumeID).qcow2" }
    func path(snapshotID: String) -> String { directory + "/snapshot-\(snapshotID).qcow2" }

    func disk(volumeID: String, device: String) -> DiskSpec {
        DiskSpec(path: path(volumeID: volumeID), format: "qcow2", device: device)
    }

    private func prepare() throws(CloudError) {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw CloudError.io("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    func create(volumeID: String, sizeGB: Int, fill: VolumeFill) throws(CloudError) {
        try prepare()
        let final = path(volumeID: volumeID), part = final + ".part"
        try? FileManager.default.removeItem(atPath: part)
        let size = "\(sizeGB)G"
        do throws(CloudError) {
            switch fill {
            case .blank:
                try tools.run(["qemu-img", "create", "-q", "-f", "qcow2", part, size])
            case .image(let src, let format, let virtualSize):
                guard virtualSize <= Int64(sizeGB) << 30 else {
                    throw CloudError.invalid("the image's virtual size (\(Self.gib(virtualSize)) GiB) is larger than the volume (\(sizeGB) GiB)")
                }
                try tools.run(["qemu-img", "convert", "-q", "-f", format == .qcow2 ? "qcow2" : "raw", "-O", "qcow2", src, part])
                try tools.run(["qemu-img", "resize", "-q", part, size])
            case .snapshot(let id):
                try tools.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", path(snapshotID: id), "-F", "qcow2", part, size])
            case .volume(let id):
                try tools.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "qcow2", path(volumeID: id), part])
                try tools.run(["qemu-img", "resize", "-q", part, size])
            }
        } catch {
            try? FileManager.default.removeItem(atPath: part)
            throw error
        }
        try Self.rename(part, final)
    }

    func extend(volumeID: String, sizeGB: Int) throws(CloudError) {
        try tools.run(["qemu-img", "resize", "-q", path(volumeID: volumeID), "\(sizeGB)G"])
    }

    func delete(volumeID: String) throws(CloudError) {
        try Self.remove(path(volumeID: volumeID))
        try Self.remove(path(volumeID: volumeID) + ".part")
    }

    func snapshot(volumeID: String, snapshotID: String, liveCopy: ((String) throws(CloudError) -> Void)?) throws(CloudError) {
        try prepare()
        let final = path(snapshotID: snapshotID), part = final + ".part"
        try Self.remove(part)
        do throws(CloudError) {
            if let liveCopy {
                try liveCopy(part)
            } else {
                // A standalone copy (the chain flattened), so the snapshot outlives the volume's source.
                try tools.run(["qemu-img", "convert", "-q", "-f", "qcow2", "-O", "qcow2", path(volumeID: volumeID), part])
            }
        } catch {
            try? FileManager.default.removeItem(atPath: part)
            throw error
        }
        try Self.rename(part, final)
    }

    func deleteSnapshot(snapshotID: String) throws(CloudError) {
        try Self.remove(path(snapshotID: snapshotID))
        try Self.remove(path(snapshotID: snapshotID) + ".part")
    }

    static func gib(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / Double(1 << 30)) }

    static func rename(_ from: String, _ to: String) throws(CloudError) {
        guard Foundation.rename(from, to) == 0 else {
            throw CloudError.io("cannot rename \(from) to \(to): \(String(cString: strerror(errno)))")
        }
    }

    static func remove(_ path: String) throws(CloudError) {
        guard unlink(path) == 0 || errno == ENOENT else {
            throw CloudError.io("cannot remove \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Cinder's LVM driver with `lvm_type = thin`: each volume is a thin logical volume
/// `volume-ID` in the thin pool `cloudfs-pool` of the volume group given with
/// `--volume-group` (made from the group's free space on first use), each snapshot a thin
/// snapshot `snapshot-ID` (atomic on its own, also of an in-use volume, as Cinder's LVM
/// driver takes it). Volumes are attached as raw block devices.
struct LVMVolumeBackend: VolumeBackend {
    let volumeGroup: String
    let tools = Tools()
    static let pool = "cloudfs-pool"
    var name: String { "lvm" }
    var resizesThroughHypervisor: Bool { false }

    func device(_ lv: String) -> String { "/dev/\(volumeGroup)/\(lv)" }

    func disk(volumeID: String, device: String) -> DiskSpec {
        DiskSpec(path: self.device("volume-\(volumeID)"), format: "raw", device: device)
    }

    private func exists(_ lv: String) -> Bool {
        ((try? tools.runner.run(["lvs", "--noheadings", "\(volumeGroup)/\(lv)"]))?.status ?? 1) == 0
    }

    /// The thin pool, made from 95% of the group's free space the first time.
    private func ensurePool() throws(CloudError) {
        if exists(Self.pool) { return }
        try tools.run(["lvcreate", "-q", "-y", "-l", "95%FREE", "-T", "\(volumeGroup)/\(Self.pool)"])
    }

    func create(volumeID: String, sizeGB: Int, fill: VolumeFill) throws(CloudError) {
        try ensurePool()
        let lv = "volume-\(volumeID)"
        if exists(lv) { try tools.run(["lvremove", "-q", "-f", "\(volumeGroup)/\(lv)"]) }
        switch fill {
        case .blank, .image:
            try tools.run(["lvcreate", "-q", "-y", "-T", "\(volumeGroup)/\(Self.pool)", "-V", "\(sizeGB)G", "-n", lv])
        case .snapshot(let id):
            try thinSnapshot(of: "snapshot-\(id)", named: lv, sizeGB: sizeGB)
        case .volume(let id):
            try thinSnapshot(of: "volume-\(id)", named: lv, sizeGB: sizeGB)
        }
        if case .image(let src, let format, let virtualSize) = fill {
            guard virtualSize <= Int64(sizeGB) << 30 else {
                try? delete(volumeID: volumeID)
                throw CloudError.invalid("the image's virtual size (\(FileVolumeBackend.gib(virtualSize)) GiB) is larger than the volume (\(sizeGB) GiB)")
            }
            try tools.run(["qemu-img", "convert", "-q", "-n", "-f", format == .qcow2 ? "qcow2" : "raw", "-O", "raw", src, device(lv)])
        }
    }

    /// A thin snapshot that is a volume of its own: activated, and grown to `sizeGB`.
    private func thinSnapshot(of origin: String, named lv: String, sizeGB: Int) throws(CloudError) {
        try tools.run(["lvcreate", "-q", "-y", "-s", "-kn", "-ay", "\(volumeGroup)/\(origin)", "-n", lv])
        try tools.run(["lvextend", "-q", "-L", "\(sizeGB)G", "\(volumeGroup)/\(lv)"])
    }

    func extend(volumeID: String, sizeGB: Int) throws(CloudError) {
        do throws(CloudError) {
            try tools.run(["lvextend", "-q", "-L", "\(sizeGB)G", "\(volumeGroup)/volume-\(volumeID)"])
        } catch where error.reason.contains("matches existing size") {
            // Already that size (an extend a restart repeats).
        }
    }

    func delete(volumeID: String) throws(CloudError) {
        let lv = "volume-\(volumeID)"
        if exists(lv) { try tools.run(["lvremove", "-q", "-f", "\(volumeGroup)/\(lv)"]) }
    }

    func snapshot(volumeID: String, snapshotID: String, liveCopy: ((String) throws(CloudError) -> Void)?) throws(CloudError) {
        let lv = "snapshot-\(snapshotID)"
        if exists(lv) { try tools.run(["lvremove", "-q", "-f", "\(volumeGroup)/\(lv)"]) }
        try tools.run(["lvcreate", "-q", "-y", "-s", "\(volumeGroup)/volume-\(volumeID)", "-n", lv])
    }

    func deleteSnapshot(snapshotID: String) throws(CloudError) {
        let lv = "snapshot-\(snapshotID)"
        if exists(lv) { try tools.run(["lvremove", "-q", "-f", "\(volumeGroup)/\(lv)"]) }
    }
}
