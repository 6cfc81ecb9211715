import CloudCore
import CloudScheduler
import CloudTesting
import XCTest

/// No sequence of claims and releases oversubscribes a host, when every claim goes through
/// `fits` (the engine's claim-time re-check), whatever the ratios and the host states.
final class PropertyTests: XCTestCase {
    struct Claim { var host: Int; var request: ResourceRequest }

    func testClaimsThroughFitsNeverExceedCapacityTimesRatio() {
        var rng = SeededRandom(seed: 2024)
        var claimed = 0, refused = 0
        for trial in 0..<60 {
            let ratios = AllocationRatios(cpu: [1, 2, 4, 16].randomElement(using: &rng)!,
                                          ram: [1, 1, 1.5, 2].randomElement(using: &rng)!,
                                          disk: [1, 1, 1.2].randomElement(using: &rng)!)
            var config = SchedulerConfig()
            config.ratios = ratios
            config.hostSubsetSize = Int.random(in: 1...3, using: &rng)
            config.driver = trial % 5 == 0 ? .chance : .filter
            let s = try! FilterScheduler(config: config)
            var hosts = (0..<Int.random(in: 1...8, using: &rng)).map { i in
                snap("h\(i)", ram: Int.random(in: 1...16, using: &rng) * 512, vcpus: Int.random(in: 0...8, using: &rng),
                     disk: Int.random(in: 0...50, using: &rng))
            }
            var claims: [Claim] = []
            for _ in 0..<400 {
                let roll = Int.random(in: 0..<10, using: &rng)
                if roll < 6 {
                    let req = ResourceRequest(vcpus: Int.random(in: 0...4, using: &rng), ramMB: Int.random(in: 0...8, using: &rng) * 256,
                                              diskGB: Int.random(in: 0...10, using: &rng))
                    // Half the time the scheduler chooses, half the time a random host is asked.
                    let target = roll < 3
                        ? s.select(RequestSpec(req), from: hosts, using: &rng).pick.flatMap { p in hosts.firstIndex { $0.name == p } }
                        : Int.random(in: 0..<hosts.count, using: &rng)
                    if let t = target, s.fits(req, on: hosts[t]) {
                        hosts[t].consume(req)
                        claims.append(Claim(host: t, request: req))
                        claimed += 1
                    } else {
                        refused += 1
                    }
                } else if roll < 9, !claims.isEmpty {
                    let c = claims.remove(at: Int.random(in: 0..<claims.count, using: &rng))
                    hosts[c.host].vcpusUsed -= c.request.vcpus
                    hosts[c.host].ramMBUsed -= c.request.ramMB
                    hosts[c.host].diskGBUsed -= c.request.diskGB
                } else {
                    let h = Int.random(in: 0..<hosts.count, using: &rng)
                    hosts[h].state = [.up, .up, .down, .disabled].randomElement(using: &rng)!
                }
                for h in hosts {
                    XCTAssertLessThanOrEqual(Double(h.ramMBUsed), Double(h.ramMB) * ratios.ram, "trial \(trial) \(h)")
                    XCTAssertLessThanOrEqual(Double(h.vcpusUsed), Double(h.vcpus) * ratios.cpu, "trial \(trial) \(h)")
                    XCTAssertLessThanOrEqual(Double(h.diskGBUsed), Double(h.diskGB) * ratios.disk, "trial \(trial) \(h)")
                    XCTAssertGreaterThanOrEqual(min(h.ramMBUsed, h.vcpusUsed, h.diskGBUsed), 0)
                }
            }
        }
        XCTAssertGreaterThan(claimed, 1000, "the property was exercised")
        XCTAssertGreaterThan(refused, 1000)
    }

    func testEveryPickFitsAndEveryRefusalIsExplained() {
        var rng = SeededRandom(seed: 77)
        let s = FilterScheduler()
        for _ in 0..<300 {
            let hosts = (0..<Int.random(in: 0...12, using: &rng)).map { i in
                snap("h\(i)", ram: 4096, ramUsed: Int.random(in: 0...16, using: &rng) * 256, vcpus: 2,
                     vcpusUsed: Int.random(in: 0...8, using: &rng), state: Bool.random(using: &rng) ? .up : .down)
            }
            let req = ResourceRequest(vcpus: Int.random(in: 1...3, using: &rng), ramMB: Int.random(in: 1...8, using: &rng) * 256, diskGB: 1)
            let d = s.select(RequestSpec(req), from: hosts, using: &rng)
            XCTAssertEqual(Set(d.ranked), Set(hosts.filter { s.fits(req, on: $0) }.map(\.name)))
            if d.pick == nil { XCTAssertTrue(d.failureReason.hasPrefix("No valid host was found")) }
        }
    }
}
