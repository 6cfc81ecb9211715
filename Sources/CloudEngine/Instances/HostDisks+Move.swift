import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Cold migration and evacuation when a remote host is involved (Nova's
/// `migrate_disk_and_power_off` without shared storage): the instance's overlay is copied
/// to the destination and pointed at the destination's copy of its image.
extension HostDisks {
    /// Puts the stopped instance's disk on `dest` before its domain starts there. Hosts that
    /// both see the controller's files share the disk: nothing moves. An evacuation from a
    /// down remote host has nothing to copy, so the destination gets a fresh disk from
    /// the image (Nova's evacuate without shared storage rebuilds). The source's copy is
    /// left alone (`removeSource` drops it once the instance runs on `dest`).
    func moveDisk(_ moved: InstanceRecord, from source: String, sourceIsUp: Bool, guests: Guests) throws(CloudError) {
        guard let dest = moved.host else { return }
        let (srcRemote, dstRemote) = (isRemote(source), isRemote(dest))
        guard srcRemote || dstRemote else { return }
        if srcRemote && !sourceIsUp {
            try guests.makeDisk(moved)
            return
        }
        guard let img = images.image(id: moved.imageId) else { throw CloudError.notFound("image \(moved.imageName) no longer exists") }
        let dir = core.config.instanceDir(moved.id)
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw CloudError.io("cannot create \(dir): \(String(cString: strerror(errno)))") }
        let copy = dir + "/disk.moving"
        defer { unlink(copy) }
        if srcRemote {
            guard let conn = hosts.connection(forHost: source) else { throw CloudError.io("host \(source) is not connected") }
            try conn.downloadVolume(pool: poolName, volume: Self.diskVolume(moved.id), to: copy)
        } else {
            _ = try Self.tools.check(["cp", "--sparse=always", guests.diskPath(moved.id), copy])
        }
        try install(copy, of: moved, image: img, on: dest, configDrive: moved.configDrive, guests: guests)
    }

    /// Makes the qcow2 overlay `copy` (of `img`) the instance's disk on `dest`: rebased on
    /// the destination's copy of the image and uploaded into its pool in place of the
    /// volumes there, or rebased on the image store's file and moved into the state
    /// directory. `configDrive`: the config drive is made again and placed beside it.
    func install(_ copy: String, of r: InstanceRecord, image img: ImageInfo, on dest: String, configDrive: Bool,
                 guests: Guests) throws(CloudError) {
        let format = img.format == .qcow2 ? "qcow2" : "raw"
        if isRemote(dest) {
            let conn = try connection(dest)
            _ = try poolDir(dest, conn)
            let base = try imagePath(img, on: dest, conn)
            _ = try Self.tools.check(["qemu-img", "rebase", "-u", "-b", base, "-F", format, copy])
            try conn.deleteVolume(pool: poolName, volume: Self.diskVolume(r.id))
            _ = try conn.uploadVolume(pool: poolName, volume: Self.diskVolume(r.id), from: copy, format: "qcow2")
            if configDrive {
                try guests.makeConfigDrive(r)
                try conn.deleteVolume(pool: poolName, volume: Self.configVolume(r.id))
                _ = try conn.uploadVolume(pool: poolName, volume: Self.configVolume(r.id), from: guests.configDrivePath(r.id), format: "raw")
            }
        } else {
            _ = try Self.tools.check(["qemu-img", "rebase", "-u", "-b", img.path, "-F", format, copy])
            guard rename(copy, guests.diskPath(r.id)) == 0 else {
                throw CloudError.io("cannot move the disk into place: \(String(cString: strerror(errno)))")
            }
            if configDrive { try guests.makeConfigDrive(r) }
        }
    }

    /// After a move: drops the disk the instance left on `source` (its volumes on a remote
    /// host, its disk file here when it went to a remote host). Failures are reported.
    func removeSource(_ r: InstanceRecord, source: String, dest: String, guests: Guests) {
        guard isRemote(source) || isRemote(dest) else { return }
        do throws(CloudError) {
            if isRemote(source) {
                try removeRemote(r.id, on: source)
            } else {
                unlink(guests.diskPath(r.id))
                unlink(guests.configDrivePath(r.id))
            }
        } catch {
            core.recordFailure(error, kind: "instance", object: r.name, doing: "removing its disk from \(source) after the move")
        }
    }

    /// After a failed start on `dest`: drops what `moveDisk` put there (never the source's).
    func discardMoved(_ id: String, source: String, dest: String, guests: Guests) {
        guard dest != source, isRemote(source) || isRemote(dest) else { return }
        if isRemote(dest) { try? removeRemote(id, on: dest) } else { unlink(guests.diskPath(id)) }
    }

    /// qemu-img and cp, with their stderr in the error.
    static let tools = CommandRunner()
}
