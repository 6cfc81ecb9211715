import CloudCore
import Foundation

/// Disk steps of Nova's resize (libvirt driver `migrate_disk_and_power_off` +
/// `_disk_resize`): keep a copy of the instance's overlay so a revert can restore it, and
/// grow the overlay's virtual size to the new flavor's root disk.
extension Overlay {
    /// Copies `path` to `backup` through a temporary file and a rename, so a crash never
    /// leaves a partial backup under the final name. Does nothing when `backup` exists.
    public static func backUp(_ path: String, to backup: String) throws(CloudError) {
        let fm = FileManager.default
        if fm.fileExists(atPath: backup) { return }
        let tmp = backup + ".partial"
        SystemCall.unlinkIfPresent(tmp)
        do {
            try fm.copyItem(atPath: path, toPath: tmp)
            guard rename(tmp, backup) == 0 else { throw CloudError(.io, String(cString: strerror(errno))) }
        } catch {
            SystemCall.unlinkIfPresent(tmp)
            throw CloudError(.io, "cannot back up \(path): \(error.localizedDescription)")
        }
    }

    /// Puts the backup back in place of `path` (a revert). Does nothing without a backup.
    public static func restore(_ path: String, from backup: String) throws(CloudError) {
        guard FileManager.default.fileExists(atPath: backup) else { return }
        guard rename(backup, path) == 0 else {
            throw CloudError(.io, "cannot restore \(path) from \(backup): \(String(cString: strerror(errno)))")
        }
    }

    /// Grows the qcow2 overlay at `path` to at least `sizeBytes` (never shrinks) while no
    /// guest has it open. The L1 table of an overlay written by `create` sits alone in its
    /// cluster, so growing within that cluster (up to 4 TiB) only rewrites the header's size
    /// and L1 length, and zeroes the new L1 entries: what `qemu-img resize` does when the L1
    /// table still fits. Throws `EINVAL` for a file whose layout is not ours, `EIO` otherwise.
    public static func grow(_ path: String, to sizeBytes: Int64) throws(CloudError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw CloudError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { SystemCall.close(fd) }
        var header = [UInt8](repeating: 0, count: 104)
        let n = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 104, 0) }
        guard n == 104, Qcow2Header.u32(header, 0) == 0x5146_49FB, Qcow2Header.u32(header, 4) == 3 else {
            throw .invalid("\(path) is not a qcow2 v3 overlay")
        }
        let clusterBits = Qcow2Header.u32(header, 20)
        let cluster = Int64(1) << Int64(clusterBits)
        let current = Int64(Qcow2Header.u64(header, 24))
        let l1Size = Int64(Qcow2Header.u32(header, 36))
        let l1Offset = Int64(Qcow2Header.u64(header, 40))
        let size = (sizeBytes + 511) / 512 * 512
        guard size > current else { return }
        let perL1 = cluster * (cluster / 8)
        let newL1 = (size + perL1 - 1) / perL1
        guard l1Offset % cluster == 0, newL1 * 8 <= cluster else {
            throw .invalid("\(path): growing to \(size) bytes needs a larger L1 table than this overlay has")
        }
        if newL1 > l1Size {
            let zeros = [UInt8](repeating: 0, count: Int((newL1 - l1Size) * 8))
            try write(fd, zeros, at: l1Offset + l1Size * 8, path)
        }
        var fields = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { fields[i] = UInt8(truncatingIfNeeded: UInt64(size) >> (56 - 8 * UInt64(i))) }
        try write(fd, fields, at: 24, path)
        var l1 = [UInt8](repeating: 0, count: 4)
        for i in 0..<4 { l1[i] = UInt8(truncatingIfNeeded: UInt32(max(newL1, l1Size)) >> (24 - 8 * UInt32(i))) }
        try write(fd, l1, at: 36, path)
        guard fsync(fd) == 0 else { throw CloudError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    private static func write(_ fd: Int32, _ bytes: [UInt8], at offset: Int64, _ path: String) throws(CloudError) {
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw CloudError(.io, "cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
