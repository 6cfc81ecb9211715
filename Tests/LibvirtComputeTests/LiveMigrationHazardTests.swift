@testable import LibvirtCompute
import XCTest

/// Which guests move paused instead of live: TCG guests under a QEMU that loses their
/// writes in a live migration (before 9.0); KVM guests and newer QEMUs move live.
final class LiveMigrationHazardTests: XCTestCase {
    func testTCGGuestsUnderQEMUBefore9MovePaused() throws {
        let why = try XCTUnwrap(LibvirtConnection.tcgLiveMigrationHazard(domainType: "qemu", hypervisorVersion: 7_002_022))
        XCTAssertTrue(why.hasPrefix("QEMU 7.2.22 loses a TCG guest's memory writes"), why)
        XCTAssertTrue(why.hasSuffix("so the guest is paused while it moves"), why)
        XCTAssertNotNil(LibvirtConnection.tcgLiveMigrationHazard(domainType: "qemu", hypervisorVersion: 8_002_999))
    }

    func testKVMGuestsAndQEMU9AndLaterMoveLive() {
        XCTAssertNil(LibvirtConnection.tcgLiveMigrationHazard(domainType: "kvm", hypervisorVersion: 7_002_022))
        XCTAssertNil(LibvirtConnection.tcgLiveMigrationHazard(domainType: "qemu", hypervisorVersion: 9_000_000))
        XCTAssertNil(LibvirtConnection.tcgLiveMigrationHazard(domainType: "qemu", hypervisorVersion: 10_001_000))
        XCTAssertNil(LibvirtConnection.tcgLiveMigrationHazard(domainType: "test", hypervisorVersion: 2))
    }
}
