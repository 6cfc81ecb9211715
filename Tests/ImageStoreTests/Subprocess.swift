import CloudCore
import Foundation

/// Test helper: runs a reference tool (`qemu-img`, `qemu-io`, `sha256sum`) to completion,
/// capturing its stdout and stderr so a failure carries the tool's own message. (It left the
/// ImageStore module when overlays stopped being made with `qemu-img create`.)
public enum Subprocess {
    /// What a finished program left behind.
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// True when the program exited with status 0.
        public var succeeded: Bool { status == 0 }
    }

    /// The first executable named `name` on `PATH` (or the standard system directories).
    public static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin"]
        return dirs.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `executable` (a name looked up on `PATH`, or a path) with `arguments`, waits for
    /// it, and returns its status and output. Throws `EIO` only when it cannot be started.
    public static func run(_ executable: String, _ arguments: [String]) throws(CloudError) -> Result {
        guard let resolved = executable.contains("/") ? executable : which(executable) else {
            throw CloudError(.io, "\(executable) not found on PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: resolved)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw CloudError(.io, "cannot run \(resolved): \(error)")
        }
        // Drain stdout on another thread while this one drains stderr: a full pipe would
        // otherwise block the child forever.
        let stdoutBox = OutputBox()
        let done = DispatchSemaphore(value: 0)
        let outHandle = out.fileHandleForReading
        DispatchQueue.global().async {
            stdoutBox.data = outHandle.readDataToEndOfFile()
            done.signal()
        }
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        done.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: stdoutBox.data, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// Output read on one thread and handed over through a semaphore (which orders the accesses).
private final class OutputBox: @unchecked Sendable {
    var data = Data()
}
