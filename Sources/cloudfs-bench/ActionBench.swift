import CloudCore
import Foundation
import CloudStore
import LibvirtCompute
import Synchronization

/// Lifecycle actions per second: rounds of `echo stop > ctl; cat wait; echo start > ctl;
/// cat wait` on many instances at once (every action is a durable task row), vs the floor
/// of the same actions: the libvirt calls they make plus one commit each.
struct ActionBench {
    let rig: Rig
    let count: Int
    let rounds: Int
    let reproduce: String

    func run() throws {
        let dir = rig.mnt + "/instances"
        try timed("cd '\(dir)' && for i in $(seq 1 \(count)); do mkdir a$i; done && " +
                  "for i in $(seq 1 \(count)); do [ \"$(cat a$i/wait)\" = ACTIVE ] || exit 1; done")
        let actions = count * rounds * 2

        // Baseline (the floor of an action): the libvirt calls the engine makes — Nova's
        // clean stop (shutdown, then wait for the domain to be off) and start (create) —
        // plus one durable SQLite commit each, on as many domains spread over connections
        // to the rig's own host XMLs, one thread per domain, as the cloud side below.
        let driver = LibvirtDriver(virtType: .qemu, stateDir: rig.work)
        let hosts = try (0..<4).map { try driver.connect(uri: "test://\(rig.work)/node\($0).xml") }
        let store = try Store(path: rig.work + "/action-floor.sqlite")
        var domains: [(any ComputeConnection, String)] = []
        for i in 0..<count {
            let id = UUID().uuidString.lowercased()
            let spec = DomainSpec(domainName: "bench-act-\(id)", uuid: id, vcpus: 1, ramMB: 128,
                                  diskPath: rig.work + "/d.raw", diskFormat: "raw", consolePath: rig.work + "/c.log")
            let conn = hosts[i % hosts.count]
            _ = try conn.spawn(spec)
            domains.append((conn, id))
        }
        let list = domains, rounds = rounds
        // The floor's rounds on every domain at once, one thread each: their time and how
        // many failed. `fuseDir`: each action also makes the system calls of `echo VERB >
        // ctl; cat wait` first, on that FUSE floor's instance.
        func floorRounds(through fuseDir: String?) -> (time: Double, failed: Int) {
            let failed = Mutex(0)
            let time = together(list.count) { i in
                let (conn, id) = list[i]
                for r in 0..<rounds {
                    do throws(CloudError) {
                        for verb in ["stop", "start"] {
                            if let fuseDir, Self.act("\(fuseDir)/i\(i + 1)", verb) != "ACTIVE" { throw CloudError.io("floor act") }
                            if verb == "stop" {
                                try conn.perform(.shutdown, uuid: id)
                                while try conn.powerState(uuid: id) != .shutdown { usleep(100) }
                            } else {
                                try conn.perform(.start, uuid: id)
                            }
                            try store.setSetting(.defaultValue(.flavor), "\(verb) \(i) \(r)")
                        }
                    } catch { failed.withLock { $0 += 1 } }
                }
            }
            return (time, failed.withLock { $0 })
        }
        let (base, baseFailures) = floorRounds(through: nil)
        // The same floor behind a file system: the kernel's round trips of an action are in
        // the baseline too (`FuseFloor`: a file system of the tree's shape doing no work).
        let fuse = try FuseFloor(mountpoint: rig.work + "/fuse-floor", count: count)
        defer { fuse.stop() }
        let (behindFuse, fuseFailures) = floorRounds(through: fuse.instances)
        for (conn, id) in list { try? conn.destroy(uuid: id) }

        // cloudfs: one thread per instance, each doing `rounds` stop/start cycles through the
        // tree with the system calls `echo stop > ctl` and `cat wait` make (no shell: its
        // process starts would be most of what is measured). A refused write or a `wait`
        // showing the wrong status is a failure.
        let failures = Mutex([String]())
        let cloud = together(count) { i in
            let c = "\(dir)/a\(i + 1)"
            for r in 1...rounds {
                for (verb, want) in [("stop", "SHUTOFF"), ("start", "ACTIVE")] {
                    let got = Self.act(c, verb)
                    if got != want {
                        failures.withLock { $0.append("a\(i + 1) round \(r) \(verb): \(got)" + Self.why(c, "a\(i + 1)")) }
                    }
                }
            }
        }
        let failed = failures.withLock { $0 }
        var notActive = 0
        for i in 1...count {
            let s = (try? String(contentsOfFile: "\(dir)/a\(i)/status", encoding: .utf8)) ?? ""
            if s.trimmingCharacters(in: .whitespacesAndNewlines) != "ACTIVE" { notActive += 1 }
        }
        try timed("cd '\(dir)' && for i in $(seq 1 \(count)); do rmdir a$i; done; while ls '\(dir)' | grep -q '^a'; do sleep 0.1; done")

        print("5. lifecycle actions: \(rounds) rounds of stop + start on \(count) instances at once, 4 test:/// hosts (\(actions) actions)")
        report("   shutdown + wait | create, + 1 commit each (baseline)", String(format: "%8.0f /s", Double(actions) / base),
               baseFailures == 0 ? String(format: "%.0f ms", base * 1000) : "\(baseFailures) FAILED")
        report("   write ctl + read wait, per instance thread", String(format: "%8.0f /s", Double(actions) / cloud),
               String(format: "%.0f ms, %.2f ms per action", cloud * 1000, cloud * 1000 / Double(actions)))
        report("   ratio (cloudfs time / baseline time)", String(format: "%8.1fx", cloud / base))
        report("   baseline + the same system calls on a FUSE floor", String(format: "%8.0f /s", Double(actions) / behindFuse),
               fuseFailures == 0 ? String(format: "%.0f ms; a file system doing no work (FuseFloor)", behindFuse * 1000)
                   : "\(fuseFailures) FAILED")
        report("   ratio (cloudfs time / that)", String(format: "%8.1fx", cloud / behindFuse))
        report("   failed actions; instances not ACTIVE at the end", String(format: "%8d", failed.count),
               "\(notActive) not ACTIVE" + (failed.isEmpty && notActive == 0 ? "" : "   FAILED: must be 0; first: \(failed.first ?? "-")"))
        print("   reproduce: \(reproduce)")
        print("")
    }

    /// What the cloud says about an instance whose action went wrong: its `fault` and its
    /// last lines in /events.
    static func why(_ dir: String, _ name: String) -> String {
        let fault = (try? String(contentsOfFile: dir + "/fault", encoding: .utf8)) ?? ""
        let events = (try? String(contentsOfFile: URL(fileURLWithPath: dir).deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("events").path, encoding: .utf8)) ?? ""
        let mine = events.split(separator: "\n").filter { $0.contains(" \(name) ") || $0.hasSuffix(" \(name)") }.suffix(4)
        return " (fault: \(fault.trimmingCharacters(in: .whitespacesAndNewlines)); events: \(mine.joined(separator: " | ")))"
    }

    /// `echo VERB > DIR/ctl; cat DIR/wait` in system calls: the status `wait` showed, or
    /// what went wrong.
    static func act(_ dir: String, _ verb: String) -> String {
        let line = Array((verb + "\n").utf8)
        let fd = open(dir + "/ctl", O_WRONLY | O_TRUNC)
        guard fd >= 0 else { return "open ctl: errno \(errno)" }
        let n = write(fd, line, line.count)
        let e = errno
        guard close(fd) == 0, n == line.count else { return "echo \(verb) > ctl: errno \(n < 0 ? e : errno)" }
        let w = open(dir + "/wait", O_RDONLY)
        guard w >= 0 else { return "open wait: errno \(errno)" }
        defer { close(w) }
        var buf = [UInt8](repeating: 0, count: 64)
        let got = read(w, &buf, buf.count)
        return String(decoding: buf.prefix(max(0, got)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
