import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import LibvirtCompute
import XCTest

/// An engine on a fresh state directory with libvirt's `test:///default` fake host.
class EngineTestCase: XCTestCase {
    var stateDir = ""
    var engine: Engine!
    var driver: FaultyDriver!
    let root = Caller(uid: 0, gid: 0, pid: 1)

    override func setUpWithError() throws {
        stateDir = TestPaths.makeTempDir("engine")
        driver = FaultyDriver(wrapping: LibvirtDriver(virtType: .qemu, stateDir: stateDir))
        engine = try makeEngine()
    }

    override func tearDown() {
        if let engine {
            for i in engine.instances.list(.system) { try? engine.instances.delete(i.name, root) }
            engine.drain()
        }
        engine = nil
        try? FileManager.default.removeItem(atPath: stateDir)
    }

    func makeEngine() throws -> Engine {
        try Engine(config: engineConfiguration(hostURIs: ["test:///default"]), driver: driver)
    }

    /// The engine's configuration in this test's state directory, with the test accounts.
    func engineConfiguration(hostURIs: [String], maxConcurrentJobs: Int = 10, hostCheckInterval: TimeInterval = 5) -> EngineConfiguration {
        var config = EngineConfiguration(stateDir: stateDir, hostURIs: hostURIs, maxConcurrentJobs: maxConcurrentJobs,
                                         hostCheckInterval: hostCheckInterval)
        config.accounts = Self.accounts
        return config
    }

    /// The local accounts tests register (`mkdir /users/NAME` looks them up).
    static let accounts: @Sendable (String) -> UInt32? = { name in
        ["alice": 1000, "bob": 1001, "carol": 1002, "dave": 2000, "erin": 7][name]
    }

    /// Makes `name` a project when it is not one yet (as the admin).
    func ensureProject(_ name: String) throws {
        if engine.projects.get(name, root) == nil { try engine.projects.create(name, root) }
    }

    /// Registers the account `name` (see `accounts`) with `role` in `project`, as the admin
    /// does through /users and /projects; returns it as a caller.
    @discardableResult
    func register(_ name: String, _ role: Role = .member, in project: String = "default") throws -> Caller {
        let uid = try XCTUnwrap(Self.accounts(name))
        if engine.users.get(name, root) == nil { try engine.users.create(name, root) }
        try ensureProject(project)
        var members = engine.projects.get(project, root)?.members ?? [:]
        members[name] = role
        try engine.projects.setMembers(project, members, root)
        return Caller(uid: uid, gid: uid, pid: 1)
    }

    /// Uploads `bytes` as an image through the same path `cp` takes.
    @discardableResult
    func upload(_ name: String, _ bytes: [UInt8]) throws -> ImageInfo {
        let up = try engine.images.beginUpload(name, root)
        try bytes.withUnsafeBytes { try up.write($0, at: 0) }
        return try up.commit()
    }

    func rawDisk(_ n: Int = 1 << 20) -> [UInt8] { [UInt8](repeating: 0, count: n) }

    /// Blocks until the instance is stable (the engine's own notification, like `cat wait`).
    func waitStable(_ name: String, timeout: TimeInterval = 30) -> InstanceInfo? {
        let done = expectation(description: "stable \(name)")
        final class Box: @unchecked Sendable { var info: InstanceInfo? }
        let box = Box()
        _ = engine.instances.waitUntilStable(name, .system) { box.info = $0; done.fulfill() }
        if XCTWaiter().wait(for: [done], timeout: timeout) != .completed {
            XCTFail("\(name) not stable after \(timeout) s: \(String(describing: engine.instances.get(name, .system)))\n"
                    + engine.instances.actions(name, .system).joined(separator: "\n") + "\n"
                    + engine.events.lines.suffix(10).joined(separator: "\n"))
        }
        return box.info
    }

    /// Polls `cond` until it holds or `timeout` passes (for effects of periodic checks).
    func eventually(_ what: String, timeout: TimeInterval = 10, _ cond: () -> Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while !cond() && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(cond(), what)
    }

    func waitGone(_ name: String, timeout: TimeInterval = 30) {
        let deadline = Date().addingTimeInterval(timeout)
        while engine.instances.get(name, .system) != nil && Date() < deadline { usleep(10_000) }
        XCTAssertNil(engine.instances.get(name, .system), "\(name) still exists")
    }

    func domainUUIDs() throws -> Set<String> {
        Set(try driver.connect(uri: "test:///default").listDomains().map(\.uuid))
    }

    func instanceDirs() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/instances")) ?? []
    }

    func imageFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: stateDir + "/images")) ?? []
    }

    func assertErrno(_ errno: Errno, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            XCTAssertEqual((e as? CloudError)?.errno, errno, "\(e)", file: file, line: line)
        }
    }
}
