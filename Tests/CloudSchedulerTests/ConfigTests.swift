import CloudCore
import CloudScheduler
import XCTest

/// The registry and `SchedulerConfig`: what a user writes into `/scheduler/*` files.
final class ConfigTests: XCTestCase {
    let registry = SchedulerRegistry.standard

    func invalid(_ body: () throws(CloudError) -> Void, _ contains: String, line: UInt = #line) {
        do throws(CloudError) {
            try body()
            XCTFail("no error", line: line)
        } catch {
            XCTAssertEqual(error.errno, .invalid, line: line)
            XCTAssertTrue(error.reason.contains(contains), error.reason, line: line)
        }
    }

    func testParseFilterLists() throws {
        XCTAssertEqual(try registry.parseFilters("RamFilter, corefilter\nComputeFilter\t"), ["RamFilter", "CoreFilter", "ComputeFilter"])
        XCTAssertEqual(try registry.parseFilters(" \n"), [])
        invalid({ () throws(CloudError) in _ = try registry.parseFilters("RamFilter NoSuchFilter") }, "unknown filter 'NoSuchFilter'")
        invalid({ () throws(CloudError) in _ = try registry.parseFilters("Bogus") }, "known filters: RetryFilter, AvailabilityZoneFilter")
        invalid({ () throws(CloudError) in _ = try registry.parseFilters("RamFilter ramfilter") }, "listed twice")
    }

    func testParseWeigherLists() throws {
        let w = try registry.parseWeighers("RAMWeigher=-1.5, cpuweigher")
        XCTAssertEqual(w.map(\.name), ["RAMWeigher", "CPUWeigher"])
        XCTAssertEqual(w.map(\.multiplier), [-1.5, nil])
        invalid({ () throws(CloudError) in _ = try registry.parseWeighers("RAMWeigher=lots") }, "must be a number")
        invalid({ () throws(CloudError) in _ = try registry.parseWeighers("GPUWeigher") }, "known weighers: RAMWeigher")
    }

    func testValidators() throws {
        XCTAssertEqual(try SchedulerConfig.validateRatio(" 1.5\n"), 1.5)
        for bad in ["0", "-1", "abc", "nan", "inf", ""] {
            invalid({ () throws(CloudError) in _ = try SchedulerConfig.validateRatio(bad) }, "greater than 0")
        }
        XCTAssertEqual(try SchedulerConfig.validateMultiplier("-2"), -2)
        XCTAssertEqual(try SchedulerConfig.validateCount("3\n"), 3)
        invalid({ () throws(CloudError) in _ = try SchedulerConfig.validateCount("0", "host_subset_size") }, "host_subset_size must be")
        XCTAssertEqual(try SchedulerConfig.validateBool("Yes"), true)
        XCTAssertEqual(try SchedulerConfig.validateDriver("chance_scheduler\n"), .chance)
        invalid({ () throws(CloudError) in _ = try SchedulerConfig.validateDriver("caching") }, "known: filter, chance")
        XCTAssertEqual(try ServerGroupPolicy(parsing: "Anti-Affinity\n"), .antiAffinity)
        invalid({ () throws(CloudError) in _ = try ServerGroupPolicy(parsing: "spread") }, "valid: affinity, anti-affinity")
    }

    func testKeysRoundTrip() throws {
        var c = SchedulerConfig()
        XCTAssertEqual(c.value(of: "filters"), SchedulerConfig.defaultFilters.joined(separator: "\n") + "\n")
        XCTAssertEqual(c.value(of: "cpu_allocation_ratio"), "4.0\n")
        XCTAssertEqual(c.value(of: "ram_weight_multiplier"), "1.0\n")
        XCTAssertNil(c.value(of: "nope"))
        let edits = ["driver": "chance", "filters": "ComputeFilter RamFilter", "weighers": "RAMWeigher=-1 DiskWeigher",
                     "host_subset_size": "4", "shuffle_best_same_weighed_hosts": "true", "max_attempts": "5",
                     "cpu_allocation_ratio": "16", "ram_allocation_ratio": "1.5", "disk_allocation_ratio": "2",
                     "disk_weight_multiplier": "0.5"]
        for (k, v) in edits { try c.set(k, to: v) }
        XCTAssertEqual(c.driver, .chance)
        XCTAssertEqual(c.enabledFilters, ["ComputeFilter", "RamFilter"])
        XCTAssertEqual(c.value(of: "weighers"), "RAMWeigher=-1.0\nDiskWeigher=0.5\n")
        XCTAssertEqual(c.ratios, AllocationRatios(cpu: 16, ram: 1.5, disk: 2))
        XCTAssertEqual(c.hostSubsetSize, 4)
        XCTAssertEqual(c.maxAttempts, 5)
        XCTAssertTrue(c.shuffleBestSameWeighedHosts)
        for k in SchedulerConfig.keys() { XCTAssertNotNil(c.value(of: k), k) }
        let before = c
        invalid({ () throws(CloudError) in try c.set("filters", to: "RamFilter Nope") }, "unknown filter")
        invalid({ () throws(CloudError) in try c.set("colour", to: "blue") }, "known: driver, filters")
        XCTAssertEqual(c, before, "a rejected write changes nothing")
        let s = try FilterScheduler(config: c)
        XCTAssertEqual(s.filters.map(\.name), ["ComputeFilter", "RamFilter"])
        XCTAssertEqual(s.weighers.map(\.multiplier), [-1, 0.5])
    }

    func testConfigBuiltInCodeIsValidated() {
        var c = SchedulerConfig()
        c.enabledFilters = ["RamFilter", "TypoFilter"]
        invalid({ () throws(CloudError) in _ = try FilterScheduler(config: c) }, "unknown filter 'TypoFilter'")
        c = SchedulerConfig()
        c.hostSubsetSize = 0
        invalid({ () throws(CloudError) in _ = try FilterScheduler(config: c) }, "host_subset_size")
        c = SchedulerConfig()
        c.ratios.ram = 0
        invalid({ () throws(CloudError) in _ = try FilterScheduler(config: c) }, "ram_allocation_ratio")
    }

    func testDefaultsMatchTheLegacyInitialisers() throws {
        let a = FilterScheduler(ratios: AllocationRatios(cpu: 2))
        var c = SchedulerConfig()
        c.ratios.cpu = 2
        let b = try FilterScheduler(config: c)
        XCTAssertEqual(a.config, b.config)
        XCTAssertEqual(a.filters.map(\.name), b.filters.map(\.name))
        XCTAssertEqual(a.weighers.map(\.name), b.weighers.map(\.name))
        XCTAssertEqual(a.filters.count, 9)
        XCTAssertEqual(a.weighers.count, 6)
    }

    /// Found by FuzzMountTests: the extremes `/scheduler/*` accepts (any finite multiplier,
    /// any count >= 1) crashed the daemon at the next decision: `Int(weight)` trapped while
    /// formatting /scheduler/last, and `host_subset_size + max_attempts` overflowed.
    func testExtremeAcceptedValuesDecideWithoutTrapping() throws {
        let edits = [("ram_weight_multiplier", "1e308"), ("cpu_weight_multiplier", "-1e308"),
                     ("disk_weight_multiplier", "9223372036854775807"),
                     ("max_attempts", "9223372036854775807"), ("host_subset_size", "9223372036854775807")]
        for (key, value) in edits {
            var c = SchedulerConfig()
            try c.set(key, to: value)
            try c.validate()
            let d = try FilterScheduler(config: c).select(spec(), from: [snap("a"), snap("b", ram: 8192), snap("c", vcpus: 8)])
            XCTAssertNotNil(d.pick, "\(key)=\(value)")
            XCTAssertTrue(d.describe().contains("pick:"), "\(key)=\(value)")
        }
    }
}
