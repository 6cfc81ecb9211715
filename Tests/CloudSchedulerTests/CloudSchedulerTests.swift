import CloudCore
import CloudScheduler
import XCTest

final class FilterSchedulerTests: XCTestCase {
    func host(_ name: String, ram: Int, ramUsed: Int = 0, vcpus: Int = 4, vcpusUsed: Int = 0, disk: Int = 100,
              state: HostState = .up) -> HostSnapshot {
        HostSnapshot(name: name, state: state, vcpus: vcpus, ramMB: ram, diskGB: disk,
                     vcpusUsed: vcpusUsed, ramMBUsed: ramUsed, diskGBUsed: 0)
    }

    func testSpreadsToMostFreeRAM() {
        let d = FilterScheduler().select(ResourceRequest(vcpus: 1, ramMB: 512, diskGB: 1),
                                         from: [host("a", ram: 4096, ramUsed: 2048), host("b", ram: 4096), host("c", ram: 1024)])
        XCTAssertEqual(d.ranked, ["b", "a", "c"])
    }

    func testFiltersReportWhatTheyRemoved() {
        let d = FilterScheduler().select(ResourceRequest(vcpus: 1, ramMB: 2048, diskGB: 1),
                                         from: [host("down", ram: 8192, state: .down), host("small", ram: 1024), host("ok", ram: 4096)])
        XCTAssertEqual(d.ranked, ["ok"])
        XCTAssertEqual(d.reports.map(\.removed), [1, 1, 0, 0])
        let none = FilterScheduler().select(ResourceRequest(vcpus: 1, ramMB: 99999, diskGB: 1), from: [host("a", ram: 1024)])
        XCTAssertTrue(none.ranked.isEmpty)
        XCTAssertTrue(none.failureReason.contains("No valid host was found"))
        XCTAssertTrue(none.failureReason.contains("RamFilter removed 1 (0 left)"), none.failureReason)
    }

    func testCPUOvercommitRatio() {
        let s = FilterScheduler(ratios: AllocationRatios(cpu: 4.0))
        let req = ResourceRequest(vcpus: 1, ramMB: 1, diskGB: 0)
        XCTAssertTrue(s.fits(req, on: host("a", ram: 100, vcpus: 2, vcpusUsed: 7)))
        XCTAssertFalse(s.fits(req, on: host("a", ram: 100, vcpus: 2, vcpusUsed: 8)))
    }

    func testNoHostsGivesClearReason() {
        let d = FilterScheduler().select(ResourceRequest(vcpus: 1, ramMB: 1, diskGB: 0), from: [])
        XCTAssertTrue(d.ranked.isEmpty)
        XCTAssertTrue(d.failureReason.contains("No valid host"))
    }
}
