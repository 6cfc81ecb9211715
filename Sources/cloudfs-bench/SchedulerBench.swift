import CloudCore
import CloudScheduler
import Foundation

/// Scheduling decisions per second over synthetic clouds of 100, 1,000 and 10,000 hosts
/// (mixed sizes and usage, some down or disabled, two zones, a few ARM hosts), with a mix of
/// requests (flavors, zones, image architectures, anti-affinity groups). Pure CPU: no mount.
struct SchedulerBench {
    let reproduce: String
    /// A tiny deterministic generator (SplitMix64), so every run weighs the same clouds.
    struct Mix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    func run() {
        let scheduler = FilterScheduler()
        print("0. scheduler decisions (FilterScheduler, \(scheduler.filters.count) filters, \(scheduler.weighers.count) weighers; "
              + "synthetic hosts, ~7% down or disabled)")
        var rng = Mix(state: 1)
        var big: [HostSnapshot] = []
        for n in [100, 1_000, 10_000] {
            let hosts = Self.cloud(n, &rng)
            if n == 10_000 { big = hosts }
            let iterations = max(40, 300_000 / n)
            let s = time(iterations) { i in _ = scheduler.select(Self.request(i), from: hosts, using: &rng).pick }
            report("   \(Self.grouped(n)) hosts", String(format: "%9.0f /s", 1 / s),
                   String(format: "%8.1f µs per decision", s * 1e6))
        }
        let ranked = time(40) { i in _ = scheduler.select(Self.request(i), from: big, using: &rng).ranked.count }
        report("   10,000 hosts, every passing host ranked (engine walk)", String(format: "%9.0f /s", 1 / ranked),
               String(format: "%8.1f µs per decision", ranked * 1e6))
        let chance = (try? FilterScheduler(config: { var c = SchedulerConfig(); c.driver = .chance; return c }())) ?? scheduler
        let c = time(40) { i in _ = chance.select(Self.request(i), from: big, using: &rng).pick }
        report("   10,000 hosts, chance driver", String(format: "%9.0f /s", 1 / c), String(format: "%8.1f µs per decision", c * 1e6))
        let multi = time(20) { i in _ = scheduler.select(Self.request(i), from: big, count: 10, using: &rng).hosts }
        report("   10,000 hosts, 10 instances in one request (consumed)", String(format: "%9.0f /s", 1 / multi),
               String(format: "%8.1f µs per request", multi * 1e6))
        print("   reproduce: \(reproduce)")
        print("")
    }

    /// `10000` → `10,000`.
    static func grouped(_ n: Int) -> String {
        var s = String(n), out = ""
        while s.count > 3 { out = "," + s.suffix(3) + out; s.removeLast(3) }
        return s + out
    }

    /// Mean seconds per call of `body` over `n` calls (after one warm-up call).
    func time(_ n: Int, _ body: (Int) -> Void) -> Double {
        body(0)
        let t0 = now()
        for i in 0..<n { body(i) }
        return (now() - t0) / Double(n)
    }

    /// `n` hosts of mixed sizes and usage; ~5% down, ~2% disabled, two zones, 10% aarch64.
    static func cloud(_ n: Int, _ rng: inout Mix) -> [HostSnapshot] {
        (0..<n).map { i in
            let vcpus = [8, 16, 32, 64].randomElement(using: &rng)!
            let ram = [16, 32, 64, 128, 256].randomElement(using: &rng)! * 1024
            let disk = [200, 500, 1000, 2000].randomElement(using: &rng)!
            let load = Double.random(in: 0...0.95, using: &rng)
            let roll = Int.random(in: 0..<100, using: &rng)
            return HostSnapshot(name: "node\(i)", state: roll < 5 ? .down : roll < 7 ? .disabled : .up,
                                vcpus: vcpus, ramMB: ram, diskGB: disk, vcpusUsed: Int(Double(vcpus * 4) * load),
                                ramMBUsed: Int(Double(ram) * load), diskGBUsed: Int(Double(disk) * load),
                                availabilityZone: i % 2 == 0 ? "nova" : "az2", hypervisorType: "qemu",
                                arch: i % 10 == 0 ? "aarch64" : "x86_64")
        }
    }

    /// Request `i` of the mix: four flavors; every 4th names a zone, every 5th an image
    /// architecture, every 7th belongs to an anti-affinity group of ten members.
    static func request(_ i: Int) -> RequestSpec {
        let flavors = [(1, 512, 1), (2, 2048, 20), (4, 8192, 40), (8, 16384, 80)]
        let f = flavors[i % flavors.count]
        var spec = RequestSpec(ResourceRequest(vcpus: f.0, ramMB: f.1, diskGB: f.2))
        if i % 4 == 0 { spec.availabilityZone = "az2" }
        if i % 5 == 0 { spec.imageArchitecture = "x86_64" }
        if i % 7 == 0 { spec.group = ServerGroupSpec(name: "g", policy: .antiAffinity, hosts: (0..<10).map { "node\($0 * 3)" }) }
        return spec
    }
}
