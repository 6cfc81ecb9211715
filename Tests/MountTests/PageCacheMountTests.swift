import Foundation
import Synchronization
import XCTest

/// Value files are kept in the kernel's page cache (PageCacheLedger); these tests race
/// readers against changes and check that no read is torn, and that once a change is
/// visible (its line in `/events`, or the writer's `close` returned) no read that starts
/// afterwards shows the old value.
final class PageCacheMountTests: MountTestCase {
    /// What the driver says about the value readers may see.
    struct Phase: Sendable {
        var number = 0
        /// nil while a change is under way (old or new are both right then).
        var expected: [String: String]? = nil
    }

    final class Board: Sendable {
        let phase = Mutex(Phase())
        let reads = Mutex([Int: Int]())          // reader -> reads finished in the current stable phase
        let problems = Mutex([String]())
        let done = Atomic(false)
        func note(_ s: String) { problems.withLock { if $0.count < 20 { $0.append(s) } } }
    }

    /// One `open`/`read`/`close`, as `cat` does it (a 128 KiB buffer, read to EOF).
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 128 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else { return false }
        let n = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        return close(fd) == 0 && n == text.utf8.count
    }

    /// Starts a reader thread: reads `rel` until done; `value` maps the bytes to what the
    /// phase expects (nil: torn).
    func reader(_ id: Int, _ board: Board, _ rel: String, key: String,
                value: @escaping @Sendable (String) -> String?) -> Thread {
        let path = mnt + "/" + rel
        let t = Thread {
            while !board.done.load(ordering: .relaxed) {
                let before = board.phase.withLock { $0 }
                guard let text = Self.readFile(path) else { board.note("\(rel): open failed (errno \(errno))"); continue }
                let after = board.phase.withLock { $0.number }
                guard let v = value(text) else { board.note("\(rel): torn read len=\(text.utf8.count) \(text.suffix(60).debugDescription)"); continue }
                guard let expected = before.expected?[key], before.number == after else { continue }
                if v != expected {
                    board.note("\(rel): read '\(v)' in phase \(before.number), after the change to '\(expected)' was visible")
                }
                board.reads.withLock { $0[id, default: 0] += 1 }
            }
        }
        t.start()
        return t
    }

    func testNoStaleOrTornReadAfterAChangeIsVisible() throws {
        addDiskImage()
        ok("mkdir instances/a && timeout 30 cat instances/a/wait")
        let statuses: Set<String> = ["ACTIVE", "SHUTOFF", "PAUSED"]
        let board = Board()
        let status: @Sendable (String) -> String? = { t in
            t.hasSuffix("\n") && statuses.contains(String(t.dropLast())) ? String(t.dropLast()) : nil
        }
        let info: @Sendable (String) -> String? = { t in
            guard let o = try? JSONSerialization.jsonObject(with: Data(t.utf8)) as? [String: Any] else { return nil }
            return o["status"] as? String
        }
        let flavor: @Sendable (String) -> String? = { t in
            ["m1.nano\n", "m1.small\n"].contains(t) ? String(t.dropLast()) : nil
        }
        var threads = (0..<3).map { reader($0, board, "instances/a/status", key: "status", value: status) }
        threads.append(reader(3, board, "instances/a/info.json", key: "status", value: info))
        threads.append(reader(4, board, "defaults/flavor", key: "flavor", value: flavor))
        // Attribute replies race too: stat and READDIRPLUS of the same files.
        let lister = Thread { [mnt] in
            while !board.done.load(ordering: .relaxed) {
                _ = try? FileManager.default.contentsOfDirectory(atPath: mnt + "/instances/a")
                _ = try? FileManager.default.attributesOfItem(atPath: mnt + "/instances/a/status")
            }
        }
        lister.start()
        defer {
            board.done.store(true, ordering: .relaxed)
            while threads.contains(where: { !$0.isFinished }) || !lister.isFinished { usleep(10_000) }
        }

        let events = try XCTUnwrap(FileHandle(forReadingAtPath: mnt + "/events"))
        defer { try? events.close() }
        _ = events.readDataToEndOfFile()
        var pending = ""
        func awaitEvent(_ kind: String) -> Bool {
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if let line = pending.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
                    .first(where: { $0.contains(" \(kind) ") && $0.contains(" a ") }) {
                    pending = String(pending[pending.range(of: line)!.upperBound...])
                    return true
                }
                let d = events.availableData
                if d.isEmpty { usleep(2_000) } else { pending += String(decoding: d, as: UTF8.self) }
            }
            return false
        }
        /// Publishes a stable phase and waits until every reader read in it a few times.
        func settle(_ expected: [String: String]) {
            board.reads.withLock { $0 = [:] }
            board.phase.withLock { $0.number += 1; $0.expected = expected }
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline, board.reads.withLock({ r in (0..<5).contains { r[$0, default: 0] < 10 } }) {
                usleep(1_000)
            }
        }
        func changing() { board.phase.withLock { $0.number += 1; $0.expected = nil } }

        var flavorNow = "m1.nano"
        settle(["status": "ACTIVE", "flavor": flavorNow])
        let cycle: [(String, String, String)] = [("stop", "instance.stop", "SHUTOFF"), ("start", "instance.start", "ACTIVE"),
                                                ("pause", "instance.pause", "PAUSED"), ("unpause", "instance.unpause", "ACTIVE")]
        var changes = 0
        for round in 0..<6 {
            for (verb, kind, result) in cycle {
                changing()
                XCTAssertTrue(Self.writeFile(mnt + "/instances/a/ctl", verb + "\n"), "echo \(verb) > ctl")
                XCTAssertTrue(awaitEvent(kind), "no \(kind) line in /events (round \(round))")
                // The writer's own change: visible when its close returns.
                flavorNow = flavorNow == "m1.nano" ? "m1.small" : "m1.nano"
                XCTAssertTrue(Self.writeFile(mnt + "/defaults/flavor", flavorNow + "\n"))
                settle(["status": result, "flavor": flavorNow])
                changes += 1
            }
        }
        board.done.store(true, ordering: .relaxed)
        XCTAssertEqual(changes, 24)
        XCTAssertEqual(board.problems.withLock { $0 }, [])
        XCTAssertEqual(read("instances/a/status"), "ACTIVE")
        XCTAssertEqual(read("defaults/flavor"), flavorNow)
    }

    /// Names and attributes are cached for a minute (the backstop), so only the cloud's
    /// invalidations can make `stat` follow a change within two seconds: a size and a
    /// name that went. A file counting another collection's objects (the host's
    /// instance list) is kept for one second, so `stat` follows it too. A snapshot's
    /// `source_of` follows a volume made from it and deleted, though that volume is another
    /// object than the snapshot's owner. Nothing here opens the files it checks (an OPEN
    /// refreshes by itself).
    func testStatFollowsChangesWithoutWaitingForTheTimeout() throws {
        addDiskImage()
        ok("mkdir instances/a && cat instances/a/wait")
        let host = read("instances/a/host")
        func size(_ rel: String) -> String {
            sh("stat -c %s '\(mnt)/\(rel)'").out.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func soon(_ what: @autoclosure () -> String, line: UInt = #line, _ check: () -> Bool) {
            var met = check()
            for _ in 0..<40 where !met { usleep(50_000); met = check() }
            XCTAssertTrue(met, what(), line: line)
        }
        XCTAssertEqual(size("instances/a/status"), "7", "ACTIVE and a newline")
        let listed = size("hosts/\(host)/instances")
        XCTAssertEqual(listed, "2", "a and a newline")

        ok("echo stop > instances/a/ctl && cat instances/a/wait")
        soon("stat shows SHUTOFF's size") { size("instances/a/status") == "8" }

        ok("mkdir instances/bb && cat instances/bb/wait")
        let together = read("instances/bb/host") == host
        soon("the host's instance list follows the build: size \(size("hosts/\(host)/instances"))") { size("hosts/\(host)/instances") == (together ? "5" : "2") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: mnt + "/instances/a/status"))
        ok("rmdir instances/a")
        soon("the deleted name is gone for stat") { !FileManager.default.fileExists(atPath: self.mnt + "/instances/a") }
        soon("and from the host's instance list: size \(size("hosts/\(host)/instances"))") { size("hosts/\(host)/instances") == (together ? "3" : "0") }

        // A snapshot's source_of belongs to another volume than the one whose source is set.
        ok("mkdir volumes/v && mkdir volumes/v/snapshots/s1 && mkdir volumes/copy")
        XCTAssertEqual(size("volumes/v/snapshots/s1/source_of"), "0")
        ok("echo 'snapshot v/s1' > volumes/copy/source")
        soon("source_of names the volume made from the snapshot: size \(size("volumes/v/snapshots/s1/source_of"))") {
            size("volumes/v/snapshots/s1/source_of") == "5"
        }
        ok("rmdir volumes/copy")
        soon("and no longer once it is deleted") { size("volumes/v/snapshots/s1/source_of") == "0" }
    }
}
