import CloudTesting
import Foundation
import FuseKit
import XCTest

/// Result of one shell command.
struct Shell {
    var status: Int32
    var out: String
    var err: String
}

/// Runs `/bin/bash -c script`, with a timeout.
@discardableResult
func sh(_ script: String, timeout: TimeInterval = 120) -> Shell {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")   // dash reports every write error as EIO
    p.arguments = ["-c", script]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return Shell(status: -1, out: "", err: "\(error)") }
    final class Box: @unchecked Sendable { var data = Data() }
    let o = Box(), e = Box()
    let g = DispatchGroup()
    g.enter(); DispatchQueue.global().async { o.data = out.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    g.enter(); DispatchQueue.global().async { e.data = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
    if g.wait(timeout: .now() + timeout) == .timedOut { p.terminate() }
    p.waitUntilExit()
    return Shell(status: p.terminationStatus, out: String(decoding: o.data, as: UTF8.self),
                 err: String(decoding: e.data, as: UTF8.self))
}

/// A real cloudfs mount in a temporary directory, started the way a user starts it
/// (`cloudfs mount`, which returns once the tree is ready) and always unmounted.
class MountTestCase: XCTestCase {
    var work = ""
    var mnt = ""
    var state = ""
    var hostArgs: [String] { ["--host", "test:///default"] }
    /// Environment for the daemon the test mounts (e.g. `CLOUDFS_DELAY_AT=...`).
    var mountEnv: String { "" }

    var cloudfs: String {
        let dir = ProcessInfo.processInfo.environment["CLOUDFS_BIN_DIR"]
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for candidate in [dir + "/cloudfs", TestPaths.packageRoot + "/.build/debug/cloudfs"]
        where FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        return dir + "/cloudfs"
    }

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { throw XCTSkip("no /dev/fuse") }
        work = TestPaths.makeTempDir("cloudfs-mount")
        mnt = work + "/cloud"
        state = work + "/state"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try mount(env: mountEnv)
    }

    /// Runs `cloudfs mount`; `env` is prepended to the command (e.g. `CLOUDFS_CRASH_AT=x`).
    func mount(extra: [String] = [], env: String = "") throws {
        let args = ([cloudfs, "mount", mnt, "--state", state] + hostArgs + extra).map { "'\($0)'" }.joined(separator: " ")
        let r = sh(env + " " + args, timeout: 120)
        guard r.status == 0 else {
            throw NSError(domain: "mount", code: Int(r.status),
                          userInfo: [NSLocalizedDescriptionKey: "cloudfs mount failed: \(r.out) \(r.err)"])
        }
    }

    func unmount() {
        let r = sh("'\(cloudfs)' unmount '\(mnt)'", timeout: 60)
        if r.status != 0 { sh("fusermount3 -uz '\(mnt)' || umount -l '\(mnt)'") }
    }

    override func tearDown() {
        if !mnt.isEmpty {
            // Destroy what the test created, then unmount, even after a failure.
            sh("for i in '\(mnt)'/instances/*; do [ -d \"$i\" ] && rmdir \"$i\"; done; " +
               "for _ in $(seq 1 300); do [ -z \"$(ls '\(mnt)'/instances 2>/dev/null)\" ] && break; sleep 0.1; done", timeout: 60)
            unmount()
            XCTAssertFalse(isMounted(), "\(mnt) is still mounted")
            killProcesses(using: work)
            try? FileManager.default.removeItem(atPath: work)
        }
    }

    /// Stops what still runs from the test's directory once it is unmounted: a network's
    /// dnsmasq (host networking outlives a mount by design), and guests of the embedded
    /// QEMU driver left by a daemon that a crash point killed when the test failed before
    /// a mount could delete them. SIGTERM, then SIGKILL for what is left.
    func killProcesses(using dir: String) {
        let me = getpid()
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter { pid in
            guard pid != me, let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: raw, as: UTF8.self).contains(dir + "/")
        }
        guard !pids.isEmpty else { return }
        for pid in pids { kill(pid, SIGTERM) }
        usleep(200_000)
        for pid in pids where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    /// Waits up to `seconds` for the daemon to die (a crash point killed it): true once
    /// the kernel ended its FUSE connection.
    func daemonDied(within seconds: Double = 60) -> Bool {
        for _ in 0..<Int(seconds * 20) {
            if connectionEnded() { return true }
            usleep(50_000)
        }
        return false
    }

    /// True once the kernel ended the mount's FUSE connection.
    func connectionEnded() -> Bool { FuseConnection.ended(at: mnt) }

    func isMounted() -> Bool {
        ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").contains(" \(mnt) ")
    }

    /// Runs a shell command inside the mount directory and fails the test on a non-zero exit.
    @discardableResult
    func ok(_ script: String, timeout: TimeInterval = 120, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = sh("cd '\(mnt)' && \(script)", timeout: timeout)
        XCTAssertEqual(r.status, 0, "`\(script)` failed: \(r.err) \(r.out)", file: file, line: line)
        return r.out
    }

    /// Runs a command that must fail, and returns its stderr (which names the errno).
    @discardableResult
    func fails(_ script: String, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = sh("cd '\(mnt)' && \(script)")
        XCTAssertNotEqual(r.status, 0, "`\(script)` should have failed: \(r.out)", file: file, line: line)
        return r.err
    }

    func read(_ rel: String) -> String {
        ((try? String(contentsOfFile: mnt + "/" + rel, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A 1 MiB raw image as `images/disk` and m1.nano as the default flavor: enough for a
    /// plain `mkdir instances/NAME` on test:/// hosts.
    func addDiskImage(file: StaticString = #filePath, line: UInt = #line) {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor", file: file, line: line)
    }

    /// A raw disk image file in the work directory.
    func makeFile(_ name: String, mib: Int) -> String {
        let path = work + "/" + name
        sh("head -c \(mib)M /dev/urandom > '\(path)'")
        return path
    }

    func storedImageFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: state + "/images")) ?? []
    }
}
