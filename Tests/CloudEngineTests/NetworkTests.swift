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
    /// A member of the `default` project; `stranger` belongs to another project.
    var user = Caller.system
    var stranger = Caller.system

    override func setUpWithError() throws {
        try super.setUpWithError()
        user = try register("alice")
        stranger = try register("bob", in: "other")
    }

    func testDefaultNetworkAndFieldValidation() throws {
        let d = try XCTUnwrap(engine.networks.get("default", .system))
        XCTAssertEqual(d.fields["mode"], "flatdhcp\n")
        XCTAssertEqual(d.fields["cidr"], "10.0.0.0/16\n")
        XCTAssertEqual(d.fields["bridge"], "br100\n")
        XCTAssertEqual(d.fields["dhcp_start"], "10.0.0.2\n")
        XCTAssertEqual(d.free, 65533)

        try engine.networks.create("net2", root)
        let n = try XCTUnwrap(engine.networks.get("net2", .system))
        XCTAssertEqual(n.fields["cidr"], "10.1.0.0/24\n")
        XCTAssertEqual(n.fields["bridge"], "br101\n")
        assertErrno(.accessDenied) { try engine.networks.create("mine", user) }
        assertErrno(.accessDenied) { try engine.networks.change("net2", NetworkField(rawValue: "dns")!, "10.1.0.1", user) }
        assertErrno(.invalid) { try engine.networks.change("net2", NetworkField(rawValue: "cidr")!, "10.0.5.0/24", root) }
        assertErrno(.invalid) { try engine.networks.change("net2", NetworkField(rawValue: "cidr")!, "10.1.0.7/24", root) }
        assertErrno(.invalid) { try engine.networks.change("net2", NetworkField(rawValue: "gateway")!, "10.2.0.1", root) }
        assertErrno(.invalid) { try engine.networks.change("net2", NetworkField(rawValue: "mode")!, "bridged", root) }
        assertErrno(.invalid) { try engine.networks.change("net2", NetworkField(rawValue: "mode")!, "vlan", root) }   // no vlan id
        try engine.networks.change("net2", NetworkField(rawValue: "cidr")!, "192.168.7.0/28", root)
        XCTAssertEqual(engine.networks.get("net2", .system)?.fields["gateway"], "192.168.7.1\n", "a default gateway follows the cidr")
        XCTAssertEqual(engine.networks.get("net2", .system)?.free, 13)
        try engine.networks.change("net2", NetworkField(rawValue: "dns")!, "192.168.7.1, 192.168.7.2", root)
        XCTAssertEqual(engine.networks.get("net2", .system)?.fields["dns"], "192.168.7.1\n192.168.7.2\n")
        let refused = engine.events.lines.filter { $0.contains("network.refused") }
        XCTAssertTrue(refused.contains { $0.contains("errno=EINVAL") && $0.contains("overlaps network default") }, refused.joined(separator: "\n"))
        XCTAssertTrue(refused.contains { $0.contains("outside cidr") })
        try engine.networks.delete("net2", root)
        XCTAssertNil(engine.networks.get("net2", .system))
    }

    func testExhaustionAtMkdirAndReleaseOnDelete() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.networks.create("small", root)
        try engine.networks.change("small", NetworkField(rawValue: "cidr")!, "10.6.0.0/30", root)   // one address: .2
        try engine.settings.setDefault(.network, "small", root)
        _ = try engine.instances.create("a", root)
        XCTAssertEqual(waitStable("a")?.ips, ["10.6.0.2"])
        let a = try XCTUnwrap(engine.instances.get("a", .system))
        XCTAssertEqual(engine.networks.get("small", .system)?.leases, ["10.6.0.2 \(a.macs[0]) a"])
        XCTAssertEqual(engine.networks.get("small", .system)?.free, 0)
        assertErrno(.noSpace) { _ = try engine.instances.create("b", root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.refused b") && $0.contains("No more fixed IPs") })
        assertErrno(.busy) { try engine.networks.change("small", NetworkField(rawValue: "cidr")!, "10.6.0.0/29", root) }
        assertErrno(.busy) { try engine.networks.delete("small", root) }
        try engine.instances.delete("a", root)
        waitGone("a")
        XCTAssertEqual(engine.networks.get("small", .system)?.free, 1)
        _ = try engine.instances.create("b", root)
        XCTAssertEqual(waitStable("b")?.ips, ["10.6.0.2"], "the released address is handed out again")
    }

    func testBuildEndsInErrorWhenTheNetworkFillsUpMeanwhile() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try engine.networks.create("small", root)
        try engine.networks.change("small", NetworkField(rawValue: "cidr")!, "10.7.0.0/30", root)
        try engine.settings.setDefault(.network, "small", root)
        // Another writer of the same database takes the only address behind the engine's
        // back: mkdir still sees a free address, the build's transaction finds none.
        let other = try Store(path: stateDir + "/cloudfs.db")
        let img = try XCTUnwrap(engine.images.get("tiny", .system))
        let squatter = InstanceRecord(id: UUID().uuidString.lowercased(), name: "squatter", ownerUID: 0, project: "p",
                                      image: img, flavor: Flavor(name: "m1.nano", vcpus: 1, ramMB: 128, diskGB: 1), created: Date())
        var parked = squatter
        parked.taskState = .none
        parked.vmState = .error
        try other.insertInstance(parked)
        _ = try other.allocateFixedIP(instanceID: squatter.id, network: "small", range: 0x0A07_0002...0x0A07_0002) { "fa:16:3e:00:00:01" }
        _ = try engine.instances.create("late", root)
        let info = try XCTUnwrap(waitStable("late"))
        XCTAssertEqual(info.status, .ERROR)
        XCTAssertTrue(info.fault.contains("No more fixed IPs"), info.fault)
        XCTAssertEqual(info.ips, [])
        XCTAssertEqual(instanceDirs(), [], "nothing of the build is left")
    }

    func testFloatingIPQuotaAutoAssociationAndRelease() throws {
        assertErrno(.noEntry) { try engine.floatingIPs.create("10.99.0.5", user) }   // no pool yet
        try engine.networks.change("default", NetworkField(rawValue: "floating_range")!, "10.99.0.0/24", root)
        assertErrno(.invalid) { try engine.networks.change("default", NetworkField(rawValue: "floating_range")!, "10.0.128.0/24", root) }
        for i in 1...10 { try engine.floatingIPs.create("10.99.0.\(i)", user) }
        assertErrno(.quota) { try engine.floatingIPs.create("10.99.0.11", user) }
        assertErrno(.exists) { try engine.floatingIPs.create("10.99.0.1", stranger) }   // another project, with room
        XCTAssertEqual(engine.floatingIPs.list(.system).count, 10)
        XCTAssertEqual(engine.floatingIPs.get("10.99.0.3", .system)?.pool, "default")
        assertErrno(.noEntry) { try engine.floatingIPs.delete("10.99.0.3", stranger) }   // another project's: not there
        try engine.floatingIPs.delete("10.99.0.3", user)
        try engine.floatingIPs.create("10.99.0.11", user)   // room again
        assertErrno(.quota) { try engine.floatingIPs.create("10.99.0.12", user) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("Quota exceeded for floating_ips: requested 1, used 10 of 10") })
        try engine.projects.setQuota("default", .floatingIPs, 12, root)   // the web instance below needs one more

        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        _ = try engine.instances.create("web", root)
        XCTAssertEqual(waitStable("web")?.status, .ACTIVE)
        try engine.instances.change("web", .floatingIP(FloatingIPRequest(parsing: "auto")), root)
        let auto = try XCTUnwrap(engine.floatingIPs.list(.system).first { $0.instance == "web" })
        XCTAssertEqual(auto.address, "10.99.0.3", "the lowest free address of the pool")
        try engine.instances.change("web", .floatingIP(FloatingIPRequest(parsing: "10.99.0.11")), root)   // admin may take a user's
        XCTAssertEqual(engine.floatingIPs.list(.system).filter { $0.instance == "web" }.map(\.address), ["10.99.0.11"])
        try engine.instances.change("web", .floatingIP(FloatingIPRequest(parsing: "")), root)
        XCTAssertTrue(engine.floatingIPs.list(.system).allSatisfy { $0.instance.isEmpty })
        try engine.floatingIPs.associate("10.99.0.3", instance: "web", root)
        try engine.instances.delete("web", root)
        waitGone("web")
        XCTAssertNil(engine.floatingIPs.get("10.99.0.3", .system), "an auto-assigned floating IP goes with its instance")
        XCTAssertNotNil(engine.floatingIPs.get("10.99.0.11", .system), "an allocated one stays with the project")
    }

    func testSecurityGroupRules() throws {
        XCTAssertEqual(engine.securityGroups.get("default", .system)?.rules, "")
        try engine.securityGroups.setRules("default", "tcp 22 0.0.0.0/0\n# web\ntcp 80-81 10.0.0.0/8\nicmp - 0.0.0.0/0", root)
        XCTAssertEqual(engine.securityGroups.get("default", .system)?.rules, "tcp 22 0.0.0.0/0\ntcp 80-81 10.0.0.0/8\nicmp - 0.0.0.0/0\n")
        assertErrno(.invalid) { try engine.securityGroups.setRules("default", "tcp 22 0.0.0.0/0\nudp 70000 0.0.0.0/0", root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("security_group.refused") && $0.contains("line 2") })
        try engine.securityGroups.create("web", user)
        assertErrno(.noEntry) { try engine.securityGroups.setRules("web", "", stranger) }
        assertErrno(.accessDenied) { try engine.securityGroups.setRules("default", "", user) }   // the cloud-wide group: admin only
        assertErrno(.busy) { try engine.securityGroups.delete("default", root) }
        try engine.securityGroups.delete("web", user)
    }

    func testInstancesChooseTheirSecurityGroups() throws {
        try upload("tiny", rawDisk())
        _ = try engine.instances.create("vm", root)
        XCTAssertEqual(waitStable("vm")?.securityGroups, ["default"])
        try engine.securityGroups.create("web", root)
        try engine.securityGroups.setRules("web", "tcp 80 0.0.0.0/0", root)
        try engine.instances.change("vm", .securityGroups(InstanceChange.securityGroupNames("default, web\nweb")), root)
        XCTAssertEqual(engine.instances.get("vm", .system)?.securityGroups, ["default", "web"])
        assertErrno(.noEntry) { try engine.instances.change("vm", .securityGroups(InstanceChange.securityGroupNames("nope")), root) }
        XCTAssertEqual(engine.instances.get("vm", .system)?.securityGroups, ["default", "web"], "a refused write changes nothing")
        assertErrno(.busy) { try engine.securityGroups.delete("web", root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("in use by vm") })
        try engine.instances.change("vm", .securityGroups(InstanceChange.securityGroupNames("")), root)
        XCTAssertEqual(engine.instances.get("vm", .system)?.securityGroups, [])
        try engine.securityGroups.delete("web", root)
    }

    /// A vlan network for VlanManager tests: `eth0` uplink, vlan id `vlan`, its own bridge
    /// (the one `mkdir` picked: `br100` is the default network's).
    func makeVLANNetwork(_ name: String, vlan: Int) throws {
        try engine.networks.create(name, root)
        try engine.networks.change(name, NetworkField(rawValue: "bridge_interface")!, "eth0", root)
        try engine.networks.change(name, NetworkField(rawValue: "mode")!, "vlan", root)
        try engine.networks.change(name, NetworkField(rawValue: "vlan")!, "\(vlan)", root)
    }

    func build(_ name: String, project: String) throws -> InstanceInfo {
        try ensureProject(project)
        try engine.settings.setDefault(.project, project, root)
        _ = try engine.instances.create(name, root)
        return try XCTUnwrap(waitStable(name))
    }

    func testVlanNetworksAreAssociatedWithProjectsOnFirstBuild() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try makeVLANNetwork("v101", vlan: 101)   // created first, but the lowest vlan goes first
        try makeVLANNetwork("v100", vlan: 100)
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "")
        try engine.settings.setDefault(.network, "v101", root)

        let a1 = try build("a1", project: "alpha")
        XCTAssertEqual(a1.status, .ACTIVE, a1.fault)
        let v100 = try XCTUnwrap(engine.networks.get("v100", .system))
        XCTAssertEqual(v100.fields["project"], "alpha\n", "the lowest unassigned vlan network")
        XCTAssertEqual(v100.leases, ["\(a1.ips[0]) \(a1.macs[0]) a1"])
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.associated v100") && $0.contains("project=alpha") })

        let b1 = try build("b1", project: "beta")
        XCTAssertEqual(b1.status, .ACTIVE, b1.fault)
        XCTAssertEqual(engine.networks.get("v101", .system)?.fields["project"], "beta\n")
        XCTAssertEqual(engine.networks.get("v101", .system)?.leases.count, 1)
        XCTAssertNotEqual(v100.fields["cidr"], engine.networks.get("v101", .system)?.fields["cidr"], "a subnet per project")

        let a2 = try build("a2", project: "alpha")
        XCTAssertEqual(a2.status, .ACTIVE, a2.fault)
        XCTAssertEqual(engine.networks.get("v100", .system)?.leases.count, 2, "the project's network is reused")
        XCTAssertEqual(engine.events.lines.filter { $0.contains("network.associated") }.count, 2)

        // A project owning a vlan network keeps it even when the default is a flat network;
        // other projects use the default.
        try engine.settings.setDefault(.network, "default", root)
        XCTAssertEqual(try build("a3", project: "alpha").ips.first.map { $0.hasPrefix("10.0.0.") }, false)
        XCTAssertEqual(engine.networks.get("v100", .system)?.leases.count, 3)
        XCTAssertEqual(try build("z1", project: "zeta").ips, ["10.0.0.2"])
        try engine.settings.setDefault(.network, "v100", root)

        // No vlan network is left: mkdir knows it already.
        try ensureProject("gamma")
        try engine.settings.setDefault(.project, "gamma", root)
        assertErrno(.noSpace) { _ = try engine.instances.create("g0", root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("instance.refused g0") && $0.contains("No more networks available for project gamma") })

        // Deleting instances keeps the association (nova does too).
        for n in ["a1", "a2", "a3"] { try engine.instances.delete(n, root) }
        for n in ["a1", "a2", "a3"] { waitGone(n) }
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "alpha\n")
        XCTAssertEqual(engine.networks.get("v100", .system)?.leases, [])

        // The admin dissociates a network without leases; one with leases is busy.
        assertErrno(.busy) { try engine.networks.change("v101", NetworkField(rawValue: "project")!, "", root) }
        assertErrno(.accessDenied) { try engine.networks.change("v100", NetworkField(rawValue: "project")!, "", user) }
        try engine.networks.change("v100", NetworkField(rawValue: "project")!, "", root)
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.disassociated v100") && $0.contains("project=alpha") })

        let g1 = try build("g1", project: "gamma")
        XCTAssertEqual(g1.status, .ACTIVE, g1.fault)
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "gamma\n", "a dissociated network is free again")
    }

    func testBuildEndsInErrorWhenNoVlanNetworkIsLeftForItsProject() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        try makeVLANNetwork("v100", vlan: 100)
        try engine.settings.setDefault(.network, "v100", root)
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
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "", "the engine's view is unchanged")
    }

    func testConcurrentFirstBuildsOfProjectsGetOneNetworkEach() throws {
        try upload("tiny", rawDisk())
        try engine.settings.setDefault(.flavor, "m1.nano", root)
        for v in 100..<104 { try makeVLANNetwork("v\(v)", vlan: v) }
        try engine.settings.setDefault(.network, "v100", root)
        // mkdir is synchronous, the builds race: each project must end up with one network.
        for i in 0..<8 {
            try ensureProject("p\(i % 4)")
            try engine.settings.setDefault(.project, "p\(i % 4)", root)
            _ = try engine.instances.create("i\(i)", root)
        }
        for i in 0..<8 { XCTAssertEqual(waitStable("i\(i)")?.status, .ACTIVE) }
        let owners = (100..<104).compactMap { engine.networks.get("v\($0)", .system)?.fields["project"] }
        XCTAssertEqual(Set(owners), ["p0\n", "p1\n", "p2\n", "p3\n"])
        for v in 100..<104 { XCTAssertEqual(engine.networks.get("v\(v)", .system)?.leases.count, 2) }
        for i in 0..<4 {
            let net = try XCTUnwrap(engine.networks.list(.system).first { $0.fields["project"] == "p\(i)\n" })
            XCTAssertEqual(Set(net.leases.map { $0.split(separator: " ").last.map(String.init) ?? "" }), ["i\(i)", "i\(i + 4)"])
        }
    }

    func testProjectFieldValidation() throws {
        try makeVLANNetwork("v100", vlan: 100)
        try makeVLANNetwork("v200", vlan: 200)
        assertErrno(.invalid) { try engine.networks.change("default", NetworkField(rawValue: "project")!, "alpha", root) }
        XCTAssertTrue(engine.events.lines.contains { $0.contains("only vlan and vxlan networks are associated with a project") })
        assertErrno(.invalid) { try engine.networks.change("v100", NetworkField(rawValue: "project")!, "no such/name", root) }
        assertErrno(.invalid) { try engine.networks.change("v100", NetworkField(rawValue: "project")!, ".hidden", root) }
        try engine.networks.change("v100", NetworkField(rawValue: "project")!, "alpha", root)
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "alpha\n")
        XCTAssertTrue(engine.events.lines.contains { $0.contains("network.associated v100") && $0.contains("project=alpha") })
        assertErrno(.busy) { try engine.networks.change("v200", NetworkField(rawValue: "project")!, "alpha", root) }
        assertErrno(.invalid) { try engine.networks.change("v100", NetworkField(rawValue: "mode")!, "flatdhcp", root) }
        try engine.networks.change("v100", NetworkField(rawValue: "project")!, "beta", root)   // no leases: reassigned
        XCTAssertEqual(engine.networks.get("v100", .system)?.fields["project"], "beta\n")
    }
}
