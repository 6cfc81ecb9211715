import CloudCore
import CloudScheduler
import CloudTesting
import XCTest

/// The pick: host_subset_size, ties, alternates, multi-instance requests, server groups,
/// the chance driver, and the decision's text.
final class SelectionTests: XCTestCase {
    /// Hosts a0...a(n-1), a0 with the most free RAM, each next one 256 MiB less.
    func ladder(_ n: Int) -> [HostSnapshot] { (0..<n).map { snap("a\($0)", ram: 8192, ramUsed: $0 * 256) } }

    func testHostSubsetSizePicksAmongTheBestNWithASeededRandom() {
        let s = scheduler { $0.hostSubsetSize = 3 }
        var rng = SeededRandom(seed: 42)
        var seen: [String: Int] = [:]
        for _ in 0..<300 { seen[s.select(spec(), from: ladder(6), using: &rng).pick!, default: 0] += 1 }
        XCTAssertEqual(Set(seen.keys), ["a0", "a1", "a2"])
        XCTAssertTrue(seen.values.allSatisfy { $0 > 60 }, "roughly uniform: \(seen)")
        var r1 = SeededRandom(seed: 7), r2 = SeededRandom(seed: 7)
        let p1 = (0..<20).map { _ in s.select(spec(), from: ladder(6), using: &r1).pick! }
        let p2 = (0..<20).map { _ in s.select(spec(), from: ladder(6), using: &r2).pick! }
        XCTAssertEqual(p1, p2, "same seed, same picks")
        XCTAssertEqual(FilterScheduler().select(spec(), from: ladder(6), using: &r1).pick, "a0", "subset 1 is deterministic")
    }

    func testSubsetLargerThanTheCandidates() {
        let s = scheduler { $0.hostSubsetSize = 50 }
        var rng = SeededRandom(seed: 1)
        let picks = Set((0..<100).map { _ in s.select(spec(), from: ladder(3), using: &rng).pick! })
        XCTAssertEqual(picks, ["a0", "a1", "a2"])
    }

    func testShuffleBestSameWeighedHosts() {
        let s = scheduler { $0.shuffleBestSameWeighedHosts = true }
        var rng = SeededRandom(seed: 3)
        let hosts = (0..<5).map { snap("h\($0)") } + [snap("small", ram: 1024)]
        let picks = Set((0..<200).map { _ in s.select(spec(), from: hosts, using: &rng).pick! })
        XCTAssertEqual(picks, ["h0", "h1", "h2", "h3", "h4"])
    }

    func testPickAndAlternatesAreTheHeadOfTheFullRanking() {
        var rng = SeededRandom(seed: 99)
        for n in [1, 2, 5, 40, 300] {
            let hosts = (0..<n).map { i in
                snap("h\(i)", ram: [2048, 4096, 8192][i % 3], ramUsed: Int.random(in: 0...4, using: &rng) * 256,
                     vcpus: 8, vcpusUsed: Int.random(in: 0...8, using: &rng), disk: 100, diskUsed: Int.random(in: 0...3, using: &rng) * 10)
            }
            let d = FilterScheduler().select(spec(), from: hosts)
            XCTAssertEqual([d.pick!] + d.alternates, Array(d.ranked.prefix(3)), "n=\(n)")
            XCTAssertEqual(d.ranked.count, n)
            XCTAssertEqual(d.top.map(\.name), [d.pick!] + d.alternates)
        }
    }

    func testMultiInstanceRequestConsumesBetweenPicks() {
        let s = scheduler { $0.weighers = ["RAMWeigher"] }
        let hosts = [snap("a", ram: 4096), snap("b", ram: 3072)]
        var rng = SeededRandom(seed: 5)
        let three = s.select(spec(ram: 2048), from: hosts, count: 3, using: &rng)
        XCTAssertTrue(three.isComplete)
        XCTAssertEqual(three.hosts, ["a", "b", "a"])
        XCTAssertNil(three.failureReason)
        XCTAssertEqual(three.decisions[1].ranked, ["b", "a"], "the second pick saw the first one's consumption")
        XCTAssertEqual(three.decisions[1].weighed.map(\.name), ["a", "b"])
        let four = s.select(spec(ram: 2048), from: hosts, count: 4, using: &rng)
        XCTAssertFalse(four.isComplete)
        XCTAssertEqual(four.decisions.count, 4)
        XCTAssertTrue(four.failureReason!.contains("RamFilter removed 2 (0 left)"), four.failureReason!)
        XCTAssertTrue(four.failureReason!.contains("instance 4 of 4"))
        XCTAssertEqual(hosts[0].ramMBUsed, 0, "the caller's snapshots are untouched")
    }

    func testAntiAffinityThreeHostsFourMembers() {
        let hosts = [snap("a"), snap("b"), snap("c")]
        var s = spec()
        s.group = ServerGroupSpec(name: "web", policy: .antiAffinity, hosts: ["a", "b", "c"])
        let fourth = FilterScheduler().select(s, from: hosts)
        XCTAssertNil(fourth.pick)
        XCTAssertTrue(fourth.failureReason.contains("ServerGroupAntiAffinityFilter removed 3 (0 left)"), fourth.failureReason)
        // The same within one request of four.
        s.group?.hosts = []
        let p = FilterScheduler().select(s, from: hosts, count: 4)
        XCTAssertEqual(Set(p.hosts), ["a", "b", "c"])
        XCTAssertEqual(p.hosts.count, 3)
        XCTAssertTrue(p.failureReason!.contains("ServerGroupAntiAffinityFilter removed 3 (0 left)"))
    }

    func testAffinityKeepsARequestOnOneHost() {
        var s = spec()
        s.group = ServerGroupSpec(name: "db", policy: .affinity)
        let p = FilterScheduler().select(s, from: [snap("a"), snap("b", ram: 8192), snap("c")], count: 3)
        XCTAssertEqual(p.hosts, ["b", "b", "b"])
    }

    func testChanceDriverPicksRandomlyAmongHostsThatFit() {
        let s = scheduler { $0.driver = .chance }
        let hosts = [snap("a"), snap("b"), snap("down", state: .down), snap("full", ram: 256), snap("c")]
        var rng = SeededRandom(seed: 11)
        let picks = Set((0..<200).map { _ in s.select(spec(), from: hosts, using: &rng).pick! })
        XCTAssertEqual(picks, ["a", "b", "c"])
        let d = s.select(spec(), from: hosts, using: &rng)
        XCTAssertEqual(d.reports.map(\.filter), ["ComputeFilter", "RamFilter", "CoreFilter", "DiskFilter"])
        XCTAssertEqual(Set(d.ranked), ["a", "b", "c"])
        let p = s.select(spec(), from: hosts, count: 3, using: &rng)
        XCTAssertEqual(Set(p.hosts), ["a", "b", "c"], "distinct hosts while there are enough, as random.sample")
    }

    func testDescribeShowsFiltersWeightsAndPick() {
        let d = FilterScheduler().select(spec(ram: 2048), from: [snap("down", state: .down), snap("small", ram: 1024),
                                                                 snap("big", ram: 8192), snap("mid")])
        let text = d.describe()
        XCTAssertTrue(text.contains("candidates: 4"), text)
        XCTAssertTrue(text.contains("ComputeFilter"), text)
        XCTAssertTrue(text.contains("removed 1, 2 left"), text)
        XCTAssertTrue(text.contains("weighers: RAMWeigher×1 CPUWeigher×1 DiskWeigher×1"), text)
        XCTAssertTrue(text.contains("pick:      big"), text)
        XCTAssertTrue(text.contains("alternate: mid"), text)
        XCTAssertTrue(text.hasSuffix("\n"))
        let none = FilterScheduler().select(spec(ram: 99999), from: [snap("a")]).describe()
        XCTAssertTrue(none.contains("No valid host was found"), none)
    }
}
