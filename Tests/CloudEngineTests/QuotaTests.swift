import CloudCore
import CloudEngine
import Foundation
import XCTest

/// Nova's counting quotas: usage is counted inside the transaction that claims, so
/// concurrent requests can never pass a limit and nothing is reserved to leak.
final class QuotaTests: EngineTestCase {
    override func setUpWithError() throws {
        try super.setUpWithError()
        try upload("tiny", rawDisk())
        try engine.images.setVisibility("tiny", .public, root)
        try engine.settings.setDefault(.flavor, "m1.nano", root)
    }

    func testTwentyConcurrentMkdirsInAProjectOfFiveGiveExactlyFive() throws {
        let alice = try register("alice", in: "web")
        XCTAssertEqual(engine.projects.get("web", root)?.quota[.instances], 10, "Nova's default")
        try engine.projects.setQuota("web", .instances, 5, root)
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var made = 0, refused: [CloudError] = []
        }
        let out = Outcomes()
        let engine: Engine = self.engine
        DispatchQueue.concurrentPerform(iterations: 20) { i in
            do throws(CloudError) {
                _ = try engine.instances.create("q\(i)", alice)
                out.lock.lock(); out.made += 1; out.lock.unlock()
            } catch {
                out.lock.lock(); out.refused.append(error); out.lock.unlock()
            }
        }
        XCTAssertEqual(out.made, 5)
        XCTAssertEqual(out.refused.count, 15)
        XCTAssertTrue(out.refused.allSatisfy { $0.errno == .quota && $0.reason == "Quota exceeded for instances: requested 1, used 5 of 5" },
                      out.refused.map(\.reason).joined(separator: "\n"))
        XCTAssertEqual(engine.events.lines.filter { $0.contains("Quota exceeded for instances: requested 1, used 5 of 5") }.count, 15)
        XCTAssertEqual(engine.instances.list(root).count, 5)
        let usage = try XCTUnwrap(engine.projects.get("web", alice)).usage
        XCTAssertEqual(usage[.instances], 5)
        XCTAssertEqual(usage[.cores], 5)
        XCTAssertEqual(usage[.ramMB], 5 * 128)
        for i in engine.instances.list(root) { XCTAssertEqual(waitStable(i.name)?.status, .ACTIVE) }

        // Lowered below usage: accepted, and only new requests are refused.
        try engine.projects.setQuota("web", .instances, 3, root)
        XCTAssertEqual(engine.instances.list(root).count, 5)
        assertErrno(.quota) { _ = try self.engine.instances.create("q-late", alice) }
        try engine.projects.setQuota("web", .instances, -1, root)
        XCTAssertNoThrow(try engine.instances.create("q-unlimited", alice))
    }

    func testCoresAndRAMCountAtBuildAndResize() throws {
        let alice = try register("alice", in: "web")
        try engine.projects.setQuota("web", .cores, 2, root)
        try engine.projects.setQuota("web", .ramMB, 1024, root)
        _ = try engine.instances.create("a", alice)
        XCTAssertEqual(waitStable("a")?.status, .ACTIVE)
        // m1.tiny: 1 vCPU, 512 MB: the resize would hold 512 MB + the 128 MB of "b".
        _ = try engine.instances.create("b", alice)
        XCTAssertEqual(waitStable("b")?.status, .ACTIVE)
        assertErrno(.quota) { _ = try self.engine.instances.create("c", alice) }   // cores 2 of 2
        try engine.flavors.create("m1.big", root)
        try engine.flavors.change("m1.big", try FlavorChange(field: "ram_mb", parsing: "2048"), root)
        assertErrno(.quota) { try self.engine.instances.change("a", .flavor("m1.big"), alice) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("Quota exceeded for ram_mb: requested 1920, used 256 of 1024") },
                      engine.events.lines.suffix(5).joined(separator: "\n"))
        let a = try XCTUnwrap(engine.instances.get("a", alice))
        XCTAssertEqual(a.flavor, "m1.nano", "a refused resize leaves the instance as it was")
        XCTAssertEqual(a.status, .ACTIVE)
        try engine.instances.change("a", .flavor("m1.tiny"), alice)   // 512 MB: fits
        XCTAssertEqual(waitStable("a")?.status, .VERIFY_RESIZE)
    }

    func testServerGroupsAndTheirMembersAndFloatingIPs() throws {
        let alice = try register("alice", in: "web")
        try engine.projects.setQuota("web", .serverGroups, 1, root)
        try engine.projects.setQuota("web", .serverGroupMembers, 1, root)
        try engine.groups.create("g1", alice)
        assertErrno(.quota) { try self.engine.groups.create("g2", alice) }
        XCTAssertEqual(engine.groups.get("g1", alice)?.project, "web")
        try engine.settings.setDefault(.group, "g1", root)
        _ = try engine.instances.create("m1", alice)
        assertErrno(.quota) { _ = try self.engine.instances.create("m2", alice) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("Quota exceeded for server_group_members: requested 1, used 1 of 1") })
        let usage = try XCTUnwrap(engine.projects.get("web", root)).usage
        XCTAssertEqual(usage[.serverGroups], 1)
        XCTAssertEqual(usage[.serverGroupMembers], 1)
        XCTAssertEqual(usage[.floatingIPs], 0)
        XCTAssertEqual(usage[.keyPairs], 0)
    }

    func testProjectsAreMadeAndRemovedOnlyWhenEmpty() throws {
        let alice = try register("alice", in: "web")
        _ = try engine.instances.create("w", alice)
        XCTAssertEqual(waitStable("w")?.status, .ACTIVE)
        assertErrno(.busy) { try self.engine.projects.delete("web", self.root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("project 'web' still owns 1 instances") })
        assertErrno(.busy) { try self.engine.projects.delete("default", self.root) }
        try engine.instances.delete("w", alice)
        waitGone("w")
        try engine.projects.delete("web", root)
        XCTAssertNil(engine.projects.get("web", root))
        XCTAssertEqual(engine.users.get("alice", root)?.roles, [:])
        assertErrno(.accessDenied) { _ = try self.engine.instances.create("x", alice) }   // belongs to no project now
        try register("bob", in: "p1")
        try register("carol", in: "p2")
        let p1 = try XCTUnwrap(engine.projects.get("p1", root)).gid, p2 = try XCTUnwrap(engine.projects.get("p2", root)).gid
        XCTAssertEqual(engine.projects.get("default", root)?.gid, 200_000)
        XCTAssertTrue(p1 > 200_000 && p2 == p1 + 1, "project gids count up from 200000: \(p1) \(p2)")
    }
}
