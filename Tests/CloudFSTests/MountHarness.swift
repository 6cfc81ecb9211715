import CloudCore
import CloudEngine
import CloudFS
import CloudTesting
import Foundation
import FuseKit
import LibvirtCompute
import XCTest

/// The output of one shell command run against the mount.
struct ShellResult {
    var status: Int32
    var out: String
    var err: String
    var seconds: Double
}

/// `CloudFileSystem` over the real engine on libvirt's `test:///default` host (through a
/// `FaultyDriver` that makes builds and deletes take a moment, and can hold spawns),
/// mounted in a temporary directory, served by `run()` on a background thread of this
/// test process (go-fuse's test habit: mount for real, drive with real processes, always
/// unmount).
final class MountedCloud: @unchecked Sendable {
    let root: String
    let mnt: String
    let state: String
    let engine: Engine
    let driver: FaultyDriver
    let fs: CloudFileSystem
    private let finished = DispatchSemaphore(value: 0)
    private var unmounted = false
    static let admin = Caller(uid: 0, gid: 0, pid: 1)

    /// `maxConcurrentJobs` bounds the task workers (Nova's max_concurrent_builds): with 1,
    /// a held build keeps the next one waiting in `scheduling`.
    init(options: CloudFileSystem.Options = .init(), mountOptions: FuseSession.Options = .init(),
         maxConcurrentJobs: Int = 10) throws {
        root = TestPaths.makeTempDir("cloudfs-fs")
        chmod(root, 0o755)  // other users (allow_other tests) must reach the mount point
        mnt = root + "/mnt"
        state = root + "/state"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        driver = FaultyDriver(wrapping: LibvirtDriver(virtType: .qemu, stateDir: state))
        // Builds and deletes take a moment, so a test sees BUILD and DELETING.
        driver.setDelays(spawn: 0.6, destroy: 0.2)
        engine = try Engine(config: EngineConfiguration(stateDir: state, hostURIs: ["test:///default"],
                                                        maxConcurrentJobs: maxConcurrentJobs), driver: driver)
        try engine.settings.setDefault(.flavor, "m1.nano", Self.admin)
        fs = CloudFileSystem(api: engine, options: options)
        try fs.start(mountpoint: mnt, mountOptions: mountOptions)
        let fs = self.fs, done = finished
        let t = Thread {
            do { try fs.run() } catch { print("run failed: \(error)") }
            done.signal()
        }
        t.name = "fuse-run"
        t.start()
    }

    /// Runs `script` with `/bin/bash -c`, `$MNT` set to the mount point and `$T` to a
    /// scratch directory outside it.
    @discardableResult
    func sh(_ script: String, timeout: Double = 60) -> ShellResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        var env = ProcessInfo.processInfo.environment
        env["MNT"] = mnt
        env["T"] = root
        env["LC_ALL"] = "C"
        p.environment = env
        let outPath = root + "/.out-\(UUID().uuidString)", errPath = outPath + ".err"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outPath); try? FileManager.default.removeItem(atPath: errPath) }
        p.standardOutput = FileHandle(forWritingAtPath: outPath)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        let start = Date()
        do { try p.run() } catch { return ShellResult(status: -1, out: "", err: "\(error)", seconds: 0) }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(2000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        p.waitUntilExit()
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return ShellResult(status: p.terminationStatus, out: out, err: err, seconds: Date().timeIntervalSince(start))
    }

    /// Waits until `condition` holds (checked every 20 ms), up to `timeout` seconds.
    func eventually(_ timeout: Double = 5, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    var isMounted: Bool {
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == mnt }
    }

    /// Registers a small bootable raw image (instances need one), as `cp` would.
    func addImage(_ name: String = "tiny") throws {
        let up = try engine.images.beginUpload(name, Self.admin)
        let bytes = [UInt8](repeating: 0, count: 1 << 20)
        try bytes.withUnsafeBytes { try up.write($0, at: 0) }
        try up.commit()
    }

    /// Creates `count` instances `vm0`… through the engine, many at once, and waits until
    /// every one is stable.
    func seedInstances(count: Int) {
        let engine = self.engine
        DispatchQueue.concurrentPerform(iterations: count) { i in _ = try? engine.instances.create("vm\(i)", Self.admin) }
        _ = eventually(120) { engine.instances.list(Self.admin).allSatisfy(\.isStable) }
    }

    /// Stops the file system and makes sure nothing stays mounted; deletes what the test
    /// made (held builds are released first) and removes the files.
    func unmount() {
        guard !unmounted else { return }
        unmounted = true
        driver.release()
        driver.setDelays(spawn: 0, destroy: 0)
        for i in engine.instances.list(Self.admin) { try? engine.instances.delete(i.name, Self.admin) }
        _ = eventually(30) { self.engine.instances.list(Self.admin).isEmpty }
        engine.drain()
        fs.stop()
        if finished.wait(timeout: .now() + 10) == .timedOut {
            print("run() did not return after stop(); forcing the unmount")
            _ = Self.run("/bin/fusermount3", ["-u", "-z", mnt])
            _ = Self.run("/bin/umount", ["-l", mnt])
            _ = finished.wait(timeout: .now() + 10)
        }
        if isMounted { _ = Self.run("/bin/umount", ["-l", mnt]) }
        try? FileManager.default.removeItem(atPath: root)
    }

    static func run(_ tool: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }
}

/// Base class: a fresh mount per test, always unmounted in tearDown.
class MountTestCase: XCTestCase {
    var cloud: MountedCloud!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.fileExists(atPath: "/dev/fuse"), "no /dev/fuse")
        cloud = try MountedCloud()
    }

    override func tearDown() {
        cloud?.unmount()
        if let c = cloud { XCTAssertFalse(c.isMounted, "mount left behind at \(c.mnt)") }
        cloud = nil
        super.tearDown()
    }

    var mnt: String { cloud.mnt }

    /// Runs a script and fails the test (with its output) when it exits non-zero.
    @discardableResult
    func ok(_ script: String, timeout: Double = 60, file: StaticString = #filePath, line: UInt = #line) -> String {
        let r = cloud.sh(script, timeout: timeout)
        XCTAssertEqual(r.status, 0, "script failed: \(script)\nstdout: \(r.out)\nstderr: \(r.err)", file: file, line: line)
        return r.out
    }

    func events(containing text: String) -> [String] {
        cloud.engine.events.lines.filter { $0.contains(text) }
    }

    /// The engine, as the tests' own caller (root) sees it.
    var engine: Engine { cloud.engine }
    let admin = MountedCloud.admin
}
