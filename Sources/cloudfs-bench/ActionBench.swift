import CloudCore
import Foundation
import LibvirtCompute
import Synchronization

/// Lifecycle actions per second: rounds of `echo stop > ctl; cat wait; echo start > ctl;
/// cat wait` on many instances at once (every action is a durable task row), vs the same
/// number of power-off + start calls made directly on libvirt test:/// connections.
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

        // Baseline: the same number of libvirt operations (virDomainDestroy + virDomainCreate
        // through ComputeConnection.perform), on as many domains spread over connections to
        // the rig's own host XMLs, issued from concurrent threads.
        let driver = LibvirtDriver(virtType: .qemu, stateDir: rig.work)
        let hosts = try (0..<4).map { try driver.connect(uri: "test://\(rig.work)/node\($0).xml") }
        var domains: [(any ComputeConnection, String)] = []
        for i in 0..<count {
            let id = UUID().uuidString.lowercased()
            let spec = DomainSpec(domainName: "bench-act-\(id)", uuid: id, vcpus: 1, ramMB: 128,
                                  diskPath: rig.work + "/d.raw", diskFormat: "raw", consolePath: rig.work + "/c.log")
            let conn = hosts[i % hosts.count]
            _ = try conn.spawn(spec)
            domains.append((conn, id))
        }
        let baseFailures = Mutex(0)
        let t0 = now()
        let list = domains, rounds = rounds
        DispatchQueue.concurrentPerform(iterations: list.count) { i in
            let (conn, id) = list[i]
            for _ in 0..<rounds {
                do throws(CloudError) {
                    try conn.perform(.powerOff, uuid: id)
                    try conn.perform(.start, uuid: id)
                } catch { baseFailures.withLock { $0 += 1 } }
            }
        }
        let base = now() - t0
        for (conn, id) in list { try? conn.destroy(uuid: id) }

        // cloudfs: one shell worker per instance, each doing `rounds` stop/start cycles;
        // a failed step (refused write, or `wait` not showing the expected status) is logged.
        let failLog = rig.work + "/action-failures"
        let worker = "i=$1; c='\(dir)'/a$i; for r in $(seq 1 \(rounds)); do " +
            "{ echo stop > $c/ctl && [ \"$(cat $c/wait)\" = SHUTOFF ]; } || echo \"a$i round $r stop\" >> '\(failLog)'; " +
            "{ echo start > $c/ctl && [ \"$(cat $c/wait)\" = ACTIVE ]; } || echo \"a$i round $r start\" >> '\(failLog)'; done"
        try worker.write(toFile: rig.work + "/action-worker.sh", atomically: true, encoding: .utf8)
        try timed("rm -f '\(failLog)'; touch '\(failLog)'")
        let cloud = try timed("for i in $(seq 1 \(count)); do sh '\(rig.work)/action-worker.sh' $i 2>/dev/null & done; wait")
        let failures = ((try? String(contentsOfFile: failLog, encoding: .utf8)) ?? "").split(separator: "\n")
        var notActive = 0
        for i in 1...count {
            let s = (try? String(contentsOfFile: "\(dir)/a\(i)/status", encoding: .utf8)) ?? ""
            if s.trimmingCharacters(in: .whitespacesAndNewlines) != "ACTIVE" { notActive += 1 }
        }
        try timed("cd '\(dir)' && for i in $(seq 1 \(count)); do rmdir a$i; done; while ls '\(dir)' | grep -q '^a'; do sleep 0.1; done")

        print("5. lifecycle actions: \(rounds) rounds of stop + start on \(count) instances at once, 4 test:/// hosts (\(actions) actions)")
        report("   libvirt destroy + create, \(count) domains (baseline)", String(format: "%8.0f /s", Double(actions) / base),
               baseFailures.withLock { $0 } == 0 ? String(format: "%.0f ms", base * 1000) : "\(baseFailures.withLock { $0 }) FAILED")
        report("   echo stop|start > ctl + cat wait", String(format: "%8.0f /s", Double(actions) / cloud),
               String(format: "%.0f ms, %.2f ms per action", cloud * 1000, cloud * 1000 / Double(actions)))
        report("   ratio (cloudfs time / baseline time)", String(format: "%8.1fx", cloud / base))
        report("   failed actions; instances not ACTIVE at the end", String(format: "%8d", failures.count),
               "\(notActive) not ACTIVE" + (failures.isEmpty && notActive == 0 ? "" : "   FAILED: must be 0; first: \(failures.first ?? "-")"))
        print("   reproduce: \(reproduce)")
        print("")
    }
}
