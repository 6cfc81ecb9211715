import CloudCore
import CloudTesting
import Foundation
import ISOImage
import Synchronization
import XCTest

/// ISO images (Nova's config drive) written by libisofs. Config drives are written on
/// several task-worker threads at once: libisofs must never see two writers (it crashed
/// once in 6,654 concurrent builds before `ISOImage` took a lock).
final class ISOImageTests: XCTestCase {
    func testManyThreadsWriteWholeImages() throws {
        let dir = TestPaths.makeTempDir("iso")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files: [(path: String, bytes: [UInt8])] = (0..<7).map { i in
            (path: "openstack/latest/doc\(i).json", bytes: Array(String(repeating: "{\"n\":\(i)}", count: 40 + i).utf8))
        }
        let threads = 4, each = 150
        let failures = Mutex([String]())
        let sizes = Mutex(Set<Int>())
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<each {
                let path = "\(dir)/\(t)-\(i).iso"
                do throws(CloudError) {
                    try ISOImage.write(files, volume: "config-2", publisher: "test", to: path)
                    let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                    sizes.withLock { _ = $0.insert(size) }
                } catch {
                    failures.withLock { $0.append(error.reason) }
                }
                unlink(path)
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertEqual(sizes.withLock { $0 }.count, 1, "every image is the same size")
        XCTAssertGreaterThan(sizes.withLock { $0 }.first ?? 0, 32 * 1024)
    }

    /// The image is read from libisofs in pieces of up to 1 MiB: a file bigger than one
    /// piece and the small ones beside it come back byte for byte (isoinfo, Joliet names).
    func testAnImageBiggerThanOneReadComesBackWhole() throws {
        let dir = TestPaths.makeTempDir("iso-big")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var big = [UInt8](repeating: 0, count: 1_500_000)
        for i in big.indices { big[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 11) }
        let files: [(path: String, bytes: [UInt8])] = [
            (path: "openstack/latest/user_data", bytes: big),
            (path: "openstack/latest/meta_data.json", bytes: Array(#"{"uuid":"x"}"#.utf8)),
            (path: "ec2/latest/meta-data.json", bytes: []),
        ]
        let iso = dir + "/big.iso"
        try ISOImage.write(files, volume: "config-2", publisher: "test", to: iso)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: iso)[.size] as? Int)
        XCTAssertEqual(size % 2048, 0, "whole 2 KiB blocks")
        XCTAssertGreaterThan(size, big.count)
        for f in files {
            let out = dir + "/out"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "isoinfo -J -x '/\(f.path)' -i '\(iso)' > '\(out)'"]
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            let back = try XCTUnwrap(FileManager.default.contents(atPath: out))
            XCTAssertEqual(back.count, f.bytes.count, f.path)
            XCTAssertTrue(Array(back) == f.bytes, "\(f.path) differs")
        }
    }
}
