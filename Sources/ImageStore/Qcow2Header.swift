import CloudCore

/// The fields of a qcow2 header that decide whether an image is safe to serve (QEMU's
/// docs/interop/qcow2.txt; all fields big-endian). Glance's format inspector reads the same
/// fields before it lets an image become active.
public struct Qcow2Header: Sendable, Equatable {
    /// `QFI\xfb`.
    public static let magic: UInt32 = 0x5146_49fb
    /// Incompatible feature bit 0: refcounts may be stale (lazy refcounts). Usable.
    public static let dirtyBit: UInt64 = 1 << 0
    /// Incompatible feature bit 1: QEMU found the metadata corrupt.
    public static let corruptBit: UInt64 = 1 << 1
    /// Incompatible feature bit 2: guest data lives in an external file named in the header.
    public static let externalDataFileBit: UInt64 = 1 << 2
    /// Incompatible feature bit 3: a compression type other than zlib (byte 104).
    public static let compressionTypeBit: UInt64 = 1 << 3
    /// Incompatible feature bit 4: extended L2 entries (subclusters).
    public static let extendedL2Bit: UInt64 = 1 << 4
    /// Every incompatible feature bit this reader knows; anything else is refused.
    public static let knownIncompatibleBits: UInt64 = 0b1_1111

    public var version: UInt32
    public var backingFileOffset: UInt64
    public var backingFileSize: UInt32
    public var clusterBits: UInt32
    /// The virtual disk size in bytes.
    public var size: UInt64
    public var cryptMethod: UInt32
    /// Version 3 only (zero for version 2).
    public var incompatibleFeatures: UInt64
    /// 72 for version 2; at least 104 (a multiple of 8) for version 3.
    public var headerLength: UInt32

    /// Parses the header at the start of `bytes` (which must start with the qcow2 magic).
    /// Throws `EINVAL` for a truncated header, an unknown version or a bad header length.
    public init(_ bytes: [UInt8]) throws(CloudError) {
        guard bytes.count >= 72 else {
            throw .invalid("truncated qcow2 header: \(bytes.count) bytes, a qcow2 header needs at least 72")
        }
        guard Self.u32(bytes, 0) == Self.magic else { throw .invalid("not a qcow2 header (bad magic)") }
        version = Self.u32(bytes, 4)
        guard version == 2 || version == 3 else {
            throw .invalid("unsupported qcow2 version \(version) (only 2 and 3 are known)")
        }
        backingFileOffset = Self.u64(bytes, 8)
        backingFileSize = Self.u32(bytes, 16)
        clusterBits = Self.u32(bytes, 20)
        size = Self.u64(bytes, 24)
        cryptMethod = Self.u32(bytes, 32)
        if version == 2 {
            incompatibleFeatures = 0
            headerLength = 72
        } else {
            guard bytes.count >= 104 else {
                throw .invalid("truncated qcow2 v3 header: \(bytes.count) bytes, version 3 needs at least 104")
            }
            incompatibleFeatures = Self.u64(bytes, 72)
            headerLength = Self.u32(bytes, 100)
            guard headerLength >= 104, headerLength % 8 == 0 else {
                throw .invalid("bad qcow2 v3 header_length \(headerLength) (must be >= 104 and a multiple of 8)")
            }
        }
    }

    /// The backing file name when it lies within `bytes`, for the refusal message.
    public func backingFileName(in bytes: [UInt8]) -> String? {
        let start = Int(clamping: backingFileOffset), count = Int(backingFileSize)
        guard backingFileOffset != 0, count > 0, count <= 1023, start <= bytes.count - count else { return nil }
        return String(decoding: bytes[start..<(start + count)], as: UTF8.self)
    }

    /// Refuses what is unsafe to hand to QEMU as an image (Glance's safety checks, and
    /// the CVE-2024-32498 class of attacks: images that point at other host files).
    /// `fileSize` is the size of the whole file. Throws `EINVAL` with the reason.
    public func checkSafe(fileSize: Int64, headerBytes: [UInt8]) throws(CloudError) {
        if backingFileOffset != 0 {
            let name = backingFileName(in: headerBytes).map { " '\($0)'" } ?? ""
            throw .invalid("qcow2 image has a backing file\(name): refused as unsafe (upload a flattened image: qemu-img convert -O qcow2)")
        }
        if incompatibleFeatures & Self.externalDataFileBit != 0 {
            throw .invalid("qcow2 image uses an external data file: refused as unsafe")
        }
        if incompatibleFeatures & Self.corruptBit != 0 {
            throw .invalid("qcow2 image is marked corrupt (run qemu-img check -r all)")
        }
        let unknown = incompatibleFeatures & ~Self.knownIncompatibleBits
        if unknown != 0 {
            throw .invalid("qcow2 image has unknown incompatible features 0x\(String(unknown, radix: 16))")
        }
        if cryptMethod != 0 {
            throw .invalid("qcow2 image is encrypted (crypt_method \(cryptMethod)): encrypted images are not supported")
        }
        guard (9...21).contains(clusterBits) else {
            throw .invalid("bad qcow2 cluster_bits \(clusterBits) (must be 9...21)")
        }
        guard size <= UInt64(Int64.max) else { throw .invalid("qcow2 virtual size \(size) is too large") }
        guard fileSize >= Int64(headerLength) else {
            throw .invalid("truncated qcow2 image: \(fileSize) bytes, shorter than its \(headerLength)-byte header")
        }
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        (UInt32(b[at]) << 24) | (UInt32(b[at + 1]) << 16) | (UInt32(b[at + 2]) << 8) | UInt32(b[at + 3])
    }

    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 {
        (UInt64(u32(b, at)) << 32) | UInt64(u32(b, at + 4))
    }
}
