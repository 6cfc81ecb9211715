import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import Synchronization
import XCTest

/// Nova's periodic tasks on libvirt's test driver: power-state sync from lifecycle events
/// and sweeps, orphan domains, and the build timeout.
final class ReconcileTests: EngineTestCase {
    func boot(_ name: String) throws -> InstanceInfo {
        if engine.images.get("tiny", .system) == nil { try upload("tiny", rawDisk()) }
        _ = try engine.instances.create(name, root)
        return try XCTUnwrap(waitStable(name))
    }

    /// A second connection to the same fake host: "someone else" acting behind our back.
    func behindOurBack() throws -> any ComputeConnection { try driver.connect(uri: "test:///default") }

    func testDomainStoppedBehindOurBackShowsShutoffFromTheEvent() throws {
        let vm = try boot("vm")
        try behindOurBack().perform(.powerOff, uuid: vm.id)
        // No sweep is run here: the lifecycle event alone must do it.
        eventually("SHUTOFF from the lifecycle event", timeout: 5) { engine.instances.get("vm", .system)?.status == .SHUTOFF }
        XCTAssertEqual(engine.instances.get("vm", .system)?.powerState, .shutdown)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.power_synced vm") && $0.contains("behind") })
        // Started behind our back while SHUTOFF: the stored intent wins, it is powered off.
        try behindOurBack().perform(.start, uuid: vm.id)
        eventually("powered off again", timeout: 5) {
            (try? self.behindOurBack().powerState(uuid: vm.id)) == .shutdown
        }
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .SHUTOFF)
    }

    /// A sweep reads the idle SHUTOFF instance, and the user's start runs to its end before
    /// the sweep lists the host's domains: the running guest is the start's doing, and the
    /// sweep must neither power it off nor store SHUTOFF over ACTIVE (it did both, seen as
    /// `start` → SHUTOFF in the actions benchmark).
    func testASweepNeverUndoesAnActionThatRanWhileItListed() throws {
        let vm = try boot("vm")
        try engine.instances.perform(try InstanceAction(parsing: "stop"), on: "vm", root)
        XCTAssertEqual(waitStable("vm")?.status, .SHUTOFF)
        let cloud: Engine = engine
        let ran = Mutex(false)
        driver.beforeNextListing { [root] in
            do {
                try cloud.instances.perform(try InstanceAction(parsing: "start"), on: "vm", root)
                let stable = DispatchSemaphore(value: 0)
                _ = cloud.instances.waitUntilStable("vm", .system) { _ in stable.signal() }
                ran.withLock { $0 = stable.wait(timeout: .now() + 10) == .success }
            } catch { XCTFail("start refused: \(error)") }
        }
        engine.reconcileNow()
        XCTAssertTrue(ran.withLock { $0 }, "the start ran to its end between the sweep's read and its listing")
        XCTAssertEqual(try behindOurBack().powerState(uuid: vm.id), .running, "the guest the user started still runs")
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .ACTIVE)
        engine.reconcileNow()   // the next sweep sees the same and changes nothing
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .ACTIVE)
        XCTAssertFalse(engine.events.lines.contains { $0.contains("instance.power_synced vm") },
                       engine.events.lines.suffix(6).joined(separator: "\n"))
    }

    func testUndefinedDomainIsReportedAndStartRecreatesIt() throws {
        let vm = try boot("vm")
        try behindOurBack().destroy(uuid: vm.id)
        eventually("reported missing from the undefine event alone", timeout: 5) { engine.instances.get("vm", .system)?.fault.contains("missing") ?? false }
        XCTAssertEqual(engine.instances.get("vm", .system)?.status, .SHUTOFF)
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.missing vm") })
        try engine.instances.perform(try InstanceAction(parsing: "start"), on: "vm", root)
        let i = try XCTUnwrap(waitStable("vm"))
        XCTAssertEqual(i.status, .ACTIVE, i.fault)
        XCTAssertEqual(i.fault, "")
        XCTAssertTrue(try domainUUIDs().contains(vm.id))
    }

    func testOrphanDomainsAreReapedOrOnlyReported() throws {
        _ = try boot("vm")
        let conn = try behindOurBack()
        func orphan() throws -> String {
            let uuid = UUID().uuidString.lowercased()
            let prefix = String(try XCTUnwrap(self.engine.instances.get("vm", .system)?.domainXML.firstMatch(of: /<name>(cloudfs-[0-9a-f]+-)/)?.1))
            _ = try conn.spawn(DomainSpec(domainName: prefix + uuid, uuid: uuid, vcpus: 1, ramMB: 64,
                                          diskPath: stateDir + "/none", diskFormat: "qcow2", consolePath: stateDir + "/c.log"))
            return uuid
        }
        let stray = try orphan()
        let foreign = UUID().uuidString.lowercased()
        _ = try conn.spawn(DomainSpec(domainName: "not-ours", uuid: foreign, vcpus: 1, ramMB: 64,
                                      diskPath: stateDir + "/none", diskFormat: "qcow2", consolePath: stateDir + "/c.log"))
        defer { try? conn.destroy(uuid: foreign) }
        try engine.settings.setConfig(.runningDeletedInstanceAction, "log", root)
        engine.reconcileNow()
        XCTAssertTrue(try domainUUIDs().contains(stray), "log only reports")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.orphan_domain default") && $0.contains(stray) })
        try engine.settings.setConfig(.runningDeletedInstanceAction, "reap", root)
        engine.reconcileNow()
        let left = try domainUUIDs()
        XCTAssertFalse(left.contains(stray), "reaped")
        XCTAssertTrue(left.contains(foreign), "a domain not named like ours is never touched")
        XCTAssertTrue(left.contains(engine.instances.get("vm", .system)!.id))
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.orphan_reaped default") && $0.contains(stray) })
    }

    func testBuildStuckPastTheTimeoutGoesToErrorAndItsLateDomainIsReaped() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setConfig(.instanceBuildTimeout, "1", root)
        driver.setFault(.slowSpawn(2.5))
        let vm = try engine.instances.create("slow", root)
        Thread.sleep(forTimeInterval: 1.3)
        engine.reconcileNow()
        let i = try XCTUnwrap(engine.instances.get("slow", .system))
        XCTAssertEqual(i.status, .ERROR)
        XCTAssertTrue(i.fault.contains("timed out"), i.fault)
        XCTAssertTrue(i.ips.isEmpty, "the fixed IP was released")
        driver.setFault(.none)
        Thread.sleep(forTimeInterval: 2)   // the hung spawn returns and defines its domain
        engine.drain()
        engine.reconcileNow()
        XCTAssertFalse(try domainUUIDs().contains(vm.id), "the late domain is reaped")
        XCTAssertEqual(engine.instances.get("slow", .system)?.status, .ERROR)
    }
}
