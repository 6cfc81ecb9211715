import CloudTesting
import Foundation
import XCTest

/// kill -9 at every named step of a volume's create, attach, extend, snapshot, detach and
/// delete, on a real guest, then mount again: no volume is left in creating, reserved,
/// attaching, detaching, extending or deleting (the most reported Cinder/Nova bug), no
/// snapshot half-made, and what the domain's XML says (libvirt's own files for it, live
/// and persistent) is what the tree says.
final class VolumeCrashMountTests: GuestMountTestCase {
    /// The crash points the next mount arms (`CLOUDFS_CRASH_AT=@FILE`): the daemon's
    /// environment stays the same on every mount, so libvirt does not probe QEMU again.
    var crashFile: String { work + "/crash-at" }

    override func mount(extra: [String] = [], env: String = "") throws {
        try super.mount(extra: extra, env: "CLOUDFS_CRASH_AT=@'\(crashFile)' " + env)
    }

    /// Remounts with `point` armed, runs `trigger`, waits for the daemon to die, mounts
    /// again and checks the invariants.
    func crash(at point: String, _ trigger: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let t0 = Date()
        defer { print("[measure] crash at \(point): \(Int(Date().timeIntervalSince(t0) * 1000)) ms") }
        unmount()
        try point.write(toFile: crashFile, atomically: true, encoding: .utf8)
        try mount()
        try "".write(toFile: crashFile, atomically: true, encoding: .utf8)
        sh("cd '\(mnt)' && \(trigger)", timeout: 60)
        XCTAssertTrue(daemonDied(within: 20), "the daemon did not reach crash point \(point)", file: file, line: line)
        try mount()
        // A resumed detach finishes on its own: wait for it like a script would.
        for _ in 0..<300 {
            if sql("SELECT COUNT(*) FROM volume WHERE status = 'detaching'") == "0" { break }
            usleep(100_000)
        }
        try assertTreeMatchesDomains(after: point, file: file, line: line)
    }

    func sql(_ query: String) -> String {
        sh("sqlite3 -readonly '\(state)/cloudfs.db' \"\(query)\"").out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// target → source of the guest's disks, from the XML libvirt keeps for the domain:
    /// its persistent definition (`etc/qemu/NAME.xml`) or its live status
    /// (`run/qemu/NAME.xml`) under the embedded driver's root. Read from the files, not
    /// through a second libvirt process (which would re-probe QEMU for its own binary).
    func domainDisks(_ uuid: String, persistent: Bool) -> [String: String] {
        let dir = "\(state)/libvirt/\(persistent ? "etc" : "run")/qemu"
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix("-\(uuid).xml") }
        guard files.count == 1, let xml = try? String(contentsOfFile: dir + "/" + files[0], encoding: .utf8) else { return [:] }
        var disks: [String: String] = [:]
        for block in xml.components(separatedBy: "<disk ").dropFirst() {
            let element = block.components(separatedBy: "</disk>")[0]
            func attribute(_ tag: String, _ name: String) -> String? {
                guard let r = element.range(of: "<\(tag) "), let a = element.range(of: "\(name)='", range: r.upperBound..<element.endIndex),
                      let b = element.range(of: "'", range: a.upperBound..<element.endIndex) else { return nil }
                return String(element[a.upperBound..<b.lowerBound])
            }
            if let target = attribute("target", "dev"), let source = attribute("source", "file") { disks[target] = source }
        }
        return disks
    }

    func assertTreeMatchesDomains(after point: String, file: StaticString, line: UInt) throws {
        let transitional = "'creating','reserved','attaching','detaching','extending','deleting'"
        XCTAssertEqual(sql("SELECT COUNT(*) FROM volume WHERE status IN (\(transitional))"), "0",
                       "\(point): \(sql("SELECT name, status FROM volume"))", file: file, line: line)
        XCTAssertEqual(sql("SELECT COUNT(*) FROM volume_snapshot WHERE status IN ('creating','deleting')"), "0",
                       "\(point): no half-made snapshot", file: file, line: line)
        // What the tree says each volume is attached to.
        var expected: [String: String] = [:]   // device → volume file
        for v in ok("ls volumes").split(separator: "\n").map(String.init) {
            let status = read("volumes/\(v)/status")
            XCTAssertTrue(["available", "in-use"].contains(status), "\(point): \(v) is \(status)", file: file, line: line)
            if status == "in-use" {
                XCTAssertEqual(read("volumes/\(v)/instance"), "a", file: file, line: line)
                expected[read("volumes/\(v)/device")] = "\(state)/volumes/volume-\(read("volumes/\(v)/id")).qcow2"
            }
        }
        let links = ok("ls instances/a/volumes").split(separator: "\n").map(String.init)
        XCTAssertEqual(Set(links), Set(expected.keys), "\(point): instances/a/volumes/", file: file, line: line)
        let uuid = read("instances/a/id")
        var live = domainDisks(uuid, persistent: false), persistent = domainDisks(uuid, persistent: true)
        live["vda"] = nil; persistent["vda"] = nil
        live["hdd"] = nil; persistent["hdd"] = nil   // the config drive
        XCTAssertEqual(live, expected, "\(point): the running guest's disks are the tree's", file: file, line: line)
        XCTAssertEqual(persistent, expected, "\(point): the definition's disks are the tree's", file: file, line: line)
    }

    func testKillNineAtEveryVolumeStep() throws {
        uploadGuest()
        ok("mkdir instances/a && cat instances/a/wait")
        XCTAssertTrue(waitForConsole("a").contains("CLOUDFS-GUEST-BOOTED"))

        try crash(at: "volume.creating", "mkdir volumes/v1")
        XCTAssertEqual(read("volumes/v1/status"), "available", "an interrupted create is finished")
        for point in ["attach.reserved", "attach.attaching"] {
            try crash(at: point, "echo a > volumes/v1/instance")
            XCTAssertEqual(read("volumes/v1/status"), "available", point)
            XCTAssertTrue(read("volumes/v1/fault").contains("attach interrupted by a restart"), point)
        }
        try crash(at: "attach.plugged", "echo a > volumes/v1/instance")
        XCTAssertEqual(read("volumes/v1/status"), "in-use", "the hotplug had happened: attached")
        try crash(at: "extend.extending", "echo 2 > volumes/v1/size_gb")
        XCTAssertEqual(read("volumes/v1/size_gb"), "2")
        try crash(at: "extend.resized", "echo 3 > volumes/v1/size_gb")
        XCTAssertEqual(read("volumes/v1/size_gb"), "3")
        XCTAssertEqual(read("volumes/v1/status"), "in-use")
        for point in ["snapshot.creating", "snapshot.copied"] {
            try crash(at: point, "mkdir volumes/v1/snapshots/s1")
            XCTAssertEqual(ok("ls volumes/v1/snapshots"), "", "\(point): an interrupted snapshot is removed")
        }
        for point in ["detach.detaching", "detach.config", "detach.unplugged"] {
            if read("volumes/v1/status") != "in-use" { ok("echo a > volumes/v1/instance") }
            try crash(at: point, "echo > volumes/v1/instance")
            XCTAssertEqual(read("volumes/v1/status"), "available", "\(point): the detach is finished")
        }
        try crash(at: "volume.deleting", "rmdir volumes/v1")
        XCTAssertEqual(ok("ls volumes"), "")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: state + "/volumes")) ?? [], [])
    }
}
