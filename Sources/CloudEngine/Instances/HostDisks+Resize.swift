import CloudCore
import CloudStore
import Foundation
import ImageStore

/// Resize when a remote host is the source or the destination (Nova's resize without
/// shared storage: `migrate_disk_and_power_off`, then `finish_migration` on the new host,
/// the disk kept at the source until the confirm). The backup of the old disk lives here,
/// in the instance's state directory (`disk.resize`, as for local hosts), whichever host
/// the disk came from; the grown disk is made here over the image store's file and put on
/// the destination (uploaded over its cached image, or placed in the state directory).
extension HostDisks {
    /// True when the resize's disk must move through this machine.
    func resizeMoves(from source: String, to dest: String) -> Bool { isRemote(source) || isRemote(dest) }

    /// The stopped instance's disk, backed up and grown to `sizeBytes`, placed on `dest`.
    /// Idempotent: an existing backup is the old disk (a restart never backs up the grown one).
    func resizeDisk(_ r: InstanceRecord, from source: String, to dest: String, sizeBytes: Int64, guests: Guests) throws(CloudError) {
        guard let img = images.image(id: r.imageId) else { throw CloudError.notFound("image \(r.imageName) no longer exists") }
        let dir = core.config.instanceDir(r.id)
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw CloudError.io("cannot create \(dir): \(String(cString: strerror(errno)))") }
        let disk = guests.diskPath(r.id), backup = disk + ".resize"
        if !FileManager.default.fileExists(atPath: backup) {
            if isRemote(source) {
                let partial = backup + ".partial"
                try connection(source).downloadVolume(pool: poolName, volume: Self.diskVolume(r.id), to: partial)
                guard rename(partial, backup) == 0 else { throw CloudError.io("cannot keep \(backup): \(String(cString: strerror(errno)))") }
            } else {
                try Overlay.backUp(disk, to: backup)
            }
        }
        let grown = dir + "/disk.resizing"
        defer { unlink(grown) }
        _ = try Self.tools.check(["cp", "--sparse=always", backup, grown])
        _ = try Self.tools.check(["qemu-img", "rebase", "-u", "-b", img.path, "-F", img.format == .qcow2 ? "qcow2" : "raw", grown])
        try Self.grow(grown, to: sizeBytes)
        try install(grown, of: r, image: img, on: dest, configDrive: r.configDrive && dest != source, guests: guests)
    }

    /// The revert's disk: the old disk back on `source` (uploaded again when the resize
    /// replaced it there, i.e. on the same remote host), the grown one dropped from `dest`,
    /// the backup removed. Idempotent.
    func revertResizedDisk(_ id: String, source: String, dest: String, guests: Guests) throws(CloudError) {
        let disk = guests.diskPath(id), backup = disk + ".resize"
        let hasBackup = FileManager.default.fileExists(atPath: backup)
        if isRemote(source) {
            let conn = try connection(source)
            let present = try conn.volumeNames(pool: poolName).contains(Self.diskVolume(id))
            if hasBackup && (source == dest || !present) {
                try conn.deleteVolume(pool: poolName, volume: Self.diskVolume(id))
                _ = try conn.uploadVolume(pool: poolName, volume: Self.diskVolume(id), from: backup, format: "qcow2")
            }
            if dest != source {
                if isRemote(dest) { try removeRemote(id, on: dest) } else { unlink(disk); unlink(guests.configDrivePath(id)) }
            }
            unlink(backup)
        } else {
            // A local source: its disk never changed; the backup equals it.
            try removeRemote(id, on: dest)
            try Overlay.restore(disk, from: backup)
        }
    }

    /// The confirm's disk: the source's copy goes (when the instance left that host), and
    /// the backup. Idempotent.
    func confirmResizedDisk(_ id: String, source: String, dest: String, guests: Guests) throws(CloudError) {
        if source != dest {
            if isRemote(source) { try removeRemote(id, on: source) } else { unlink(guests.diskPath(id)); unlink(guests.configDrivePath(id)) }
        }
        unlink(guests.diskPath(id) + ".resize")
    }

    /// Grows the qcow2 file at `path` to `sizeBytes`, never shrinking it: in place when it
    /// is an overlay of ours (`Overlay.grow`), otherwise with `qemu-img resize` (libvirt
    /// made the overlays of remote hosts).
    static func grow(_ path: String, to sizeBytes: Int64) throws(CloudError) {
        do throws(CloudError) { try Overlay.grow(path, to: sizeBytes); return } catch where error.errno == .invalid {}
        if sizeBytes > (try FormatSniffer.detect(path: path)).virtualSize { _ = try tools.check(["qemu-img", "resize", "-f", "qcow2", path, "\(sizeBytes)"]) }
    }
}
