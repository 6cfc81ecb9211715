import CloudCore
import Foundation
import ImageStore
import XCTest

/// `Overlay.create` checked with `qemu-img info`.
final class OverlayTests: XCTestCase {
    func overlay(_ path: String, backing: String, format: DiskFormat, size: Int64?) throws {
        try Overlay.create(path: path, backing: backing, backingFormat: format, sizeBytes: size)
    }

    func testOverlayOverQcow2GrowsToTheRequestedSize() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", "\(dir)/base.qcow2", "64M"])
        try overlay("\(dir)/disk", backing: "\(dir)/base.qcow2", format: .qcow2, size: 128 << 20)
        let info = try qemuImgInfo("\(dir)/disk")
        XCTAssertEqual(info["format"] as? String, "qcow2")
        XCTAssertEqual(info["backing-filename"] as? String, "\(dir)/base.qcow2")
        XCTAssertEqual(info["backing-filename-format"] as? String, "qcow2")
        XCTAssertEqual((info["virtual-size"] as? NSNumber)?.int64Value, 128 << 20)
    }

    func testOverlayIsNeverSmallerThanItsBacking() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", "\(dir)/base.qcow2", "64M"])
        try overlay("\(dir)/small", backing: "\(dir)/base.qcow2", format: .qcow2, size: 16 << 20)
        try overlay("\(dir)/nosize", backing: "\(dir)/base.qcow2", format: .qcow2, size: nil)
        for name in ["small", "nosize"] {
            XCTAssertEqual((try qemuImgInfo("\(dir)/\(name)")["virtual-size"] as? NSNumber)?.int64Value, 64 << 20, name)
        }
    }

    func testOverlayOverRaw() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("truncate", ["-s", "10M", "\(dir)/base.raw"])
        try overlay("\(dir)/disk", backing: "\(dir)/base.raw", format: .raw, size: 20 << 20)
        let info = try qemuImgInfo("\(dir)/disk")
        XCTAssertEqual(info["backing-filename-format"] as? String, "raw")
        XCTAssertEqual((info["virtual-size"] as? NSNumber)?.int64Value, 20 << 20)
        try overlay("\(dir)/same", backing: "\(dir)/base.raw", format: .raw, size: nil)
        XCTAssertEqual((try qemuImgInfo("\(dir)/same")["virtual-size"] as? NSNumber)?.int64Value, 10 << 20)
    }

    func testMissingBackingFileFailsAndLeavesNoFile() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        for size: Int64? in [nil, 1 << 30] {
            let reason = assertRefused(.io) { () throws(CloudError) in
                try Overlay.create(path: "\(dir)/disk", backing: "\(dir)/missing", backingFormat: .qcow2, sizeBytes: size)
            }
            XCTAssertTrue(reason.contains("\(dir)/missing"), reason)
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/disk"))
        }
    }

    func testOverlayIsAValidQcow2ThatQemuCanWriteThrough() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", "\(dir)/base.qcow2", "64M"])
        for size: Int64 in [128 << 20, 160 << 30] {   // one L1 entry, and 320 of them
            try overlay("\(dir)/disk", backing: "\(dir)/base.qcow2", format: .qcow2, size: size)
            try tool("qemu-img", ["check", "-q", "\(dir)/disk"])
            try tool("qemu-io", ["-c", "write -P 0x5a 0 128k", "-c", "write -P 0x33 100M 64k", "\(dir)/disk"])
            let read = try tool("qemu-io", ["-c", "read -P 0x5a 0 128k", "-c", "read -P 0x33 100M 64k", "\(dir)/disk"])
            XCTAssertFalse(read.lowercased().contains("fail"), read)
            try tool("qemu-img", ["check", "-q", "\(dir)/disk"])   // refcounts still consistent after allocation
            XCTAssertEqual((try qemuImgInfo("\(dir)/disk")["virtual-size"] as? NSNumber)?.int64Value, size)
        }
    }

    func testWriteFailureCarriesItsReasonAndLeavesNoFile() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("truncate", ["-s", "1M", "\(dir)/base.raw"])
        // The backing is fine; writing the overlay fails (no directory for it).
        try tool("mkdir", ["\(dir)/sub"])
        let reason = assertRefused(.io) { () throws(CloudError) in
            try Overlay.create(path: "\(dir)/sub/no/such/dir/disk", backing: "\(dir)/base.raw", backingFormat: .raw, sizeBytes: nil)
        }
        XCTAssertTrue(reason.contains("cannot write overlay \(dir)/sub/no/such/dir/disk"), reason)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/sub"), [])
    }

    func testUnsafeOrUnsupportedBackingIsRefused() throws {
        try requireQemuImg()
        let dir = try makeTempDir()
        try tool("truncate", ["-s", "1M", "\(dir)/base.raw"])
        assertRefused(.invalid) { () throws(CloudError) in
            try Overlay.create(path: "\(dir)/disk", backing: "\(dir)/base.raw", backingFormat: .iso, sizeBytes: nil)
        }
        // A raw file declared as qcow2 is not chained to.
        assertRefused(.io) { () throws(CloudError) in
            try Overlay.create(path: "\(dir)/disk", backing: "\(dir)/base.raw", backingFormat: .qcow2, sizeBytes: nil)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/disk"))
    }
}
