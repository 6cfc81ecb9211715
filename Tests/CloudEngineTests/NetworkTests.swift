import CloudCore
import CloudEngine
import CloudStore
import CloudTesting
import Foundation
import XCTest

/// nova-network through the engine: networks and their validation, fixed IPs taken by the
/// build's network step (exhaustion at mkdir and during the build, release), floating IPs
/// (quota, auto-association, release with the instance), security group rules, and
/// VlanManager's association of vlan networks with projects.
final class NetworkTests: EngineTestCase {
    let user = Caller(uid: 1000, gid: 1000, pid: 7)

    func testDefaultNetworkAndFieldValidation() throws {
        let d = try XCTUnwrap(engine.network("default"))
        XCTAssertEqual(d.fields["mode"], "flatdhcp\n")
        XCTAssertEqual(d.fields["cidr"], "10.0.0.0/16\n")
        XCTAssertEqual(d.fields["bridge"], "br100\n")
        XCTAssertEqual(d.fields["dhcp_start"], "10.0.0.2\n")
        XCTAssertEqual(d.free, 65533)

        try engine.createNetwork("net2", caller: root)
        let n = try XCTUnwrap(engine.network("net2"))
        XCTAssertEqual(n.fields["cidr"], "10.1.0.0/24\n")
        XCTAssertEqual(n.fields["bridge"], "br101\n")
        assertErrno(.notPermitted) { try engine.createNetwork("mine", caller: user) }
        assertErrno(.notPermitted) { try engine.setNetworkField("net2", field: "dns", value: "10.1.0.1", caller: user) }
        assertErrno(.invalid) { try engine.setNetworkField("net2", field: "cidr", value: "10.0.5.0/24", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("net2", field: "cidr", value: "10.1.0.7/24", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("net2", field: "gateway", value: "10.2.0.1", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("net2", field: "mode", value: "bridged", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("net2", field: "mode", value: "vlan", caller: root) }   // no vlan id
        try engine.setNetworkField("net2", field: "cidr", value: "192.168.7.0/28", caller: root)
        XCTAssertEqual(engine.network("net2")?.fields["gateway"], "192.168.7.1\n", "a default gateway follows the cidr")
        XCTAssertEqual(engine.network("net2")?.free, 13)
        try engine.setNetworkField("net2", field: "dns", value: "192.168.7.1, 192.168.7.2", caller: root)
        XCTAssertEqual(engine.network("net2")?.fields["dns"], "192.168.7.1\n192.168.7.2\n")
        let refused = engine.events.lines.filter { $0.contains("network.refused") }
        XCTAssertTrue(refused.contains { $0.contains("errno=EINVAL") && $0.contains("overlaps network default") }, refused.joined(separator: "\n"))
        XCTAssertTrue(refused.contains { $0.contains("outside cidr") })
        try engine.deleteNetwork("net2", caller: root)
        XCTAssertNil(engine.network("net2"))
    }

    func testExhaustionAtMkdirAndReleaseOnDelete() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try engine.createNetwork("small", caller: root)
        try engine.setNetworkField("small", field: "cidr", value: "10.6.0.0/30", caller: root)   // one address: .2
        try engine.setDefault(.network, "small", caller: root)
        _ = try engine.createInstance("a", caller: root)
        XCTAssertEqual(waitStable("a")?.ips, ["10.6.0.2"])
        let a = try XCTUnwrap(engine.instance("a"))
        XCTAssertEqual(engine.network("small")?.leases, ["10.6.0.2 \(a.macs[0]) a"])
        XCTAssertEqual(engine.network("small")?.free, 0)
        assertErrno(.noSpace) { _ = try engine.createInstance("b", caller: root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.refused b") && $0.contains("No more fixed IPs") })
        assertErrno(.busy) { try engine.setNetworkField("small", field: "cidr", value: "10.6.0.0/29", caller: root) }
        assertErrno(.busy) { try engine.deleteNetwork("small", caller: root) }
        try engine.deleteInstance("a", caller: root)
        waitGone("a")
        XCTAssertEqual(engine.network("small")?.free, 1)
        _ = try engine.createInstance("b", caller: root)
        XCTAssertEqual(waitStable("b")?.ips, ["10.6.0.2"], "the released address is handed out again")
    }

    func testBuildEndsInErrorWhenTheNetworkFillsUpMeanwhile() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try engine.createNetwork("small", caller: root)
        try engine.setNetworkField("small", field: "cidr", value: "10.7.0.0/30", caller: root)
        try engine.setDefault(.network, "small", caller: root)
        // Another writer of the same database takes the only address behind the engine's
        // back: mkdir still sees a free address, the build's transaction finds none.
        let other = try Store(path: stateDir + "/cloudfs.db")
        let img = try XCTUnwrap(engine.image("tiny"))
        let squatter = InstanceRecord(id: UUID().uuidString.lowercased(), name: "squatter", ownerUID: 0, project: "p",
                                      image: img, flavor: Flavor(name: "m1.nano", vcpus: 1, ramMB: 128, diskGB: 1), created: Date())
        var parked = squatter
        parked.taskState = .none
        parked.vmState = .error
        try other.insertInstance(parked)
        _ = try other.allocateFixedIP(instanceID: squatter.id, network: "small", range: 0x0A07_0002...0x0A07_0002) { "fa:16:3e:00:00:01" }
        _ = try engine.createInstance("late", caller: root)
        let info = try XCTUnwrap(waitStable("late"))
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertTrue(info.fault.contains("No more fixed IPs"), info.fault)
        XCTAssertEqual(info.ips, [])
        XCTAssertEqual(instanceDirs(), [], "nothing of the build is left")
    }

    func testFloatingIPQuotaAutoAssociationAndRelease() throws {
        assertErrno(.noEntry) { try engine.createFloatingIP("10.99.0.5", caller: user) }   // no pool yet
        try engine.setNetworkField("default", field: "floating_range", value: "10.99.0.0/24", caller: root)
        assertErrno(.invalid) { try engine.setNetworkField("default", field: "floating_range", value: "10.0.128.0/24", caller: root) }
        for i in 1...10 { try engine.createFloatingIP("10.99.0.\(i)", caller: user) }
        assertErrno(.quota) { try engine.createFloatingIP("10.99.0.11", caller: user) }
        assertErrno(.exists) { try engine.createFloatingIP("10.99.0.1", caller: root) }
        XCTAssertEqual(engine.floatingIPs().count, 10)
        XCTAssertEqual(engine.floatingIP("10.99.0.3")?.pool, "default")
        assertErrno(.accessDenied) { try engine.deleteFloatingIP("10.99.0.3", caller: Caller(uid: 1001, gid: 1001, pid: 8)) }
        try engine.deleteFloatingIP("10.99.0.3", caller: user)
        try engine.createFloatingIP("10.99.0.11", caller: user)   // room again

        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        _ = try engine.createInstance("web", caller: root)
        XCTAssertEqual(waitStable("web")?.status, .ACTIVE)
        try engine.setInstanceFloatingIP("web", value: "auto", caller: root)
        let auto = try XCTUnwrap(engine.floatingIPs().first { $0.instance == "web" })
        XCTAssertEqual(auto.address, "10.99.0.3", "the lowest free address of the pool")
        try engine.setInstanceFloatingIP("web", value: "10.99.0.11", caller: root)   // admin may take a user's
        XCTAssertEqual(engine.floatingIPs().filter { $0.instance == "web" }.map(\.address), ["10.99.0.11"])
        try engine.setInstanceFloatingIP("web", value: "", caller: root)
        XCTAssertTrue(engine.floatingIPs().allSatisfy { $0.instance.isEmpty })
        try engine.associateFloatingIP("10.99.0.3", instance: "web", caller: root)
        try engine.deleteInstance("web", caller: root)
        waitGone("web")
        XCTAssertNil(engine.floatingIP("10.99.0.3"), "an auto-assigned floating IP goes with its instance")
        XCTAssertNotNil(engine.floatingIP("10.99.0.11"), "an allocated one stays with the project")
    }

    func testSecurityGroupRules() throws {
        XCTAssertEqual(engine.securityGroup("default")?.rules, "")
        try engine.setSecurityGroupRules("default", rules: "tcp 22 0.0.0.0/0\n# web\ntcp 80-81 10.0.0.0/8\nicmp - 0.0.0.0/0", caller: root)
        XCTAssertEqual(engine.securityGroup("default")?.rules, "tcp 22 0.0.0.0/0\ntcp 80-81 10.0.0.0/8\nicmp - 0.0.0.0/0\n")
        assertErrno(.invalid) { try engine.setSecurityGroupRules("default", rules: "tcp 22 0.0.0.0/0\nudp 70000 0.0.0.0/0", caller: root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("security_group.refused") && $0.contains("line 2") })
        try engine.createSecurityGroup("web", caller: user)
        assertErrno(.accessDenied) { try engine.setSecurityGroupRules("web", rules: "", caller: Caller(uid: 1001, gid: 1001, pid: 8)) }
        assertErrno(.busy) { try engine.deleteSecurityGroup("default", caller: root) }
        try engine.deleteSecurityGroup("web", caller: user)
    }

    func testInstancesChooseTheirSecurityGroups() throws {
        try upload("tiny", rawDisk())
        _ = try engine.createInstance("vm", caller: root)
        XCTAssertEqual(waitStable("vm")?.securityGroups, ["default"])
        try engine.createSecurityGroup("web", caller: root)
        try engine.setSecurityGroupRules("web", rules: "tcp 80 0.0.0.0/0", caller: root)
        try engine.setInstanceField("vm", field: "security_groups", value: "default, web\nweb", caller: root)
        XCTAssertEqual(engine.instance("vm")?.securityGroups, ["default", "web"])
        assertErrno(.noEntry) { try engine.setInstanceField("vm", field: "security_groups", value: "nope", caller: root) }
        XCTAssertEqual(engine.instance("vm")?.securityGroups, ["default", "web"], "a refused write changes nothing")
        assertErrno(.busy) { try engine.deleteSecurityGroup("web", caller: root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("in use by vm") })
        try engine.setInstanceField("vm", field: "security_groups", value: "", caller: root)
        XCTAssertEqual(engine.instance("vm")?.securityGroups, [])
        try engine.deleteSecurityGroup("web", caller: root)
    }

    /// A vlan network for VlanManager tests: `eth0` uplink, vlan id `vlan`, its own bridge
    /// (the one `mkdir` picked: `br100` is the default network's).
    func makeVLANNetwork(_ name: String, vlan: Int) throws {
        try engine.createNetwork(name, caller: root)
        try engine.setNetworkField(name, field: "bridge_interface", value: "eth0", caller: root)
        try engine.setNetworkField(name, field: "mode", value: "vlan", caller: root)
        try engine.setNetworkField(name, field: "vlan", value: "\(vlan)", caller: root)
    }

    func build(_ name: String, project: String) throws -> InstanceInfo {
        try engine.setDefault(.project, project, caller: root)
        _ = try engine.createInstance(name, caller: root)
        return try XCTUnwrap(waitStable(name))
    }

    func testVlanNetworksAreAssociatedWithProjectsOnFirstBuild() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try makeVLANNetwork("v101", vlan: 101)   // created first, but the lowest vlan goes first
        try makeVLANNetwork("v100", vlan: 100)
        XCTAssertEqual(engine.network("v100")?.fields["project"], "")
        try engine.setDefault(.network, "v101", caller: root)

        let a1 = try build("a1", project: "alpha")
        XCTAssertEqual(a1.status, .ACTIVE, a1.fault)
        let v100 = try XCTUnwrap(engine.network("v100"))
        XCTAssertEqual(v100.fields["project"], "alpha\n", "the lowest unassigned vlan network")
        XCTAssertEqual(v100.leases, ["\(a1.ips[0]) \(a1.macs[0]) a1"])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.associated v100") && $0.contains("project=alpha") })

        let b1 = try build("b1", project: "beta")
        XCTAssertEqual(b1.status, .ACTIVE, b1.fault)
        XCTAssertEqual(engine.network("v101")?.fields["project"], "beta\n")
        XCTAssertEqual(engine.network("v101")?.leases.count, 1)
        XCTAssertNotEqual(v100.fields["cidr"], engine.network("v101")?.fields["cidr"], "a subnet per project")

        let a2 = try build("a2", project: "alpha")
        XCTAssertEqual(a2.status, .ACTIVE, a2.fault)
        XCTAssertEqual(engine.network("v100")?.leases.count, 2, "the project's network is reused")
        XCTAssertEqual(engine.events.lines.filter { $0.contains("network.associated") }.count, 2)

        // A project owning a vlan network keeps it even when the default is a flat network;
        // other projects use the default.
        try engine.setDefault(.network, "default", caller: root)
        XCTAssertEqual(try build("a3", project: "alpha").ips.first.map { $0.hasPrefix("10.0.0.") }, false)
        XCTAssertEqual(engine.network("v100")?.leases.count, 3)
        XCTAssertEqual(try build("z1", project: "zeta").ips, ["10.0.0.2"])
        try engine.setDefault(.network, "v100", caller: root)

        // No vlan network is left: mkdir knows it already.
        try engine.setDefault(.project, "gamma", caller: root)
        assertErrno(.noSpace) { _ = try engine.createInstance("g0", caller: root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.refused g0") && $0.contains("No more networks available for project gamma") })

        // Deleting instances keeps the association (nova does too).
        for n in ["a1", "a2", "a3"] { try engine.deleteInstance(n, caller: root) }
        for n in ["a1", "a2", "a3"] { waitGone(n) }
        XCTAssertEqual(engine.network("v100")?.fields["project"], "alpha\n")
        XCTAssertEqual(engine.network("v100")?.leases, [])

        // The admin dissociates a network without leases; one with leases is busy.
        assertErrno(.busy) { try engine.setNetworkField("v101", field: "project", value: "", caller: root) }
        assertErrno(.notPermitted) { try engine.setNetworkField("v100", field: "project", value: "", caller: user) }
        try engine.setNetworkField("v100", field: "project", value: "", caller: root)
        XCTAssertEqual(engine.network("v100")?.fields["project"], "")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.disassociated v100") && $0.contains("project=alpha") })

        let g1 = try build("g1", project: "gamma")
        XCTAssertEqual(g1.status, .ACTIVE, g1.fault)
        XCTAssertEqual(engine.network("v100")?.fields["project"], "gamma\n", "a dissociated network is free again")
    }

    func testBuildEndsInErrorWhenNoVlanNetworkIsLeftForItsProject() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        try makeVLANNetwork("v100", vlan: 100)
        try engine.setDefault(.network, "v100", caller: root)
        // Another writer associates the only vlan network behind the engine's back: mkdir
        // still sees it free, the build's transaction does not.
        let other = try Store(path: stateDir + "/cloudfs.db")
        var row = try XCTUnwrap(try other.networks().first { $0.name == "v100" })
        row.project = "squatter"
        try other.updateNetwork(row)
        let info = try build("late", project: "delta")
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertEqual(info.fault, "No more networks available for project delta")
        XCTAssertEqual(info.ips, [])
        XCTAssertEqual(engine.network("v100")?.fields["project"], "", "the engine's view is unchanged")
    }

    func testConcurrentFirstBuildsOfProjectsGetOneNetworkEach() throws {
        try upload("tiny", rawDisk())
        try engine.setDefault(.flavor, "m1.nano", caller: root)
        for v in 100..<104 { try makeVLANNetwork("v\(v)", vlan: v) }
        try engine.setDefault(.network, "v100", caller: root)
        // mkdir is synchronous, the builds race: each project must end up with one network.
        for i in 0..<8 {
            try engine.setDefault(.project, "p\(i % 4)", caller: root)
            _ = try engine.createInstance("i\(i)", caller: root)
        }
        for i in 0..<8 { XCTAssertEqual(waitStable("i\(i)")?.status, .ACTIVE) }
        let owners = (100..<104).compactMap { engine.network("v\($0)")?.fields["project"] }
        XCTAssertEqual(Set(owners), ["p0\n", "p1\n", "p2\n", "p3\n"])
        for v in 100..<104 { XCTAssertEqual(engine.network("v\(v)")?.leases.count, 2) }
        for i in 0..<4 {
            let net = try XCTUnwrap(engine.networks().first { $0.fields["project"] == "p\(i)\n" })
            XCTAssertEqual(Set(net.leases.map { $0.split(separator: " ").last.map(String.init) ?? "" }), ["i\(i)", "i\(i + 4)"])
        }
    }

    func testProjectFieldValidation() throws {
        try makeVLANNetwork("v100", vlan: 100)
        try makeVLANNetwork("v200", vlan: 200)
        assertErrno(.invalid) { try engine.setNetworkField("default", field: "project", value: "alpha", caller: root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("only vlan networks are associated with a project") })
        assertErrno(.invalid) { try engine.setNetworkField("v100", field: "project", value: "no such/name", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("v100", field: "project", value: ".hidden", caller: root) }
        try engine.setNetworkField("v100", field: "project", value: "alpha", caller: root)
        XCTAssertEqual(engine.network("v100")?.fields["project"], "alpha\n")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.associated v100") && $0.contains("project=alpha") })
        assertErrno(.busy) { try engine.setNetworkField("v200", field: "project", value: "alpha", caller: root) }
        assertErrno(.invalid) { try engine.setNetworkField("v100", field: "mode", value: "flatdhcp", caller: root) }
        try engine.setNetworkField("v100", field: "project", value: "beta", caller: root)   // no leases: reassigned
        XCTAssertEqual(engine.network("v100")?.fields["project"], "beta\n")
    }
}
