import CloudCore
import CloudScheduler
import XCTest

/// One test per filter, each against Nova's semantics.
final class FilterTests: XCTestCase {
    let ctx = FilterContext(spec: spec(), ratios: AllocationRatios())

    func testComputeFilterWantsUpAndEnabled() {
        XCTAssertTrue(ComputeFilter().passes(snap("a"), spec(), ctx))
        XCTAssertFalse(ComputeFilter().passes(snap("a", state: .down), spec(), ctx))
        XCTAssertFalse(ComputeFilter().passes(snap("a", state: .disabled), spec(), ctx))
    }

    func testRamFilterUsesTheRatioAtTheBoundary() {
        let c = FilterContext(spec: spec(), ratios: AllocationRatios(ram: 1.5))
        XCTAssertTrue(RamFilter().passes(snap("a", ram: 1024, ramUsed: 1000), spec(ram: 536), c))
        XCTAssertFalse(RamFilter().passes(snap("a", ram: 1024, ramUsed: 1000), spec(ram: 537), c))
        XCTAssertFalse(RamFilter().passes(snap("a", ram: 1024, ramUsed: 1000), spec(ram: 25), ctx))
    }

    func testCoreFilterOvercommitsFourToOneByDefault() {
        XCTAssertTrue(CoreFilter().passes(snap("a", vcpus: 2, vcpusUsed: 7), spec(vcpus: 1), ctx))
        XCTAssertFalse(CoreFilter().passes(snap("a", vcpus: 2, vcpusUsed: 7), spec(vcpus: 2), ctx))
        XCTAssertFalse(CoreFilter().passes(snap("a", vcpus: 0), spec(vcpus: 1), ctx), "unknown capacity takes nothing")
    }

    func testDiskFilterUsesTheRatio() {
        XCTAssertTrue(DiskFilter().passes(snap("a", disk: 10, diskUsed: 5), spec(disk: 5), ctx))
        XCTAssertFalse(DiskFilter().passes(snap("a", disk: 10, diskUsed: 5), spec(disk: 6), ctx))
        let c = FilterContext(spec: spec(), ratios: AllocationRatios(disk: 2))
        XCTAssertTrue(DiskFilter().passes(snap("a", disk: 10, diskUsed: 5), spec(disk: 15), c))
    }

    func testAvailabilityZoneFilter() {
        var s = spec()
        XCTAssertFalse(AvailabilityZoneFilter().isRelevant(to: s))
        s.availabilityZone = "az1"
        XCTAssertTrue(AvailabilityZoneFilter().isRelevant(to: s))
        XCTAssertTrue(AvailabilityZoneFilter().passes(snap("a", zone: "az1"), s, ctx))
        XCTAssertFalse(AvailabilityZoneFilter().passes(snap("a"), s, ctx))
        s.availabilityZone = "nova"
        XCTAssertTrue(AvailabilityZoneFilter().passes(snap("a"), s, ctx), "hosts default to zone nova")
    }

    func testImagePropertiesFilterComparesCanonicalNames() {
        let f = ImagePropertiesFilter()
        var s = spec()
        XCTAssertFalse(f.isRelevant(to: s))
        s.setImageProperties(["architecture": "amd64", "hypervisor_type": "QEMU"])
        XCTAssertEqual(s.imageArchitecture, "amd64")
        let c = FilterContext(spec: s, ratios: AllocationRatios())
        XCTAssertTrue(f.isRelevant(to: s))
        XCTAssertTrue(f.passes(snap("a"), s, c))
        XCTAssertTrue(f.passes(snap("a", hv: "QEMU", arch: "X86_64"), s, c))
        XCTAssertFalse(f.passes(snap("a", arch: "aarch64"), s, c))
        XCTAssertFalse(f.passes(snap("a", hv: "kvm"), s, c))
        XCTAssertFalse(f.passes(snap("a", hv: ""), s, c), "a host advertising no hypervisor type fails, as in Nova")
        var archOnly = spec()
        archOnly.setImageProperties(["hw_architecture": "aarch64"])
        let c2 = FilterContext(spec: archOnly, ratios: AllocationRatios())
        XCTAssertTrue(f.passes(snap("a", hv: "", arch: "arm64"), archOnly, c2), "hypervisor type unchecked when unset")
        XCTAssertEqual(ImageProperties.canonicalArchitecture("i386"), "i686")
        XCTAssertEqual(ImageProperties.canonicalHypervisorType("xapi"), "xen")
    }

    func testServerGroupAffinityFilter() {
        var s = spec()
        s.group = ServerGroupSpec(name: "g", policy: .affinity)
        XCTAssertFalse(ServerGroupAffinityFilter().isRelevant(to: s), "first member goes anywhere")
        s.group?.hosts = ["b"]
        let c = FilterContext(spec: s, ratios: AllocationRatios())
        XCTAssertTrue(ServerGroupAffinityFilter().passes(snap("b"), s, c))
        XCTAssertFalse(ServerGroupAffinityFilter().passes(snap("a"), s, c))
        s.group?.policy = .antiAffinity
        XCTAssertFalse(ServerGroupAffinityFilter().isRelevant(to: s))
        XCTAssertTrue(ServerGroupAffinityFilter().passes(snap("a"), s, c))
    }

    func testServerGroupAntiAffinityFilterCountsMembersPerHost() {
        var s = spec()
        s.group = ServerGroupSpec(name: "g", policy: .antiAffinity, hosts: ["a", "a", "b"])
        var c = FilterContext(spec: s, ratios: AllocationRatios())
        XCTAssertFalse(ServerGroupAntiAffinityFilter().passes(snap("a"), s, c))
        XCTAssertFalse(ServerGroupAntiAffinityFilter().passes(snap("b"), s, c))
        XCTAssertTrue(ServerGroupAntiAffinityFilter().passes(snap("c"), s, c))
        s.group?.maxServerPerHost = 2
        c = FilterContext(spec: s, ratios: AllocationRatios())
        XCTAssertFalse(ServerGroupAntiAffinityFilter().passes(snap("a"), s, c))
        XCTAssertTrue(ServerGroupAntiAffinityFilter().passes(snap("b"), s, c))
    }

    func testRetryFilterSkipsTriedHosts() {
        var s = spec()
        XCTAssertFalse(RetryFilter().isRelevant(to: s))
        s.triedHosts = ["a"]
        XCTAssertFalse(RetryFilter().passes(snap("a"), s, ctx))
        XCTAssertTrue(RetryFilter().passes(snap("b"), s, ctx))
    }

    func testIrrelevantFiltersAreSkippedNotReported() {
        var s = spec()
        s.availabilityZone = "az1"
        let d = FilterScheduler().select(s, from: [snap("a", zone: "az1"), snap("b")])
        XCTAssertEqual(d.reports.map(\.filter), ["AvailabilityZoneFilter", "ComputeFilter", "RamFilter", "CoreFilter", "DiskFilter"])
        XCTAssertEqual(d.skipped, ["RetryFilter", "ImagePropertiesFilter", "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter"])
        XCTAssertEqual(d.ranked, ["a"])
    }

    func testIgnoreHostsAndRequestedDestination() {
        var s = spec()
        s.ignoreHosts = ["a"]
        let hosts = [snap("a", ram: 8192), snap("b"), snap("c", ram: 2048)]
        XCTAssertEqual(FilterScheduler().select(s, from: hosts).ranked, ["b", "c"])
        s.requestedHost = "c"
        let d = FilterScheduler().select(s, from: hosts)
        XCTAssertEqual(d.ranked, ["c"])
        XCTAssertEqual(d.reports.prefix(2).map(\.filter), ["ignore_hosts", "requested_destination"])
        s.requestedHost = "a"
        XCTAssertTrue(FilterScheduler().select(s, from: hosts).failureReason.contains("requested_destination removed 2 (0 left)"))
    }

    func testPassesFiltersRechecksGroupAndZone() {
        var s = spec()
        s.group = ServerGroupSpec(name: "g", policy: .antiAffinity, hosts: ["a"])
        XCTAssertFalse(FilterScheduler().passesFilters(s, on: snap("a")))
        XCTAssertTrue(FilterScheduler().passesFilters(s, on: snap("b")))
        XCTAssertFalse(FilterScheduler().passesFilters(s, on: snap("b", ram: 100)))
    }
}
