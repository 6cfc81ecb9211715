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
        _ = try engine.createInstance("vm", caller: root)
        XCTAssertEqual(waitStable("vm")?.status, .ACTIVE)
        driver.setFault(.slowSpawn(0.5))
        try engine.instanceAction("vm", action: "rebuild", caller: root)   // busy for ~0.5 s
        let woke = Mutex<[InstanceStatus?]>([])
        let all = expectation(description: "20 waiters")
        all.expectedFulfillmentCount = 20
        var tokens: [WaitToken] = []
        for _ in 0..<20 {
            tokens.append(engine.waitUntilStable("vm") { info in
                woke.withLock { $0.append(info?.status) }
                all.fulfill()
            })
        }
        wait(for: [all], timeout: 10)
        XCTAssertEqual(woke.withLock { $0 }, Array(repeating: .ACTIVE, count: 20))
        // A cancelled waiter is never called; a waiter on a deleted instance gets nil.
        try engine.instanceAction("vm", action: "rebuild", caller: root)
        let cancelled = engine.waitUntilStable("vm") { _ in XCTFail("a cancelled waiter was called") }
        cancelled.cancel()
        _ = waitStable("vm")
        let gone = expectation(description: "waiter on a deleted instance")
        try engine.instanceAction("vm", action: "rebuild", caller: root)
        tokens.append(engine.waitUntilStable("vm") { info in XCTAssertNil(info); gone.fulfill() })
        try engine.deleteInstance("vm", caller: root)
        wait(for: [gone], timeout: 10)
        driver.setFault(.none)
    }
}
