import CloudTesting
import Foundation
import XCTest

/// One daemon per state directory, no mount over a mount: what an operator who runs
/// `cloudfs mount` twice by mistake gets is a refusal naming the daemon in the way, with
/// the first cloud untouched.
final class StateLockMountTests: MountTestCase {
    /// The first daemon's pid, as its lock file names it.
    func daemonPID(file: StaticString = #filePath, line: UInt = #line) -> Int32 {
        let text = (try? String(contentsOfFile: state + "/cloudfs.lock", encoding: .utf8)) ?? ""
        let pid = text.split(separator: "\n").first.flatMap { $0.hasPrefix("pid ") ? Int32($0.dropFirst(4)) : nil }
        XCTAssertNotNil(pid, "lock file: '\(text)'", file: file, line: line)
        return pid ?? -1
    }

    /// What a daemon that opened the state would have left: its `cloud.started` rows and
    /// the database files' identities (the first daemon keeps writing meanwhile, so their
    /// bytes are not a measure).
    func traces() -> [String] {
        let started = startedRows()
        let inodes = ["", "-wal", "-shm"].map { suffix -> String in
            var st = stat()
            return stat(state + "/cloudfs.db" + suffix, &st) == 0 ? "\(st.st_ino)" : "-"
        }
        return [started.trimmingCharacters(in: .whitespacesAndNewlines)] + inodes
    }

    /// The `cloud.started` rows in the database, as sqlite3 prints their count.
    func startedRows() -> String {
        sh("sqlite3 -readonly '\(state)/cloudfs.db' \"SELECT COUNT(*) FROM event WHERE line LIKE '% cloud.started %'\"").out
    }

    /// Waits until the first daemon's events are in SQLite (they are written in batches).
    func engineSettled() {
        let want = read("events").components(separatedBy: " cloud.started ").count - 1
        for _ in 0..<100 {
            let got = startedRows()
            if Int(got.trimmingCharacters(in: .whitespacesAndNewlines)) == want { return }
            usleep(50_000)
        }
    }

    func mountCommand(_ mountpoint: String, state: String, _ extra: String = "") -> String {
        "'\(cloudfs)' mount '\(mountpoint)' --state '\(state)' --host test:///default \(extra)"
    }

    func testASecondDaemonOnTheSameStateIsRefusedAndChangesNothing() throws {
        addDiskImage()
        ok("mkdir instances/web1 && cat instances/web1/wait")
        let pid = daemonPID()
        engineSettled()
        let before = traces()
        let other = work + "/b"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        for extra in ["", "--foreground"] {
            let r = sh(mountCommand(other, state: state, extra), timeout: 60)
            XCTAssertNotEqual(r.status, 0, "a second daemon on \(state) must not start (\(extra))")
            XCTAssertTrue(r.err.contains("state directory \(state) is in use by cloudfs pid \(pid) mounted on \(mnt)"), r.err)
            XCTAssertFalse(((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").contains(" \(other) "))
        }
        engineSettled()
        XCTAssertEqual(traces(), before, "the refused daemon opened nothing")
        XCTAssertEqual(before.first, "1", "one daemon started on this state")
        XCTAssertEqual(daemonPID(), pid)
        // The first cloud keeps serving.
        XCTAssertEqual(read("instances/web1/status"), "ACTIVE")
        ok("mkdir instances/web2 && cat instances/web2/wait")
    }

    func testMountingOverAMountIsRefused() throws {
        let pid = daemonPID()
        let otherState = work + "/state3"
        let r = sh(mountCommand(mnt, state: otherState), timeout: 60)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.err.contains("\(mnt) is already a mount point (cloudfs pid \(pid), state \(state))"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: otherState), "nothing was created for the refused cloud")
        XCTAssertEqual(read("flavors/m1.nano/vcpus"), "1", "the first cloud is still the one mounted")

        // Any other file system too, named by its type.
        guard getuid() == 0 else { return }
        let tmpfs = work + "/tmpfs"
        try FileManager.default.createDirectory(atPath: tmpfs, withIntermediateDirectories: true)
        XCTAssertEqual(sh("mount -t tmpfs cloudfs-test-tmpfs '\(tmpfs)'").status, 0)
        defer { sh("umount '\(tmpfs)'") }
        let t = sh(mountCommand(tmpfs, state: otherState), timeout: 60)
        XCTAssertNotEqual(t.status, 0)
        XCTAssertTrue(t.err.contains("\(tmpfs) is already a mount point (tmpfs from cloudfs-test-tmpfs)"), t.err)
    }

    func testKillNineNeverLeavesAStaleLock() throws {
        addDiskImage()
        ok("mkdir instances/web1 && cat instances/web1/wait")
        let id = read("instances/web1/id")
        let pid = daemonPID()
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        // Dead once the kernel ended its FUSE connection (the last thread has gone).
        for _ in 0..<200 where !connectionEnded() { usleep(20_000) }
        // At once: the kernel dropped the lock with the process.
        try mount()
        XCTAssertNotEqual(daemonPID(), pid)
        XCTAssertEqual(read("instances/web1/id"), id, "the same cloud, from the same state")
    }

    func testRacingMountsStartExactlyOneDaemon() throws {
        unmount()
        let dirs = (1...3).map { "\(work)/m\($0)" }
        for d in dirs { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        // Three daemons at once on one state directory; then three states on one mount point.
        let sameState = sh(dirs.map { "(\(mountCommand($0, state: state)) >/dev/null 2>&1; echo $? >> '\(work)/rc1') &" }.joined(separator: " ") + " wait", timeout: 120)
        XCTAssertEqual(sameState.status, 0)
        let codes1 = ((try? String(contentsOfFile: work + "/rc1", encoding: .utf8)) ?? "").split(separator: "\n").sorted()
        XCTAssertEqual(codes1, ["0", "1", "1"], "exactly one daemon got the state directory")
        let mounted = dirs.filter { d in ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").contains(" \(d) ") }
        XCTAssertEqual(mounted.count, 1)
        for d in mounted { sh("'\(cloudfs)' unmount '\(d)'") }

        let states = (1...3).map { "\(work)/s\($0)" }
        let sameMount = sh(states.map { "(\(mountCommand(dirs[0], state: $0)) >/dev/null 2>&1; echo $? >> '\(work)/rc2') &" }.joined(separator: " ") + " wait", timeout: 120)
        XCTAssertEqual(sameMount.status, 0)
        let codes2 = ((try? String(contentsOfFile: work + "/rc2", encoding: .utf8)) ?? "").split(separator: "\n").sorted()
        XCTAssertEqual(codes2, ["0", "1", "1"], "exactly one daemon mounted on \(dirs[0])")
        let stacked = ((try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains(" \(dirs[0]) ") }
        XCTAssertEqual(stacked.count, 1, "no cloud stacked over another")
        sh("'\(cloudfs)' unmount '\(dirs[0])'")
        try mount()   // for tearDown
    }

    static func alive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        guard let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }
}
