import CloudTesting
import Foundation
import XCTest

/// kill -9 at every crash point of a build, delete, action, rebuild and resize, then
/// `cloudfs mount` again: each instance ends in the right stable state and nothing leaks.
/// The host is libvirt's test driver in a private libvirtd, so its domains outlive the
/// killed daemon and can be listed independently; the crash point is chosen with the
/// engine's `CLOUDFS_CRASH_AT` hook.
final class CrashMountTests: MountTestCase {
    var libvirtd: PrivateLibvirtd!
    override var hostArgs: [String] { libvirtd.map { ["--host", $0.uri] } ?? [] }

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: "/dev/fuse") else { throw XCTSkip("no /dev/fuse") }
        let dir = TestPaths.makeTempDir("cloudfs-libvirtd")
        libvirtd = try PrivateLibvirtd(dir: dir)
        try libvirtd.start()
        try libvirtd.holdConnection()
        try super.setUpWithError()
    }

    override func tearDown() {
        super.tearDown()
        libvirtd?.stop()
        if let d = libvirtd?.dir { try? FileManager.default.removeItem(atPath: d) }
    }

    /// Remounts with a crash point armed, runs `trigger`, waits for the daemon to die,
    /// then mounts normally again (clearing the dead mount) and waits for every instance.
    func crash(at point: String, _ trigger: String, file: StaticString = #filePath, line: UInt = #line) throws {
        unmount()
        try mount(env: "CLOUDFS_CRASH_AT=\(point)")
        sh("cd '\(mnt)' && \(trigger)", timeout: 30)
        XCTAssertTrue(daemonDied(within: 10), "the daemon did not reach crash point \(point)", file: file, line: line)
        try mount()
        for name in instanceNames() { _ = sh("timeout 60 cat '\(mnt)/instances/\(name)/wait'", timeout: 70) }
        assertInvariants(after: point, file: file, line: line)
    }

    func instanceNames() -> [String] {
        ok("ls instances").split(separator: "\n").map(String.init)
    }

    func sql(_ query: String) -> String {
        sh("sqlite3 -readonly '\(state)/cloudfs.db' \"\(query)\"").out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Instance count is checked by each scenario; here: domains = instances with a host,
    /// IPs = allocation rows (unique), disk directories = instances with a host, no task
    /// left open, every instance stable.
    func assertInvariants(after point: String, file: StaticString, line: UInt) {
        let names = instanceNames()
        var ids = Set<String>(), placed = Set<String>(), ips: [String] = []
        for n in names {
            let id = read("instances/\(n)/id")
            ids.insert(id)
            if !read("instances/\(n)/host").isEmpty { placed.insert(id) }
            ips += read("instances/\(n)/ip").split(separator: "\n").map(String.init)
            XCTAssertEqual(read("instances/\(n)/task_state"), "none", "\(point): \(n) is stable", file: file, line: line)
            XCTAssertFalse(read("instances/\(n)/fault").contains("missing"), "\(point): \(n): \(read("instances/\(n)/fault"))",
                           file: file, line: line)
        }
        XCTAssertEqual(libvirtd.domains(), placed, "\(point): the domain set equals the placed instances", file: file, line: line)
        XCTAssertEqual(Set(ips).count, ips.count, "\(point): fixed IPs are unique", file: file, line: line)
        let rows = sql("SELECT address FROM fixed_ip").split(separator: "\n").compactMap { UInt32($0) }
            .map { "\($0 >> 24).\($0 >> 16 & 255).\($0 >> 8 & 255).\($0 & 255)" }
        XCTAssertEqual(Set(rows), Set(ips), "\(point): IPs shown = allocation rows", file: file, line: line)
        let dirs = Set((try? FileManager.default.contentsOfDirectory(atPath: state + "/instances")) ?? [])
        XCTAssertEqual(dirs, placed, "\(point): one disk directory per placed instance, no orphans", file: file, line: line)
        XCTAssertEqual(sql("SELECT COUNT(*) FROM task WHERE state IN ('queued','running')"), "0",
                       "\(point): no task left open", file: file, line: line)
    }

    func testKillNineAtEveryStepLosesAndLeaksNothing() throws {
        let disk = makeFile("disk.raw", mib: 1)
        ok("cp '\(disk)' images/tiny && echo m1.nano > defaults/flavor")
        ok("mkdir instances/base && timeout 60 cat instances/base/wait")

        // Builds: the instance exists after the restart and its build finishes.
        for (i, point) in ["create.committed", "build.scheduled", "build.networked", "build.disk", "build.spawned"].enumerated() {
            try crash(at: point, "mkdir instances/b\(i)")
            XCTAssertEqual(read("instances/b\(i)/status"), "ACTIVE", "\(point): \(read("instances/b\(i)/fault"))")
        }
        XCTAssertTrue(read("events").contains("instance.adopted b4"), "the domain started before the crash was adopted")

        // An action caught between the hypervisor call and its commit is settled from the host.
        try crash(at: "action.performed", "echo stop > instances/base/ctl")
        XCTAssertEqual(read("instances/base/status"), "SHUTOFF")
        XCTAssertEqual(read("instances/base/power_state"), "shutdown")
        XCTAssertTrue(ok("cat instances/base/actions").contains("action(stop) interrupted"))
        ok("echo start > instances/base/ctl && timeout 60 cat instances/base/wait")

        // Rebuild and resize resume from their recorded step.
        try crash(at: "rebuild.disk", "echo rebuild > instances/base/ctl")
        XCTAssertEqual(read("instances/base/status"), "ACTIVE", read("instances/base/fault"))
        for point in ["resize.claimed", "resize.disk", "resize.spawned"] {
            try crash(at: point, "echo m1.tiny > instances/base/flavor")
            XCTAssertEqual(read("instances/base/status"), "VERIFY_RESIZE", "\(point): \(read("instances/base/fault"))")
            XCTAssertEqual(read("instances/base/flavor"), "m1.tiny")
            ok("echo revert-resize > instances/base/ctl && timeout 60 cat instances/base/wait")
            XCTAssertEqual(read("instances/base/flavor"), "m1.nano", point)
            assertInvariants(after: point + " + revert", file: #filePath, line: #line)
        }

        // Deletes finish after the restart.
        for (i, point) in ["delete.destroyed", "delete.released"].enumerated() {
            ok("mkdir instances/d\(i) && timeout 60 cat instances/d\(i)/wait")
            try crash(at: point, "rmdir instances/d\(i)")
            for _ in 0..<100 where !read("instances").isEmpty && FileManager.default.fileExists(atPath: mnt + "/instances/d\(i)") { usleep(100_000) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: mnt + "/instances/d\(i)"), "\(point): d\(i) was deleted")
            XCTAssertTrue(sql("SELECT state || ' ' || step FROM task WHERE instance_name = 'd\(i)' AND kind = 'delete'").hasPrefix("done released:"),
                          "\(point): the delete task recorded its steps and finished")
            assertInvariants(after: point + " + delete", file: #filePath, line: #line)
        }
        XCTAssertEqual(Set(instanceNames()), ["base", "b0", "b1", "b2", "b3", "b4"], "nothing lost, nothing extra")
    }

    /// Nova's power-state sync and orphan reaping, driven from outside with `virsh` on the
    /// same libvirtd: the tree shows it within seconds (libvirt lifecycle events).
    func testChangesBehindOurBackAreSyncedAndOrphansReaped() throws {
        let disk = makeFile("disk.raw", mib: 1)
        ok("cp '\(disk)' images/tiny && echo m1.nano > defaults/flavor")
        ok("mkdir instances/vm && timeout 60 cat instances/vm/wait")
        let id = read("instances/vm/id")
        sh("virsh -c '\(libvirtd.uri)' destroy \(id)")
        var status = ""
        for _ in 0..<50 { status = read("instances/vm/status"); if status == "SHUTOFF" { break }; usleep(100_000) }
        XCTAssertEqual(status, "SHUTOFF", "a guest stopped behind our back shows SHUTOFF within 5 s")
        XCTAssertTrue(read("events").contains("instance.power_synced vm"))
        // A domain named like ours that no instance owns: reported and reaped by the sweep.
        let prefix = String(read("instances/vm/domain.xml").firstMatch(of: /<name>(cloudfs-[0-9a-f]+-)/)?.1 ?? "cloudfs-x-")
        let stray = UUID().uuidString.lowercased()
        try """
        <domain type='test'><name>\(prefix)\(stray)</name><uuid>\(stray)</uuid><memory>65536</memory>
        <os><type>hvm</type></os></domain>
        """.write(toFile: work + "/stray.xml", atomically: true, encoding: .utf8)
        XCTAssertEqual(sh("virsh -c '\(libvirtd.uri)' define '\(work)/stray.xml' && virsh -c '\(libvirtd.uri)' start \(stray)").status, 0)
        ok("echo 1 > config/sync_power_state_interval")
        var reaped = false
        for _ in 0..<150 { if !libvirtd.domains().contains(stray) { reaped = true; break }; usleep(100_000) }
        XCTAssertTrue(reaped, "the orphan domain was reaped")
        XCTAssertTrue(read("events").contains("host.orphan_reaped"))
        XCTAssertEqual(libvirtd.domains(), [id], "our own domain is untouched")
    }
}
