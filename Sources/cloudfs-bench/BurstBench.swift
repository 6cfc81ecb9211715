import CloudCore
import Foundation

/// A burst of concurrent mkdirs over many small fake hosts (issue 3): time until every
/// instance is ACTIVE or ERROR, and how many hosts ended above capacity × ratio (must be 0).
struct BurstBench {
    let rig: Rig
    let count: Int
    let reproduce: String

    func run() throws {
        let dir = rig.mnt + "/instances"
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: count) { i in _ = mkdir("\(dir)/b\(i)", 0o755) }
        let issued = now() - t0
        var buf = [UInt8](repeating: 0, count: 64)
        var active = 0, failed = 0
        for i in 0..<count {   // each read of `wait` returns once that instance is stable
            let fd = open("\(dir)/b\(i)/wait", O_RDONLY)
            let n = read(fd, &buf, buf.count)
            close(fd)
            let s = String(decoding: buf.prefix(max(0, n)), as: UTF8.self)
            if s.hasPrefix("ACTIVE") { active += 1 } else if s.hasPrefix("ERROR") { failed += 1 }
        }
        let settled = now() - t0
        var over = 0, hosts = 0
        for h in (try? FileManager.default.contentsOfDirectory(atPath: rig.mnt + "/hosts")) ?? [] {
            func n(_ f: String) -> Int { Int(((try? String(contentsOfFile: "\(rig.mnt)/hosts/\(h)/\(f)", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }
            hosts += 1
            if n("ram_mb_used") > n("ram_mb") || n("vcpus_used") > n("vcpus") * 4 || n("disk_gb_used") > n("disk_gb") { over += 1 }
        }
        print("4. burst of \(count) concurrent mkdirs over \(hosts) test:/// hosts of 2 vCPU / 1 GiB (m1.nano)")
        report("   all mkdirs returned", String(format: "%8.0f ms", issued * 1000))
        report("   all ACTIVE or ERROR", String(format: "%8.0f ms", settled * 1000), "\(active) ACTIVE, \(failed) ERROR (No valid host)")
        report("   oversubscribed hosts", String(format: "%8d", over), over == 0 ? "" : "FAILED: must be 0")
        print("   reproduce: \(reproduce)")
        print("")
    }
}
