import CloudCore
import Foundation
import XCTest

/// Shared helpers for the LibvirtCompute tests.
enum Fixture {
    /// A fresh lowercase uuid.
    static func uuid() -> String { UUID().uuidString.lowercased() }

    /// A spec for a small domain; paths default to places that need not exist (test driver).
    static func spec(uuid: String = Fixture.uuid(), ramMB: Int = 128, diskPath: String = "/var/lib/cloudfs/disk.qcow2",
                     consolePath: String = "/var/lib/cloudfs/console.log", mac: String? = "fa:16:3e:00:00:01",
                     kernelPath: String? = nil, initrdPath: String? = nil, cmdline: String? = nil) -> DomainSpec {
        DomainSpec(domainName: "cloudfs-\(uuid)", uuid: uuid, vcpus: 1, ramMB: ramMB, diskPath: diskPath,
                   kernelPath: kernelPath, initrdPath: initrdPath, cmdline: cmdline, mac: mac, consolePath: consolePath)
    }

    /// Milliseconds since `start`.
    static func ms(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    /// Runs a program, returning its exit status and combined output.
    @discardableResult
    static func run(_ path: String, _ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The first executable named `name` on PATH (plus /usr/bin, /usr/sbin), if any.
    static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/usr/sbin"
        return path.split(separator: ":").map { "\($0)/\(name)" }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Asserts that `body` throws a `CloudError` with `errno`; returns it for more checks.
@discardableResult
func assertCloudError<T>(_ errno: Errno, _ body: () throws(CloudError) -> T,
                         file: StaticString = #filePath, line: UInt = #line) -> CloudError? {
    do {
        _ = try body()
        XCTFail("expected \(errno.name), got success", file: file, line: line)
        return nil
    } catch {
        XCTAssertEqual(error.errno, errno, error.reason, file: file, line: line)
        return error
    }
}
