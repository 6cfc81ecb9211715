import CloudCore
import CloudEngine
import CloudTesting
import Foundation
import XCTest

/// Nova's service heartbeat: a host that stops answering goes down, takes no new
/// instances, shows its instances' power state as unknown, and comes back by itself.
final class HostHealthTests: EngineTestCase {
    var smallURI: String { "test://" + TestPaths.packageRoot + "/examples/hosts/small.xml" }

    override func makeEngine() throws -> Engine {
        try Engine(config: engineConfiguration(hostURIs: ["test:///default", smallURI],
                                               hostCheckInterval: 0.2), driver: driver)
    }

    /// Found by FuzzMountTests: `mkdir hosts/spare` then a write to its availability_zone
    /// or ctl returned EIO (the row it updated is only stored once a URI is written).
    func testHostWithoutURITakesZoneAndCtlUntilRegistered() throws {
        try engine.hosts.create("spare", root)
        try engine.hosts.change("spare", .availabilityZone("zone1"), root)
        try engine.hosts.perform(try HostAction(parsing: "disable"), on: "spare", root)
        XCTAssertEqual(engine.hosts.get("spare", .system)?.availabilityZone, "zone1")
        XCTAssertEqual(engine.hosts.get("spare", .system)?.state, .disabled)
        try engine.hosts.change("spare", .uri(smallURI.replacingOccurrences(of: "small", with: "medium")), root)
        XCTAssertEqual(engine.hosts.get("spare", .system)?.availabilityZone, "zone1", "the zone is stored with the URI")
        XCTAssertEqual(engine.hosts.get("spare", .system)?.state, .disabled)
        try engine.hosts.perform(try HostAction(parsing: "enable"), on: "spare", root)
        XCTAssertEqual(engine.hosts.get("spare", .system)?.state, .up)
    }

    func testHostThatStopsAnsweringGoesDownAndComesBack() throws {
        // libvirt's test:///default keeps its domains while any connection is open, like a
        // real host across a reconnect (each open of a test:///FILE host is a fresh one).
        let hostKeepsRunning = try driver.connect(uri: "test:///default")
        try upload("tiny", rawDisk())
        try engine.hosts.perform(try HostAction(parsing: "disable"), on: "small", root)
        _ = try engine.instances.create("ondefault", root)
        XCTAssertEqual(waitStable("ondefault")?.host, "default")
        try engine.hosts.perform(try HostAction(parsing: "enable"), on: "small", root)

        driver.setFault(.dead(uri: "test:///default"))
        eventually("default goes down") { engine.hosts.get("default", .system)?.state == .down }
        eventually("its instance shows nostate") { engine.instances.get("ondefault", .system)?.powerState == .nostate }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.down default") })
        _ = try engine.instances.create("elsewhere", root)
        XCTAssertEqual(waitStable("elsewhere")?.host, "small", "a down host receives nothing")

        driver.setFault(.none)
        eventually("default comes back") { engine.hosts.get("default", .system)?.state == .up }
        eventually("its instance is found running") { engine.instances.get("ondefault", .system)?.powerState == .running }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.up default") })
        _ = hostKeepsRunning
    }

    func testRegisterAndRemoveHostsAtRuntime() throws {
        try engine.hosts.create("extra", root)
        XCTAssertEqual(engine.hosts.get("extra", .system)?.state, .down)
        assertErrno(.exists) { try self.engine.hosts.create("extra", self.root) }
        assertErrno(.invalid) { try self.engine.hosts.change("extra", .uri("not a uri"), self.root) }
        assertErrno(.exists) { try self.engine.hosts.change("extra", .uri("test:///default"), self.root) }
        let medium = "test://" + TestPaths.packageRoot + "/examples/hosts/medium.xml"
        try engine.hosts.change("extra", .uri(medium), root)
        XCTAssertEqual(engine.hosts.get("extra", .system)?.state, .up)
        XCTAssertEqual(engine.hosts.get("extra", .system)?.vcpus, 16)
        try upload("tiny", rawDisk())
        try engine.hosts.perform(try HostAction(parsing: "disable"), on: "default", root)
        try engine.hosts.perform(try HostAction(parsing: "disable"), on: "small", root)
        _ = try engine.instances.create("there", root)
        XCTAssertEqual(waitStable("there")?.host, "extra")
        assertErrno(.busy) { try self.engine.hosts.delete("extra", self.root) }
        assertErrno(.busy) { try self.engine.hosts.change("extra", .uri(self.smallURI + "x"), self.root) }
        try engine.instances.delete("there", root)
        waitGone("there")
        try engine.hosts.delete("extra", root)
        XCTAssertNil(engine.hosts.get("extra", .system))
        // Registered hosts persist; a removed one stays removed.
        engine.drain()
        engine = nil
        engine = try makeEngine()
        XCTAssertNil(engine.hosts.get("extra", .system))
        XCTAssertNotNil(engine.hosts.get("small", .system))
    }
}
