import CloudCore
import Foundation

/// Writes an empty qcow2 (version 3) image whose reads fall through to a backing file:
/// the overlay Nova's libvirt driver creates per instance. It is a fixed, tiny structure —
/// header + backing-format extension + backing name in cluster 0, a one-cluster refcount
/// table, one refcount block, and a zeroed L1 table — so writing it directly takes
/// microseconds where spawning `qemu-img create` takes ~10 ms (the bulk of mkdir → ACTIVE
/// on fake hosts). Layout per docs/interop/qcow2.txt of QEMU; `qemu-img check` accepts it.
enum Qcow2Overlay {
    static let clusterBits: UInt32 = 16
    static var clusterSize: Int { 1 << Int(clusterBits) }

    /// The bytes of an overlay of `size` bytes backed by `backing` (absolute path) in `format`.
    /// Throws `EINVAL` when the backing path does not fit the header (over 1023 bytes).
    static func bytes(size: Int64, backing: String, format: DiskFormat) throws(CloudError) -> [UInt8] {
        let name = Array(backing.utf8), fmt = Array(format.rawValue.utf8)
        guard !name.isEmpty, name.count <= 1023 else { throw .invalid("backing path is longer than qcow2 allows (1023 bytes)") }
        let virtualSize = (size + 511) / 512 * 512
        let bytesPerL1Entry = Int64(clusterSize) * Int64(clusterSize / 8)   // one L2 table maps 512 MiB
        let l1Size = max(1, Int((virtualSize + bytesPerL1Entry - 1) / bytesPerL1Entry))
        let l1Clusters = (l1Size * 8 + clusterSize - 1) / clusterSize
        let refTable = clusterSize, refBlock = 2 * clusterSize, l1Table = 3 * clusterSize
        let fileEnd = l1Table + l1Size * 8
        var out = [UInt8](repeating: 0, count: fileEnd)
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { out[at + i] = UInt8(truncatingIfNeeded: v >> (24 - 8 * UInt32(i))) } }
        func put64(_ v: UInt64, _ at: Int) { for i in 0..<8 { out[at + i] = UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i))) } }
        func put16(_ v: UInt16, _ at: Int) { out[at] = UInt8(v >> 8); out[at + 1] = UInt8(v & 0xff) }

        // Header extensions start right after the 104-byte v3 header.
        let headerLength = 104
        let extPadded = (fmt.count + 7) / 8 * 8
        let nameOffset = headerLength + 8 + extPadded + 8
        put32(0x5146_49FB, 0)                      // magic "QFI\xfb"
        put32(3, 4)                                // version
        put64(UInt64(nameOffset), 8)               // backing_file_offset
        put32(UInt32(name.count), 16)              // backing_file_size
        put32(clusterBits, 20)
        put64(UInt64(virtualSize), 24)
        put32(0, 32)                               // crypt_method: none
        put32(UInt32(l1Size), 36)
        put64(UInt64(l1Table), 40)
        put64(UInt64(refTable), 48)
        put32(1, 56)                               // refcount_table_clusters
        put32(4, 96)                               // refcount_order: 16-bit refcounts
        put32(UInt32(headerLength), 100)
        put32(0xE279_2ACA, headerLength)           // extension: backing file format name
        put32(UInt32(fmt.count), headerLength + 4)
        out.replaceSubrange(headerLength + 8 ..< headerLength + 8 + fmt.count, with: fmt)
        // End-of-extensions marker (type 0, length 0) is already zero; then the backing name.
        out.replaceSubrange(nameOffset ..< nameOffset + name.count, with: name)

        put64(UInt64(refBlock), refTable)          // refcount table → the one refcount block
        let usedClusters = 3 + l1Clusters          // header, refcount table, refcount block, L1
        for c in 0..<usedClusters { put16(1, refBlock + 2 * c) }
        return out
    }
}
