import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// nova-network's fixed IP allocation as the build's network step does it (issue 4): one
/// SQLite transaction per address on a /16 network (lowest free address, unique MAC), from
/// many threads at once, then a duplicate check. Baseline: the cheapest write transaction
/// of the same store (one setting row), measured in the same run with the same threads.
struct FixedIPBench {
    let work: String
    let count: Int
    let threads = 8
    let reproduce: String

    func run() throws {
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let store = try Store(path: work + "/ipam.db")
        let spec = NetworkSpec(name: "bench", mode: .flatdhcp, cidr: try IPv4Network(cidr: "10.64.0.0/16"))
        try store.ensureNetwork(NetworkRecord(name: spec.name, cidr: spec.cidr.description, gateway: spec.gateway.description, mode: "flatdhcp"))
        let n = min(count, spec.allocatableCount)
        let image = ImageInfo(name: "i", id: "i", status: .active, format: .raw, size: 0, virtualSize: 0, checksum: "",
                              created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/dev/null")
        let flavor = Flavor(name: "f", vcpus: 1, ramMB: 1, diskGB: 0)
        let ids = (0..<n).map { String(format: "00000000-0000-0000-0000-%012x", $0) }
        for (i, id) in ids.enumerated() {
            try store.insertInstance(InstanceRecord(id: id, name: "b\(i)", ownerUID: 0, project: "bench", image: image, flavor: flavor, created: Date()))
        }
        let bounds = spec.allocatableBounds!
        let failures = Counter()
        let t0 = now()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in stride(from: t, to: n, by: threads) {
                do { _ = try store.allocateFixedIP(instanceID: ids[i], network: spec.name, range: bounds) { MACAddress.random() } } catch {
                    failures.add()
                }
            }
        }
        let allocTime = now() - t0
        let t1 = now()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in stride(from: t, to: n, by: threads) { try? store.setSetting(.scheduler("bench.\(i % 64)"), "\(i)") }
        }
        let baseTime = now() - t1
        let ips = try store.fixedIPs().filter { $0.network == spec.name }
        let dupAddresses = ips.count - Set(ips.map(\.address)).count
        let dupMACs = ips.count - Set(ips.map(\.mac)).count
        let contiguous = ips.map(\.address).max().map { $0 - Int64(bounds.lowerBound) + 1 } == Int64(ips.count)
        print("7. fixed IPs: \(n) allocations from \(threads) threads on \(spec.cidr) (one transaction each: lowest free address + unique MAC)")
        report("   allocations per second", String(format: "%8.0f /s", Double(n) / allocTime),
               String(format: "%.1f µs each; baseline write transaction %.1f µs (%.2fx)", allocTime / Double(n) * 1e6,
                      baseTime / Double(n) * 1e6, allocTime / max(baseTime, 1e-9)))
        report("   duplicates (addresses, MACs)", "\(dupAddresses), \(dupMACs)",
               dupAddresses == 0 && dupMACs == 0 && failures.value == 0 && ips.count == n && contiguous
                   ? "ok: \(ips.count) distinct, lowest-first" : "FAILED (\(failures.value) errors, \(ips.count) held)")
        print("   reproduce: \(reproduce)")
        print("")
    }
}

/// A thread-safe counter.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
