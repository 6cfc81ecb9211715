import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Glance behaviour through the engine: queued → saving → active, refusals leave nothing.
final class ImageTests: EngineTestCase {
    func qcow2Header(backing: Bool) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { h[at + i] = UInt8(v >> (24 - 8 * i) & 0xff) } }
        func put64(_ v: UInt64, _ at: Int) { for i in 0..<8 { h[at + i] = UInt8(v >> (56 - 8 * i) & 0xff) } }
        put32(0x5146_49fb, 0); put32(2, 4)
        if backing { put64(200, 8); put32(8, 16); h.replaceSubrange(200..<208, with: Array("/etc/pwd".utf8)) }
        put32(16, 20); put64(1 << 30, 24)
        return h
    }

    func testUploadBecomesActiveWithChecksumAndFormat() throws {
        let img = try upload("disk", rawDisk())
        XCTAssertEqual(img.status, .active)
        XCTAssertEqual(img.format, .raw)
        XCTAssertEqual(img.size, 1 << 20)
        // sha256 of 1 MiB of zeros
        XCTAssertEqual(img.checksum, "30e14955ebf1352266dc2ff8067e68104607e750abb9d3b36582b8af909fcb58")
        XCTAssertEqual(imageFiles(), [img.id])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("image.active disk") && $0.contains("format=raw") })
    }

    func testBackingFileIsRefusedAndLeavesNothing() throws {
        let up = try engine.images.beginUpload("evil", root)
        let bytes = qcow2Header(backing: true)
        try bytes.withUnsafeBytes { try up.write($0, at: 0) }
        XCTAssertThrowsError(try up.commit()) { e in
            XCTAssertEqual((e as? CloudError)?.errno, .invalid)
            XCTAssertTrue((e as? CloudError)?.reason.contains("backing") ?? false, "\(e)")
        }
        XCTAssertNil(engine.images.get("evil", .system))
        XCTAssertEqual(imageFiles(), [])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("image.refused evil") && $0.contains("EINVAL") })
    }

    func testAbortedUploadLeavesNoBytesOrRow() throws {
        let up = try engine.images.beginUpload("half", root)
        XCTAssertEqual(engine.images.get("half", .system)?.status, .queued)
        try rawDisk(4096).withUnsafeBytes { try up.write($0, at: 0) }
        XCTAssertEqual(engine.images.get("half", .system)?.status, .saving)
        up.abort(reason: "writer killed by signal 9")
        XCTAssertNil(engine.images.get("half", .system))
        XCTAssertEqual(imageFiles(), [])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("image.killed half") && $0.contains("signal 9") })
    }

    func testUnfinishedUploadIsPurgedOnRestart() throws {
        let up = try engine.images.beginUpload("crashy", root)
        try rawDisk(4096).withUnsafeBytes { try up.write($0, at: 0) }
        // Simulate a crash: a new engine on the same state, the old one never finishes.
        let second = try makeEngine()
        XCTAssertNil(second.images.get("crashy", .system))
        XCTAssertEqual(imageFiles(), [])
        _ = up
    }

    func testDeleteRenameAndInUse() throws {
        try upload("disk", rawDisk())
        try engine.images.rename("disk", to: "disk2", root)
        XCTAssertNil(engine.images.get("disk", .system))
        XCTAssertEqual(engine.images.get("disk2", .system)?.status, .active)
        assertErrno(.exists) { _ = try self.engine.images.beginUpload("disk2", self.root) }
        _ = try engine.instances.create("user", root)
        _ = waitStable("user")
        assertErrno(.busy) { try self.engine.images.delete("disk2", self.root) }
        let reader = try register("alice", .reader)
        assertErrno(.accessDenied) { try self.engine.images.delete("disk2", reader) }   // reader: sees, cannot delete
        assertErrno(.noEntry) { try self.engine.images.delete("disk2", try self.register("dave", in: "other")) }   // private to default
        try engine.instances.delete("user", root)
        waitGone("user")
        try engine.images.delete("disk2", root)
        XCTAssertEqual(imageFiles(), [])
    }

    func testKernelPropertiesMakeADirectKernelBootDomain() throws {
        let kernel = try upload("vmlinuz", rawDisk(4096))
        try upload("disk", rawDisk())
        assertErrno(.noEntry) { try self.engine.images.setProperty("disk", key: "kernel", value: "missing", self.root) }
        try engine.images.setProperty("disk", key: "kernel", value: "vmlinuz", root)
        try engine.images.setProperty("disk", key: "cmdline", value: "console=ttyS0 quiet", root)
        XCTAssertEqual(engine.images.get("disk", .system)?.properties, ["kernel": "vmlinuz", "cmdline": "console=ttyS0 quiet"])
        try engine.settings.setDefault(.image, "disk", root)
        _ = try engine.instances.create("kb", root)
        let info = try XCTUnwrap(waitStable("kb"))
        XCTAssertEqual(info.status, .ACTIVE, info.fault)
        XCTAssertTrue(info.domainXML.contains(kernel.path), info.domainXML)
        XCTAssertTrue(info.domainXML.contains("cloudfs.ip=10.0.0.2/16"), info.domainXML)
        assertErrno(.busy) { try self.engine.images.delete("vmlinuz", self.root) }
    }
}
