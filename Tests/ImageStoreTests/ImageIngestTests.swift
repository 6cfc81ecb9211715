import CloudCore
import Foundation
import ImageStore
import XCTest

/// `ImageIngest`: the checksum must equal `sha256sum` of the stored file for every write
/// pattern `cp` and FUSE produce.
final class ImageIngestTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try makeTempDir()
    }

    /// Finishes and checks the checksum and size against the file on disk.
    @discardableResult
    func assertMatchesFile(_ ingest: ImageIngest, file: StaticString = #filePath, line: UInt = #line) throws -> DetectedImage {
        let (sha, detected) = try ingest.finish()
        XCTAssertEqual(sha, try sha256sum(ingest.path), file: file, line: line)
        let onDisk = try FileManager.default.attributesOfItem(atPath: ingest.path)[.size] as? Int64
        XCTAssertEqual(ingest.size, onDisk, file: file, line: line)
        return detected
    }

    func testSequentialWrites() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        let data = pseudoRandomBytes(5 << 20 + 123)
        for start in stride(from: 0, to: data.count, by: 1 << 20) {
            try feed(ingest, Array(data[start..<min(start + (1 << 20), data.count)]), at: Int64(start))
        }
        XCTAssertEqual(try assertMatchesFile(ingest), DetectedImage(format: .raw, virtualSize: Int64(data.count)))
        ingest.close()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/img")), Data(data))
    }

    func testSparseWritesWithGapsAndFinalTruncate() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(4096, seed: 1), at: 0)
        try feed(ingest, pseudoRandomBytes(100, seed: 2), at: 3 << 20)        // a 3 MiB hole
        try feed(ingest, pseudoRandomBytes(70000, seed: 3), at: (5 << 20) + 7) // another, unaligned
        try ingest.truncate(to: 9 << 20)                                       // cp's final ftruncate
        try assertMatchesFile(ingest)
        XCTAssertEqual(ingest.size, 9 << 20)
    }

    func testTruncateOnlyAndTruncateToHashedEnd() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try ingest.truncate(to: 3 << 20)  // a file that is all hole
        try assertMatchesFile(ingest)
        try feed(ingest, pseudoRandomBytes(1000), at: 0)
        try ingest.truncate(to: 1000)     // exactly the hashed end: stays incremental
        try assertMatchesFile(ingest)
    }

    /// The hash follows the writes on its own queue: a long upload, writes racing the
    /// hasher (an overwrite of bytes it may be reading, a hole, an extension by truncate),
    /// and the checksum is still the file's.
    func testTheHasherFollowsTheWritesAndRacesAreCaught() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        let data = pseudoRandomBytes(48 << 20, seed: 3)
        for start in stride(from: 0, to: data.count, by: 1 << 20) {
            try feed(ingest, Array(data[start..<start + (1 << 20)]), at: Int64(start))
        }
        try assertMatchesFile(ingest)
        try feed(ingest, pseudoRandomBytes(4096, seed: 4), at: Int64(data.count) + (1 << 20))   // past a 1 MiB hole
        try feed(ingest, pseudoRandomBytes(4096, seed: 5), at: 20 << 20)                      // an overwrite
        try ingest.truncate(to: Int64(data.count) + (3 << 20))
        try assertMatchesFile(ingest)
        ingest.close()
        // A shrink while the hasher reads a mapped range waits for it (a cut page would be
        // SIGBUS), and the hash goes dirty and is recomputed.
        for round in 1...5 {
            let racing = try ImageIngest(path: "\(dir)/race\(round)")
            for start in stride(from: 0, to: 32 << 20, by: 1 << 20) {
                try feed(racing, Array(data[start..<start + (1 << 20)]), at: Int64(start))
            }
            try racing.truncate(to: Int64(round) << 20)
            try assertMatchesFile(racing)
            racing.discard()
        }
    }

    func testOverwriteMarksDirtyAndIsRecomputed() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(3 << 20), at: 0)
        try feed(ingest, [UInt8](repeating: 0x42, count: 100), at: 10)
        try assertMatchesFile(ingest)
        // After the recompute the hash is incremental again.
        try feed(ingest, pseudoRandomBytes(5000, seed: 9), at: 3 << 20)
        try assertMatchesFile(ingest)
    }

    func testOutOfOrderWrites() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(1 << 20, seed: 2), at: 1 << 20)
        try feed(ingest, pseudoRandomBytes(1 << 20, seed: 1), at: 0)
        try assertMatchesFile(ingest)
    }

    func testShrinkingTruncateMarksDirty() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(3 << 20), at: 0)
        try ingest.truncate(to: (1 << 20) + 5)
        try assertMatchesFile(ingest)
        try ingest.truncate(to: 0)            // cp onto an existing upload (O_TRUNC)
        try feed(ingest, pseudoRandomBytes(777, seed: 4), at: 0)
        try assertMatchesFile(ingest)
    }

    func testFinishThenMoreWritesThenFinishAgain() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(1 << 20, seed: 1), at: 0)
        try ingest.truncate(to: 2 << 20)
        let first = try ingest.finish().sha256
        XCTAssertEqual(first, try sha256sum(ingest.path))
        XCTAssertEqual(try ingest.finish().sha256, first, "finish does not change the state")
        // A write inside the lazily hashed tail, then an append.
        try feed(ingest, pseudoRandomBytes(4096, seed: 2), at: (1 << 20) + 4096)
        try feed(ingest, pseudoRandomBytes(1 << 20, seed: 3), at: 2 << 20)
        let second = try ingest.finish().sha256
        XCTAssertNotEqual(second, first)
        XCTAssertEqual(second, try sha256sum(ingest.path))
    }

    func testConcurrentWritersOfDisjointChunks() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        let chunks = (0..<16).map { pseudoRandomBytes(256 << 10, seed: UInt64($0 + 1)) }
        DispatchQueue.concurrentPerform(iterations: chunks.count) { i in
            do {
                try feed(ingest, chunks[i], at: Int64(i) * (256 << 10))
            } catch {
                XCTFail("\(error)")
            }
        }
        try assertMatchesFile(ingest)
        XCTAssertEqual(ingest.size, 4 << 20)
    }

    func testQcow2UploadIsInspected() throws {
        try requireQemuImg()
        try tool("qemu-img", ["create", "-q", "-f", "qcow2", "\(dir)/src.qcow2", "40M"])
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/src.qcow2"))), at: 0)
        XCTAssertEqual(try assertMatchesFile(ingest), DetectedImage(format: .qcow2, virtualSize: 40 << 20))
    }

    func testRefusedUploadThrowsTheSnifferReason() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        XCTAssertTrue(assertRefused(.invalid) { () throws(CloudError) in _ = try ingest.finish() }.contains("empty"))
        var header = [UInt8](repeating: 0, count: 512)
        header.replaceSubrange(0..<8, with: [0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 9])
        try feed(ingest, header, at: 0)
        XCTAssertTrue(assertRefused(.invalid) { () throws(CloudError) in _ = try ingest.finish() }.contains("version 9"))
    }

    func testDiscardLeavesNoFileAndIsIdempotent() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(1000), at: 0)
        ingest.discard()
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/img"))
        ingest.discard()
        assertRefused(.badFile) { () throws(CloudError) in _ = try ingest.finish() }
        // A new upload may take the name again; discarding the old one does not touch it.
        let again = try ImageIngest(path: "\(dir)/img")
        ingest.discard()
        XCTAssertTrue(FileManager.default.fileExists(atPath: again.path))
    }

    func testCloseKeepsTheFileAndRefusesMoreWrites() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        try feed(ingest, pseudoRandomBytes(1000), at: 0)
        try ingest.sync()
        ingest.close()
        ingest.close()
        assertRefused(.badFile) { () throws(CloudError) in try ingest.sync() }
        XCTAssertEqual(try sha256sum("\(dir)/img").count, 64)
        assertRefused(.badFile) { () throws(CloudError) in
            try feed(ingest, [1, 2, 3], at: 0)
        }
        assertRefused(.badFile) { () throws(CloudError) in try ingest.truncate(to: 0) }
    }

    func testCreateIsExclusive() throws {
        let first = try ImageIngest(path: "\(dir)/img")
        assertRefused(.exists) { () throws(CloudError) in _ = try ImageIngest(path: "\(dir)/img") }
        assertRefused(.io) { () throws(CloudError) in _ = try ImageIngest(path: "\(dir)/no/such/img") }
        first.discard()
    }

    func testBadArguments() throws {
        let ingest = try ImageIngest(path: "\(dir)/img")
        assertRefused(.invalid) { () throws(CloudError) in
            try feed(ingest, [1, 2, 3], at: -1)
        }
        assertRefused(.invalid) { () throws(CloudError) in try ingest.truncate(to: -5) }
        try feed(ingest, [], at: 1 << 30)  // an empty write changes nothing
        XCTAssertEqual(ingest.size, 0)
    }
}

/// Writes `bytes` through an unsafe buffer, as FUSE hands them over.
func feed(_ ingest: ImageIngest, _ bytes: [UInt8], at offset: Int64) throws(CloudError) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    try ingest.write(UnsafeRawBufferPointer(buffer), at: offset)
}
