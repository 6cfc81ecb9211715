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
        try Engine(config: EngineConfiguration(stateDir: stateDir, hostURIs: ["test:///default", smallURI],
                                               hostCheckInterval: 0.2), driver: driver)
    }

    /// Found by FuzzMountTests: `mkdir hosts/spare` then a write to its availability_zone
    /// or ctl returned EIO (the row it updated is only stored once a URI is written).
    func testHostWithoutURITakesZoneAndCtlUntilRegistered() throws {
        try engine.createHost("spare", caller: root)
        try engine.setHostField("spare", field: "availability_zone", value: "zone1", caller: root)
        try engine.hostAction("spare", action: "disable", caller: root)
        XCTAssertEqual(engine.host("spare")?.availabilityZone, "zone1")
        XCTAssertEqual(engine.host("spare")?.state, .disabled)
        try engine.setHostField("spare", field: "uri", value: smallURI.replacingOccurrences(of: "small", with: "medium"), caller: root)
        XCTAssertEqual(engine.host("spare")?.availabilityZone, "zone1", "the zone is stored with the URI")
        XCTAssertEqual(engine.host("spare")?.state, .disabled)
        try engine.hostAction("spare", action: "enable", caller: root)
        XCTAssertEqual(engine.host("spare")?.state, .up)
    }

    func testHostThatStopsAnsweringGoesDownAndComesBack() throws {
        // libvirt's test:///default keeps its domains while any connection is open, like a
        // real host across a reconnect (each open of a test:///FILE host is a fresh one).
        let hostKeepsRunning = try driver.connect(uri: "test:///default")
        try upload("tiny", rawDisk())
        try engine.hostAction("small", action: "disable", caller: root)
        _ = try engine.createInstance("ondefault", caller: root)
        XCTAssertEqual(waitStable("ondefault")?.host, "default")
        try engine.hostAction("small", action: "enable", caller: root)

        driver.setFault(.dead(uri: "test:///default"))
        eventually("default goes down") { engine.host("default")?.state == .down }
        eventually("its instance shows nostate") { engine.instance("ondefault")?.powerState == .nostate }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.down default") })
        _ = try engine.createInstance("elsewhere", caller: root)
        XCTAssertEqual(waitStable("elsewhere")?.host, "small", "a down host receives nothing")

        driver.setFault(.none)
        eventually("default comes back") { engine.host("default")?.state == .up }
        eventually("its instance is found running") { engine.instance("ondefault")?.powerState == .running }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("host.up default") })
        _ = hostKeepsRunning
    }

    func testRegisterAndRemoveHostsAtRuntime() throws {
        try engine.createHost("extra", caller: root)
        XCTAssertEqual(engine.host("extra")?.state, .down)
        assertErrno(.exists) { try self.engine.createHost("extra", caller: self.root) }
        assertErrno(.invalid) { try self.engine.setHostField("extra", field: "uri", value: "not a uri", caller: self.root) }
        assertErrno(.exists) { try self.engine.setHostField("extra", field: "uri", value: "test:///default", caller: self.root) }
        let medium = "test://" + TestPaths.packageRoot + "/examples/hosts/medium.xml"
        try engine.setHostField("extra", field: "uri", value: medium, caller: root)
        XCTAssertEqual(engine.host("extra")?.state, .up)
        XCTAssertEqual(engine.host("extra")?.vcpus, 16)
        try upload("tiny", rawDisk())
        try engine.hostAction("default", action: "disable", caller: root)
        try engine.hostAction("small", action: "disable", caller: root)
        _ = try engine.createInstance("there", caller: root)
        XCTAssertEqual(waitStable("there")?.host, "extra")
        assertErrno(.busy) { try self.engine.deleteHost("extra", caller: self.root) }
        assertErrno(.busy) { try self.engine.setHostField("extra", field: "uri", value: self.smallURI + "x", caller: self.root) }
        try engine.deleteInstance("there", caller: root)
        waitGone("there")
        try engine.deleteHost("extra", caller: root)
        XCTAssertNil(engine.host("extra"))
        // Registered hosts persist; a removed one stays removed.
        engine.drain()
        engine = nil
        engine = try makeEngine()
        XCTAssertNil(engine.host("extra"))
        XCTAssertNotNil(engine.host("small"))
    }
}
