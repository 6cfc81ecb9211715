import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import Synchronization
import XCTest

/// `wait`: every waiter wakes when the instance becomes stable, without polling.
final class WaitTests: EngineTestCase {
    func testEveryWaiterWakesOnceWithTheStableStatus() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        driver.setFault(.slowSpawn(0.5))
        try engine.instances.perform(try InstanceAction(parsing: "rebuild"), on: "vm", root)   // busy for ~0.5 s
        let woke = Mutex<[InstanceStatus?]>([])
        let all = expectation(description: "20 waiters")
        all.expectedFulfillmentCount = 20
        var tokens: [WaitToken] = []
        for _ in 0..<20 {
            tokens.append(engine.instances.waitUntilStable("vm", .system) { info in
                woke.withLock { $0.append(info?.status) }
                all.fulfill()
            })
        }
        wait(for: [all], timeout: 10)
        XCTAssertEqual(woke.withLock { $0 }, Array(repeating: .ACTIVE, count: 20))
        // A cancelled waiter is never called; a waiter on a deleted instance gets nil.
        try engine.instances.perform(try InstanceAction(parsing: "rebuild"), on: "vm", root)
        let cancelled = engine.instances.waitUntilStable("vm", .system) { _ in XCTFail("a cancelled waiter was called") }
        cancelled.cancel()
        _ = waitStable("vm")
        let gone = expectation(description: "waiter on a deleted instance")
        try engine.instances.perform(try InstanceAction(parsing: "rebuild"), on: "vm", root)
        tokens.append(engine.instances.waitUntilStable("vm", .system) { info in XCTAssertNil(info); gone.fulfill() })
        try engine.instances.delete("vm", root)
        wait(for: [gone], timeout: 10)
        driver.setFault(.none)
    }
}
