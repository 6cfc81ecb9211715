import CloudCore
import CloudEngine
import Foundation
import XCTest

/// The metadata service's lookup (neutron's metadata agent): each guest is told only its
/// own data, found by its fixed IP on the network whose gateway the request reached.
final class MetadataTests: EngineTestCase {
    func testEachGuestGetsOnlyItsOwnData() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.networks.create("net2", root)   // 10.1.0.0/24, gateway 10.1.0.1
        _ = try engine.instances.create("a", LaunchRequest(userData: "#cloud-config\nhostname: a\n", metadata: ["role": "db"]), root)
        _ = try engine.instances.create("b", LaunchRequest(network: "net2"), root)
        XCTAssertEqual(waitStable("a")?.status, .ACTIVE)
        XCTAssertEqual(waitStable("b")?.status, .ACTIVE)
        let a = try XCTUnwrap(engine.instances.get("a", root)), b = try XCTUnwrap(engine.instances.get("b", root))
        XCTAssertEqual(a.ips, ["10.0.0.2"])
        XCTAssertEqual(b.ips, ["10.1.0.2"], "the launch's network, not the default")

        let docA = try XCTUnwrap(engine.metadata(client: "10.0.0.2", local: "10.0.0.1"))
        let meta = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(try XCTUnwrap(docA.openstack["meta_data.json"]))) as? [String: Any])
        XCTAssertEqual(meta["uuid"] as? String, a.id)
        XCTAssertEqual(meta["meta"] as? [String: String], ["role": "db"])
        XCTAssertEqual(docA.userData, "#cloud-config\nhostname: a\n")
        XCTAssertEqual(docA.openstack["user_data"].map { String(decoding: $0, as: UTF8.self) }, docA.userData)
        XCTAssertEqual(docA.ec2["local-ipv4"], "10.0.0.2")
        XCTAssertEqual(docA.ec2["placement/availability-zone"], "nova")

        let docB = try XCTUnwrap(engine.metadata(client: "10.1.0.2", local: "10.1.0.1"))
        XCTAssertEqual(docB.ec2["instance-id"].map { $0.hasPrefix("i-") }, true)
        XCTAssertNotEqual(docB.ec2["instance-id"], docA.ec2["instance-id"])
        XCTAssertNil(docB.openstack["user_data"], "b has none")

        // Another network's gateway, an address nobody holds, or garbage: nothing at all.
        XCTAssertNil(engine.metadata(client: "10.0.0.2", local: "10.1.0.1"), "a's address asked on net2's gateway")
        XCTAssertNil(engine.metadata(client: "10.1.0.2", local: "10.0.0.1"))
        XCTAssertNil(engine.metadata(client: "10.0.0.9", local: "10.0.0.1"))
        XCTAssertNil(engine.metadata(client: "x", local: "10.0.0.1"))

        // Once deleted, its address answers nothing.
        try engine.instances.delete("a", root)
        waitGone("a")
        XCTAssertNil(engine.metadata(client: "10.0.0.2", local: "10.0.0.1"))
    }
}
