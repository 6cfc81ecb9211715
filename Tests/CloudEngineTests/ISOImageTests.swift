import CloudCore
import CloudTesting
import Foundation
import ISOImage
import Synchronization
import XCTest

/// Config drives are written on several task-worker threads at once: libisofs must never
/// see two writers (it crashed once in 6,654 concurrent builds before `ISOImage` took a lock).
final class ISOImageConcurrencyTests: XCTestCase {
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
}
