import CloudCore
import Foundation
import Synchronization
@testable import LibvirtCompute
import XCTest

/// libvirt's domain lifecycle events reach `observeLifecycle`, including for changes made
/// through another connection (someone acting behind the cloud's back).
final class LifecycleEventTests: XCTestCase {
    func testEventsForChangesMadeThroughAnotherConnection() throws {
        let driver = LibvirtDriver(virtType: .qemu, stateDir: "/tmp")
        let watcher = try driver.open(uri: "test:///default")
        let other = try driver.open(uri: "test:///default")
        let seen = Mutex<[String]>([])
        watcher.observeLifecycle { uuid in seen.withLock { $0.append(uuid) } }
        let spec = Fixture.spec()
        _ = try other.spawn(spec)
        defer { try? other.destroy(uuid: spec.uuid) }
        try other.perform(.powerOff, uuid: spec.uuid)
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && seen.withLock({ $0.filter { $0 == spec.uuid }.count }) < 2 { usleep(20_000) }
        XCTAssertGreaterThanOrEqual(seen.withLock { $0.filter { $0 == spec.uuid }.count }, 2,
                                    "start and stop events: \(seen.withLock { $0 })")
    }
}

