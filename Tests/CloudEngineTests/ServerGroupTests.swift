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
        return try Engine(config: engineConfiguration(hostURIs: hosts), driver: driver)
    }

    func testAntiAffinityPutsMembersOnDistinctHostsAndRefusesTheFourth() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.groups.create("web", root)
        XCTAssertEqual(engine.groups.get("web", .system)?.policy, "anti-affinity")
        try engine.settings.setDefault(.group, "web", root)
        for i in 1...4 { _ = try engine.instances.create("w\(i)", root) }
        let infos = (1...4).compactMap { waitStable("w\($0)") }
        let placed = infos.filter { $0.status == .ACTIVE }
        XCTAssertEqual(placed.count, 3)
        XCTAssertEqual(Set(placed.map(\.host)), ["small", "medium", "large"])
        let refused = try XCTUnwrap(infos.first { $0.status == .ERROR })
        XCTAssertTrue(refused.fault.contains("ServerGroupAntiAffinityFilter removed"), refused.fault)
        XCTAssertEqual(engine.groups.get("web", .system)?.members, ["w1", "w2", "w3", "w4"])
        assertErrno(.busy) { try self.engine.groups.delete("web", self.root) }
        assertErrno(.busy) { try self.engine.groups.setPolicy("web", "affinity", self.root) }
    }

    func testConcurrentAntiAffinityBuildsNeverShareAHost() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.groups.create("spread", root)
        try engine.settings.setDefault(.group, "spread", root)
        let names = (0..<12).map { "c\($0)" }
        let e = engine!, r = root
        DispatchQueue.concurrentPerform(iterations: names.count) { i in _ = try? e.instances.create(names[i], r) }
        let active = names.compactMap { waitStable($0) }.filter { $0.status == .ACTIVE }
        XCTAssertEqual(active.count, 3)
        XCTAssertEqual(Set(active.map(\.host)).count, 3, "two members share a host: \(active.map(\.host))")
    }

    func testAffinityKeepsMembersTogether() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.groups.create("db", root)
        assertErrno(.invalid) { try self.engine.groups.setPolicy("db", "together", self.root) }
        try engine.groups.setPolicy("db", "affinity", root)
        try engine.settings.setDefault(.group, "db", root)
        for i in 1...4 { _ = try engine.instances.create("d\(i)", root) }
        let hosts = (1...4).compactMap { waitStable("d\($0)") }.map(\.host)
        XCTAssertEqual(hosts.count, 4)
        XCTAssertEqual(Set(hosts).count, 1, "\(hosts)")
        for i in 1...4 { try engine.instances.delete("d\(i)", root) }
        for i in 1...4 { waitGone("d\(i)") }
        try engine.settings.setDefault(.group, "", root)
        try engine.groups.delete("db", root)
        XCTAssertNil(engine.groups.get("db", .system))
    }
}
