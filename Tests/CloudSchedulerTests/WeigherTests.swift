import CloudCore
import CloudScheduler
import XCTest

/// Weighers and Nova's normalisation: each weigher's raw numbers map onto [0, 1] across the
/// hosts that passed, times its multiplier, summed.
final class WeigherTests: XCTestCase {
    func onlyRAM(_ m: Double = 1) -> FilterScheduler { scheduler { $0.weighers = ["RAMWeigher"]; $0.multipliers = ["RAMWeigher": m] } }

    func testNormalizeEdgeCases() {
        XCTAssertEqual(Normalization.normalize([]), [])
        XCTAssertEqual(Normalization.normalize([5]), [0], "a single value is 0")
        XCTAssertEqual(Normalization.normalize([3, 3, 3]), [0, 0, 0], "all equal are 0")
        XCTAssertEqual(Normalization.normalize([1, 2, 3]), [0, 0.5, 1])
        XCTAssertEqual(Normalization.normalize([-4, 0, 4]), [0, 0.5, 1])
        XCTAssertEqual(Normalization.normalize([2, 4], minval: 0), [0.5, 1], "a declared minval replaces the minimum")
        XCTAssertEqual(Normalization.normalize([2, 4], maxval: 8), [0, 1.0 / 3])
        XCTAssertEqual(Normalization.normalize([0, 0], minval: 0), [0, 0])
    }

    func testRAMWeigherNormalisesFromZero() {
        let d = onlyRAM().select(spec(ram: 1), from: [snap("a", ramUsed: 2048), snap("b"), snap("c", ram: 1024)])
        XCTAssertEqual(d.ranked, ["b", "a", "c"])
        let w = weights(d)
        XCTAssertEqual(w["b"]!, 1, accuracy: 1e-9)
        XCTAssertEqual(w["a"]!, 0.5, accuracy: 1e-9)
        XCTAssertEqual(w["c"]!, 0.25, accuracy: 1e-9)
    }

    func testAllEqualHostsWeighTheSameAndTiesGoByName() {
        let hosts = [snap("c"), snap("a"), snap("b")]
        let d = FilterScheduler().select(spec(), from: hosts)
        XCTAssertEqual(Set(weights(d).values).count, 1)
        XCTAssertEqual(d.ranked, ["a", "b", "c"])
        // Soft anti-affinity with no members anywhere: every raw weight 0 → all normalise to 0.
        let s = scheduler { $0.weighers = ["ServerGroupSoftAntiAffinityWeigher"] }
        var sp = spec()
        sp.group = ServerGroupSpec(name: "g", policy: .softAntiAffinity)
        XCTAssertEqual(Set(weights(s.select(sp, from: hosts)).values), [0])
    }

    func testSingleHostIsNotWeighed() {
        let d = FilterScheduler().select(spec(), from: [snap("a"), snap("down", state: .down)])
        XCTAssertEqual(d.weighed.map(\.weight), [0])
        XCTAssertTrue(d.weighers.isEmpty)
    }

    func testNegativeMultiplierStacks() {
        let hosts = [snap("a", ramUsed: 2048), snap("b"), snap("c", ram: 1024)]
        XCTAssertEqual(onlyRAM(-1).select(spec(ram: 1), from: hosts).ranked, ["c", "a", "b"])
        XCTAssertEqual(onlyRAM(-1).select(spec(ram: 1), from: hosts).weighed.map(\.weight), [-0.5, -1, -0.25])
    }

    func testZeroMultiplierSkipsTheWeigher() {
        let d = onlyRAM(0).select(spec(), from: [snap("a"), snap("b", ramUsed: 100)])
        XCTAssertTrue(d.weighers.isEmpty)
        XCTAssertEqual(d.ranked, ["a", "b"])
    }

    func testCPUWeigherCountsFreeVCPUsAfterTheRatio() {
        let s = scheduler { $0.weighers = ["CPUWeigher"] }
        // a: 2 × 4 - 0 = 8 free; b: 4 × 4 - 10 = 6 free.
        let d = s.select(spec(), from: [snap("a", vcpus: 2), snap("b", vcpus: 4, vcpusUsed: 10)])
        XCTAssertEqual(d.ranked, ["a", "b"])
        XCTAssertEqual(weights(d)["b"]!, 0.75, accuracy: 1e-9)
    }

    func testDiskWeigherPrefersFreeDisk() {
        let s = scheduler { $0.weighers = ["DiskWeigher"] }
        let d = s.select(spec(), from: [snap("a", disk: 100, diskUsed: 80), snap("b", disk: 50)])
        XCTAssertEqual(d.ranked, ["b", "a"])
        XCTAssertEqual(weights(d)["a"]!, 0.4, accuracy: 1e-9)
    }

    func testOvercommittedHostClampsToMinvalZero() {
        // Ratio lowered after claims: free RAM is negative, Nova clamps it to minval 0.
        let s = scheduler { $0.enabledFilters = ["ComputeFilter"]; $0.weighers = ["RAMWeigher"] }
        let d = s.select(spec(), from: [snap("a", ramUsed: 5000), snap("b", ramUsed: 2048)])
        XCTAssertEqual(weights(d)["a"]!, 0)
        XCTAssertEqual(weights(d)["b"]!, 1)
    }

    func testMultipliersAreSummed() {
        // a has more RAM free, b more vCPUs free; doubling the CPU multiplier makes b win.
        let hosts = [snap("a", ram: 8192, vcpus: 4, vcpusUsed: 12), snap("b", ram: 4096, vcpus: 4)]
        let ramFirst = scheduler { $0.weighers = ["RAMWeigher", "CPUWeigher"]; $0.multipliers = ["CPUWeigher": 0.5] }
        let cpuFirst = scheduler { $0.weighers = ["RAMWeigher", "CPUWeigher"]; $0.multipliers = ["CPUWeigher": 2] }
        XCTAssertEqual(ramFirst.select(spec(), from: hosts).pick, "a")
        let d = cpuFirst.select(spec(), from: hosts)
        XCTAssertEqual(d.pick, "b")
        // b: RAM 4096/8192 = 0.5, CPU 16/16 × 2 = 2 → 2.5; the parts add up to it.
        XCTAssertEqual(d.top[0].weight, 2.5, accuracy: 1e-9)
        XCTAssertEqual(d.top[0].parts.reduce(0, +), d.top[0].weight, accuracy: 1e-9)
        XCTAssertEqual(d.weighers.map(\.name), ["RAMWeigher", "CPUWeigher"])
    }

    func testSoftAffinityWeighers() {
        let hosts = [snap("a"), snap("b"), snap("c")]
        var s = spec()
        s.group = ServerGroupSpec(name: "g", policy: .softAffinity, hosts: ["c", "c", "b"])
        XCTAssertEqual(FilterScheduler().select(s, from: hosts).pick, "c")
        s.group?.policy = .softAntiAffinity
        XCTAssertEqual(FilterScheduler().select(s, from: hosts).ranked, ["a", "b", "c"])
        s.group?.policy = .antiAffinity
        XCTAssertEqual(FilterScheduler().select(s, from: hosts).ranked, ["a"], "hard policy: a filter, not a weigher")
    }
}

/// The image cache weigher: hosts holding the image (or reading the controller's image
/// store) first; irrelevant for requests that name no image.
final class ImageCacheWeigherTests: XCTestCase {
    func testPrefersHostsHoldingTheImage() {
        var cold = snap("a"), warm = snap("b"), shared = snap("c", ramUsed: 2048)
        cold.cachedImages = ["other"]
        warm.cachedImages = ["img"]
        var sp = spec()
        sp.imageID = "img"
        let s = scheduler { $0.weighers = ["ImageCacheWeigher"] }
        let d = s.select(sp, from: [cold, warm, shared])
        XCTAssertEqual(d.ranked, ["b", "c", "a"], "holders by name, then the host that must upload")
        XCTAssertEqual(weights(d)["a"], 0)
        XCTAssertEqual(weights(d)["b"], 1)
        XCTAssertTrue(shared.holdsImage("anything"), "a host reading the image store holds every image")
        XCTAssertFalse(cold.holdsImage("img"))
    }

    func testOutweighsFreeRAMWithItsMultiplier() {
        var warm = snap("a", ramUsed: 2048)
        warm.cachedImages = ["img"]
        var cold = snap("b")
        cold.cachedImages = []
        var sp = spec()
        sp.imageID = "img"
        let s = scheduler { $0.weighers = ["RAMWeigher", "ImageCacheWeigher"]; $0.multipliers = ["ImageCacheWeigher": 10] }
        XCTAssertEqual(s.select(sp, from: [warm, cold]).ranked, ["a", "b"])
        sp.imageID = nil
        XCTAssertEqual(s.select(sp, from: [warm, cold]).ranked, ["b", "a"], "no image: only free RAM counts")
    }
}
