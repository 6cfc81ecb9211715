import CloudCore
import ImageStore
import XCTest

/// Pure tests of `FormatSniffer.detect(header:fileSize:)` with hand-built headers.
final class FormatSnifferTests: XCTestCase {
    /// A qcow2 header as QEMU writes it (big endian); v3 headers are `headerLength` long.
    func qcow2(version: UInt32 = 3, backingOffset: UInt64 = 0, backingName: String = "",
               clusterBits: UInt32 = 16, size: UInt64 = 1 << 30, crypt: UInt32 = 0,
               incompatible: UInt64 = 0, headerLength: UInt32 = 104) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: version == 2 ? 72 : Int(max(headerLength, 104)))
        func put(_ value: UInt64, at offset: Int, bytes: Int) {
            for i in 0..<bytes { h[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(bytes - 1 - i))) }
        }
        put(0x5146_49fb, at: 0, bytes: 4)
        put(UInt64(version), at: 4, bytes: 4)
        put(backingOffset, at: 8, bytes: 8)
        put(UInt64(backingName.utf8.count), at: 16, bytes: 4)
        put(UInt64(clusterBits), at: 20, bytes: 4)
        put(size, at: 24, bytes: 8)
        put(UInt64(crypt), at: 32, bytes: 4)
        if version != 2 {
            put(incompatible, at: 72, bytes: 8)
            put(UInt64(headerLength), at: 100, bytes: 4)
        }
        if backingOffset != 0 {
            h += [UInt8](repeating: 0, count: Int(backingOffset) - h.count) + Array(backingName.utf8)
        }
        return h
    }

    func detect(_ header: [UInt8], fileSize: Int64? = nil) throws -> DetectedImage {
        try FormatSniffer.detect(header: header, fileSize: fileSize ?? 1 << 20)
    }

    func refusal(_ header: [UInt8], fileSize: Int64 = 1 << 20) -> String {
        assertRefused(.invalid) { () throws(CloudError) in
            _ = try FormatSniffer.detect(header: header, fileSize: fileSize)
        }
    }

    func testQcow2Version2() throws {
        XCTAssertEqual(try detect(qcow2(version: 2, size: 5 << 20)), DetectedImage(format: .qcow2, virtualSize: 5 << 20))
    }

    func testQcow2Version3() throws {
        XCTAssertEqual(try detect(qcow2(size: 1 << 30)), DetectedImage(format: .qcow2, virtualSize: 1 << 30))
        XCTAssertEqual(try detect(qcow2(size: 7, headerLength: 112)).virtualSize, 7)
    }

    func testQcow2KnownHarmlessFeaturesAreAccepted() throws {
        for bit in [Qcow2Header.dirtyBit, Qcow2Header.compressionTypeBit, Qcow2Header.extendedL2Bit] {
            XCTAssertEqual(try detect(qcow2(incompatible: bit)).format, .qcow2)
        }
    }

    func testQcow2WithBackingFileIsRefused() {
        let reason = refusal(qcow2(backingOffset: 512, backingName: "/etc/shadow"))
        XCTAssertTrue(reason.contains("backing"), reason)
        XCTAssertTrue(reason.contains("/etc/shadow"), reason)
        // Refused even when the name lies beyond the bytes read.
        XCTAssertTrue(refusal(qcow2(version: 2, backingOffset: 1 << 20)).contains("backing"))
    }

    func testQcow2WithExternalDataFileIsRefused() {
        let reason = refusal(qcow2(incompatible: Qcow2Header.externalDataFileBit))
        XCTAssertTrue(reason.contains("external data file"), reason)
    }

    func testQcow2MarkedCorruptIsRefused() {
        XCTAssertTrue(refusal(qcow2(incompatible: Qcow2Header.corruptBit)).contains("corrupt"))
    }

    func testQcow2WithUnknownIncompatibleFeatureIsRefused() {
        XCTAssertTrue(refusal(qcow2(incompatible: 1 << 5)).contains("unknown incompatible features 0x20"))
        XCTAssertTrue(refusal(qcow2(incompatible: 1 << 63)).contains("unknown"))
    }

    func testEncryptedQcow2IsRefused() {
        for method: UInt32 in [1, 2] {
            XCTAssertTrue(refusal(qcow2(crypt: method)).contains("encrypted"))
        }
    }

    func testQcow2WithUnknownVersionIsRefused() {
        XCTAssertTrue(refusal(qcow2(version: 1)).contains("version 1"))
        XCTAssertTrue(refusal(qcow2(version: 4)).contains("version 4"))
    }

    func testQcow2WithBadClusterBitsIsRefused() {
        XCTAssertTrue(refusal(qcow2(clusterBits: 8)).contains("cluster_bits"))
        XCTAssertTrue(refusal(qcow2(clusterBits: 22)).contains("cluster_bits"))
        XCTAssertEqual(try detect(qcow2(clusterBits: 9)).format, .qcow2)
        XCTAssertEqual(try detect(qcow2(clusterBits: 21)).format, .qcow2)
    }

    func testQcow2WithBadHeaderLengthIsRefused() {
        XCTAssertTrue(refusal(qcow2(headerLength: 100)).contains("header_length"))
        XCTAssertTrue(refusal(qcow2(headerLength: 108)).contains("header_length"))
    }

    func testTruncatedQcow2IsRefused() {
        XCTAssertTrue(refusal(Array(qcow2(version: 2).prefix(40)), fileSize: 40).contains("truncated"))
        XCTAssertTrue(refusal(Array(qcow2().prefix(90)), fileSize: 90).contains("truncated"))
        XCTAssertTrue(refusal(Array(qcow2().prefix(4)), fileSize: 4).contains("truncated"))
        // The header claims more bytes than the file has.
        XCTAssertTrue(refusal(qcow2(headerLength: 112), fileSize: 108).contains("truncated"))
    }

    func testEmptyFileIsRefused() {
        XCTAssertTrue(refusal([], fileSize: 0).contains("empty"))
    }

    func testISO() throws {
        var h = [UInt8](repeating: 0, count: 0x8800)
        h.replaceSubrange(0x8001..<0x8006, with: Array("CD001".utf8))
        XCTAssertEqual(try detect(h, fileSize: 3 << 20), DetectedImage(format: .iso, virtualSize: 3 << 20))
        // Too short to hold the volume descriptor: nothing claims it.
        XCTAssertEqual(try detect(Array(h.prefix(0x8004))).format, .raw)
    }

    func testLinuxKernel() throws {
        var bz = [UInt8](repeating: 0, count: 4096)
        bz.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8))
        XCTAssertEqual(try detect(bz, fileSize: 9000), DetectedImage(format: .aki, virtualSize: 9000))
        var arm = [UInt8](repeating: 0, count: 4096)
        arm.replaceSubrange(0x38..<0x3c, with: [0x41, 0x52, 0x4d, 0x64])
        XCTAssertEqual(try detect(arm).format, .aki)
    }

    func testInitramfs() throws {
        let magics: [[UInt8]] = [
            Array("070701".utf8), Array("070702".utf8), Array("070707".utf8), [0x1f, 0x8b, 0x08],
            [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00], [0x28, 0xb5, 0x2f, 0xfd], [0x02, 0x21, 0x4c, 0x18],
            [0x04, 0x22, 0x4d, 0x18], Array("BZh9".utf8), [0x5d, 0x00, 0x00, 0x80, 0x00],
        ]
        for magic in magics {
            let h = magic + [UInt8](repeating: 0xaa, count: 600)
            XCTAssertEqual(try detect(h, fileSize: 700), DetectedImage(format: .ari, virtualSize: 700), "\(magic)")
        }
        XCTAssertEqual(try detect(Array("BZhx".utf8) + [0, 0]).format, .raw)
    }

    func testRawIsTheFallback() throws {
        XCTAssertEqual(try detect([UInt8](repeating: 0, count: 65536), fileSize: 1 << 30),
                       DetectedImage(format: .raw, virtualSize: 1 << 30))
        XCTAssertEqual(try detect(pseudoRandomBytes(4096)).format, .raw)
        XCTAssertEqual(try detect([0x51, 0x46, 0x49, 0xfa] + [UInt8](repeating: 0, count: 100)).format, .raw)
        XCTAssertEqual(try detect([7], fileSize: 1), DetectedImage(format: .raw, virtualSize: 1))
    }
}
