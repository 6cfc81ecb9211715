import CloudCore

/// Result of sniffing an image file's bytes (Glance's image introspection: the
/// `disk_format` and `virtual_size` an image gets, from its content, never its name).
public struct DetectedImage: Sendable, Equatable {
    /// qcow2, raw, iso, aki (Linux kernel) or ari (initramfs).
    public var format: DiskFormat
    /// qcow2: the header's size field; every other format: the file size.
    public var virtualSize: Int64
    public init(format: DiskFormat, virtualSize: Int64) {
        self.format = format
        self.virtualSize = virtualSize
    }
}

/// Names an image's format from its first bytes and refuses unsafe qcow2 (Glance's
/// format inspector). Raw is the fallback for bytes nothing else claims: QEMU is always
/// told the format explicitly, so raw bytes are never interpreted as anything else.
public enum FormatSniffer {
    /// How many leading bytes `detect(path:)` reads: enough for the ISO 9660 volume
    /// descriptor at 0x8001 and a qcow2 header with its backing file name.
    public static let headerLength = 64 * 1024

    /// Sniffs the file at `path`. Throws `EINVAL` when the image is unsafe or broken (see
    /// `detect(header:fileSize:)`), `ENOENT` when it is missing, `EIO` when unreadable.
    public static func detect(path: String) throws(CloudError) -> DetectedImage {
        let fd = try SystemCall.openReadOnly(path)
        defer { SystemCall.close(fd) }
        return try detect(fd: fd, fileSize: SystemCall.fileSize(fd))
    }

    /// Sniffs an open file of `fileSize` bytes (used by `ImageIngest.finish`).
    static func detect(fd: Int32, fileSize: Int64) throws(CloudError) -> DetectedImage {
        let want = Int(min(Int64(headerLength), max(fileSize, 0)))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: want, alignment: 16)
        defer { buffer.deallocate() }
        let got = try SystemCall.preadFull(fd, buffer, at: 0)
        return try detect(header: Array(buffer[0..<got]), fileSize: fileSize)
    }

    /// Sniffs `header` (the first bytes of a file of `fileSize` bytes; at least
    /// `headerLength` of them when the file is that long). Pure, for unit tests.
    /// Throws `EINVAL` for: an empty file; qcow2 with a backing file, an external data
    /// file, encryption, the corrupt bit, unknown incompatible features, an unknown
    /// version, a bad cluster_bits or header_length, or a truncated header.
    public static func detect(header: [UInt8], fileSize: Int64) throws(CloudError) -> DetectedImage {
        guard fileSize > 0, !header.isEmpty else { throw .invalid("image is empty") }
        if header.starts(with: [0x51, 0x46, 0x49, 0xfb]) {
            let qcow2 = try Qcow2Header(header)
            try qcow2.checkSafe(fileSize: fileSize, headerBytes: header)
            return DetectedImage(format: .qcow2, virtualSize: Int64(qcow2.size))
        }
        if isISO(header) { return DetectedImage(format: .iso, virtualSize: fileSize) }
        if isKernel(header) { return DetectedImage(format: .aki, virtualSize: fileSize) }
        if isInitramfs(header) { return DetectedImage(format: .ari, virtualSize: fileSize) }
        return DetectedImage(format: .raw, virtualSize: fileSize)
    }

    /// ISO 9660: a volume descriptor with the standard identifier `CD001` at 0x8001
    /// (also true of hybrid ISOs, which carry an MBR at 0).
    static func isISO(_ h: [UInt8]) -> Bool {
        matches(h, at: 0x8001, Array("CD001".utf8))
    }

    /// A Linux kernel QEMU can boot directly: an x86 bzImage (setup header magic `HdrS`
    /// at 0x202) or an arm64/riscv `Image` (magic `ARM\x64` at 0x38, `RSC\x05` at 0x34).
    static func isKernel(_ h: [UInt8]) -> Bool {
        matches(h, at: 0x202, Array("HdrS".utf8))
            || matches(h, at: 0x38, [0x41, 0x52, 0x4d, 0x64])
            || matches(h, at: 0x34, [0x52, 0x53, 0x43, 0x05])
    }

    /// An initramfs: a cpio archive (newc `070701`, newc with CRC `070702`, odc `070707`)
    /// or one compressed the ways the kernel can unpack (gzip, xz, zstd, lz4, bzip2, lzma).
    static func isInitramfs(_ h: [UInt8]) -> Bool {
        let magics: [[UInt8]] = [
            Array("070701".utf8), Array("070702".utf8), Array("070707".utf8),
            [0x1f, 0x8b, 0x08],                   // gzip, deflate
            [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], // xz
            [0x28, 0xb5, 0x2f, 0xfd],             // zstd
            [0x02, 0x21, 0x4c, 0x18],             // lz4 legacy (the kernel's)
            [0x04, 0x22, 0x4d, 0x18],             // lz4 frame
            [0x5d, 0x00, 0x00],                   // lzma (alone)
        ]
        if magics.contains(where: { matches(h, at: 0, $0) }) { return true }
        // bzip2: "BZh" then the block size digit 1-9.
        return matches(h, at: 0, Array("BZh".utf8)) && h.count > 3 && (0x31...0x39).contains(h[3])
    }

    static func matches(_ h: [UInt8], at offset: Int, _ magic: [UInt8]) -> Bool {
        guard h.count >= offset + magic.count else { return false }
        return h[offset..<(offset + magic.count)].elementsEqual(magic)
    }
}
