import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova server groups on three fake hosts: anti-affinity spreads members one per host and
/// refuses a fourth, also when all are built at once; affinity keeps them together.
final class ServerGroupTests: EngineTestCase {
    override func makeEngine() throws -> Engine {
        let hosts = ["small", "medium", "large"].map { "test://" + TestPaths.packageRoot + "/examples/hosts/\($0).xml" }
        return try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: hosts), driver: driver)
    }

    func testAntiAffinityPutsMembersOnDistinctHostsAndRefusesTheFourth() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try engine.createGroup("web", caller: root)
        XCTAssertEqual(engine.group("web")?.policy, "anti-affinity")
        try engine.setDefault(.group, "web", caller: root)
        for i in 1...4 { _ = try engine.createInstance("w\(i)", caller: root) }
        let infos = (1...4).compactMap { waitStable("w\($0)") }
        let placed = infos.filter { $0.status == .ACTIVE }
        XCTAssertEqual(placed.count, 3)
        XCTAssertEqual(Set(placed.map(\.host)), ["small", "medium", "large"])
        let refused = try XCTUnwrap(infos.first { $0.status == .ERROR })
        XCTAssertTrue(refused.fault.contains("ServerGroupAntiAffinityFilter removed"), refused.fault)
        XCTAssertEqual(engine.group("web")?.members, ["w1", "w2", "w3", "w4"])
        assertErrno(.busy) { try self.engine.deleteGroup("web", caller: self.root) }
        assertErrno(.busy) { try self.engine.setGroupPolicy("web", "affinity", caller: self.root) }
    }

    func testConcurrentAntiAffinityBuildsNeverShareAHost() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try engine.createGroup("spread", caller: root)
        try engine.setDefault(.group, "spread", caller: root)
        let names = (0..<12).map { "c\($0)" }
        let e = engine!, r = root
        DispatchQueue.concurrentPerform(iterations: names.count) { i in _ = try? e.createInstance(names[i], caller: r) }
        let active = names.compactMap { waitStable($0) }.filter { $0.status == .ACTIVE }
        XCTAssertEqual(active.count, 3)
        XCTAssertEqual(Set(active.map(\.host)).count, 3, "two members share a host: \(active.map(\.host))")
    }

    func testAffinityKeepsMembersTogether() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try engine.createGroup("db", caller: root)
        assertErrno(.invalid) { try self.engine.setGroupPolicy("db", "together", caller: self.root) }
        try engine.setGroupPolicy("db", "affinity", caller: root)
        try engine.setDefault(.group, "db", caller: root)
        for i in 1...4 { _ = try engine.createInstance("d\(i)", caller: root) }
        let hosts = (1...4).compactMap { waitStable("d\($0)") }.map(\.host)
        XCTAssertEqual(hosts.count, 4)
        XCTAssertEqual(Set(hosts).count, 1, "\(hosts)")
        for i in 1...4 { try engine.deleteInstance("d\(i)", caller: root) }
        for i in 1...4 { waitGone("d\(i)") }
        try engine.setDefault(.group, "", caller: root)
        try engine.deleteGroup("db", caller: root)
        XCTAssertNil(engine.group("db"))
    }
}
