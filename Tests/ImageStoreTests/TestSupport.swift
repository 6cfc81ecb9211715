import CloudCore
import Foundation
import ImageStore
import XCTest

/// Shared helpers: a temporary directory per test, reference checksums from `sha256sum`,
/// and `qemu-img` (tests that need it are skipped when it is not installed).
extension XCTestCase {
    /// A fresh directory removed when the test ends.
    func makeTempDir() throws -> String {
        var template = Array("/tmp/imagestore-test.XXXXXX".utf8CString)
        let dir = try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) })
        let path = String(cString: dir)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Runs a tool and fails the test unless it exits 0; returns its stdout.
    @discardableResult
    func tool(_ name: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try Subprocess.run(name, arguments)
        XCTAssertEqual(result.status, 0, "\(name) \(arguments): \(result.stderr)", file: file, line: line)
        return result.stdout
    }

    /// The reference checksum of a file, from coreutils.
    func sha256sum(_ path: String) throws -> String {
        String(try tool("sha256sum", [path]).prefix(64))
    }

    /// `qemu-img`, or skips the test.
    func requireQemuImg() throws {
        try XCTSkipIf(Subprocess.which("qemu-img") == nil, "qemu-img is not installed")
    }

    /// `qemu-img info --output=json` as a dictionary.
    func qemuImgInfo(_ path: String) throws -> [String: Any] {
        let json = try tool("qemu-img", ["info", "--output=json", path])
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    /// Asserts that `body` throws a `CloudError` with `errno`, and returns its reason.
    @discardableResult
    func assertRefused(_ errno: Errno, file: StaticString = #filePath, line: UInt = #line,
                       _ body: () throws(CloudError) -> Void) -> String {
        do {
            try body()
            XCTFail("expected \(errno.name), nothing was thrown", file: file, line: line)
        } catch {
            XCTAssertEqual(error.errno, errno, error.reason, file: file, line: line)
            return error.reason
        }
        return ""
    }
}

/// Deterministic pseudo-random bytes (xorshift, eight bytes per step), so failures reproduce.
func pseudoRandomBytes(_ count: Int, seed: UInt64 = 0x9e37_79b9_7f4a_7c15) -> [UInt8] {
    var x = seed
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { raw in
        var i = 0
        while i < count {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            withUnsafeBytes(of: x) { word in
                for j in 0..<min(8, count - i) { raw[i + j] = word[j] }
            }
            i += 8
        }
    }
    return bytes
}
