import CloudCore
@testable import CloudEngine
@testable import CloudStore
import Foundation
import XCTest

/// l2population's arithmetic (`Catalog.vxlanPlans`): which agent hosts carry a vxlan
/// network, their flood and per-MAC entries, their guests' filtered ports, and where a
/// guest's MAC is while it live-migrates.
final class VXLANPlanTests: XCTestCase {
    var c = Catalog()

    override func setUp() {
        c = Catalog()
        for (name, ip) in [("a", "10.250.0.2"), ("b", "10.250.0.3"), ("z", "10.250.0.9")] {
            var h = HostRuntime(record: HostRecord(name: name, uri: "qemu+tcp://\(ip)/system", agent: "\(ip):7355"))
            h.agentStatus = AgentStatus(host: name, version: "t", tunnelIP: ip, vlan: false, vxlan: true, segments: [])
            c.hosts[name] = h
        }
        c.hosts["local"] = HostRuntime(record: HostRecord(name: "local", uri: "qemu:///embed"))
        c.networks["pa"] = NetworkRecord(name: "pa", cidr: "10.70.0.0/24", gateway: "10.70.0.1", mode: "vxlan", bridge: "brvx1", vlan: 1, dhcpStart: "10.70.0.2")
        c.networks["pb"] = NetworkRecord(name: "pb", cidr: "10.71.0.0/24", gateway: "10.71.0.1", mode: "vxlan", bridge: "brvx2", vlan: 2, dhcpStart: "10.71.0.2")
        c.networks["default"] = NetworkRecord(name: "default", cidr: "10.0.0.0/16", gateway: "10.0.0.1", mode: "flatdhcp", dhcpStart: "10.0.0.2")
    }

    /// An instance on `host` with one fixed IP in `network`.
    @discardableResult
    func guest(_ name: String, on host: String?, _ network: String, _ last: UInt32, mac: String) -> String {
        let img = ImageInfo(name: "img", id: "img-id", status: .active, format: .raw, size: 1, virtualSize: 1, checksum: "",
                            created: Date(), minRamMB: 0, minDiskGB: 0, properties: [:], ownerUID: 0, path: "/x")
        var r = InstanceRecord(id: "id-\(name)", name: name, ownerUID: 0, project: "p", image: img,
                               flavor: Flavor(name: "f", vcpus: 1, ramMB: 64, diskGB: 1), created: Date())
        r.host = host
        c.instances[name] = r
        c.instanceNames[r.id] = name
        let base: UInt32 = network == "pa" ? 0x0A46_0000 : network == "pb" ? 0x0A47_0000 : 0x0A00_0000
        c.setIPs([FixedIPRecord(network: network, address: Int64(base | last), mac: mac, instanceId: r.id)], of: r.id)
        return r.id
    }

    func testPeersMacsAndPortsFollowTheGuests() throws {
        guest("a1", on: "a", "pa", 2, mac: "FA:16:3E:00:00:01")
        guest("b1", on: "b", "pa", 3, mac: "fa:16:3e:00:00:02")
        guest("a2", on: "a", "pb", 2, mac: "fa:16:3e:00:00:03")
        guest("l1", on: "local", "pa", 4, mac: "fa:16:3e:00:00:04")   // no agent: no peer, no entry
        guest("d1", on: "b", "default", 5, mac: "fa:16:3e:00:00:05")  // not vxlan: not in any plan
        let plans = c.vxlanPlans(including: nil)
        XCTAssertEqual(Set(plans.keys), ["a", "b", "z"], "every agent host gets a plan, empty or not")
        XCTAssertEqual(plans["z"], AgentPlan(segments: []))
        let a = try XCTUnwrap(plans["a"])
        XCTAssertEqual(a.segments.map(\.network), ["pa", "pb"])
        // Every guest of the network, wherever it runs, is a DHCP host of each local port.
        let paDHCP = SegmentDHCP(server: "10.70.0.1", prefix: 24, dns: [],
                                 hosts: ["fa:16:3e:00:00:01,10.70.0.2,a1", "fa:16:3e:00:00:02,10.70.0.3,b1", "fa:16:3e:00:00:04,10.70.0.4,l1"])
        XCTAssertEqual(a.segments[0], VXLANSegment(network: "pa", vni: 1, bridge: "brvx1", device: "vxlan1",
                                                    peers: ["10.250.0.3"], macs: ["fa:16:3e:00:00:02": "10.250.0.3"], dhcp: paDHCP))
        XCTAssertEqual(a.segments[1], VXLANSegment(network: "pb", vni: 2, bridge: "brvx2", device: "vxlan2", peers: [], macs: [:],
                                                    dhcp: SegmentDHCP(server: "10.71.0.1", prefix: 24, dns: [], hosts: ["fa:16:3e:00:00:03,10.71.0.2,a2"])),
                       "project two's segment has no other host")
        XCTAssertEqual(Set(a.ports.compactMap(\.dhcpServer)), ["10.70.0.1", "10.71.0.1"], "the filter lets each port's DHCP server in")
        XCTAssertEqual(SegmentDHCP.portMAC(vni: 0x12ab0c), "0a:cf:12:ab:0c:01")
        XCTAssertEqual(Set(a.ports.map(\.address)), ["10.70.0.2", "10.71.0.2"])
        XCTAssertEqual(a.ports.first { $0.address == "10.70.0.2" }?.interface, ManagedNetworking.tapName(instanceID: "id-a1"))
        let b = try XCTUnwrap(plans["b"])
        XCTAssertEqual(b.segments.map(\.network), ["pa"])
        XCTAssertEqual(b.segments[0].macs, ["fa:16:3e:00:00:01": "10.250.0.2"], "the MAC is lower-cased, the local one left out")
        XCTAssertEqual(b.ports.map(\.address), ["10.70.0.3"])
        XCTAssertEqual(b.segments[0].dhcp, paDHCP, "the same DHCP hosts on every host carrying the segment")

        // `including`: a spawn about to happen on z already counts there.
        let id = guest("z1", on: nil, "pb", 3, mac: "fa:16:3e:00:00:06")
        let withZ = c.vxlanPlans(including: (id, "z"))
        XCTAssertEqual(withZ["z"]?.segments.map(\.network), ["pb"])
        XCTAssertEqual(withZ["a"]?.segments[1].peers, ["10.250.0.9"])
        XCTAssertEqual(withZ["a"]?.segments[1].macs, ["fa:16:3e:00:00:06": "10.250.0.9"])

        // This machine with an agent of its own joins the segments (a peer, its guests'
        // MACs known elsewhere) but leaves its filter to the controller's ruleset.
        c.hosts["local"]?.record.agent = "10.250.0.24:7355"
        c.hosts["local"]?.agentStatus = AgentStatus(host: "local", version: "t", tunnelIP: "10.250.0.24", vlan: false, vxlan: true, segments: [])
        let withLocal = c.vxlanPlans(including: nil)
        XCTAssertEqual(withLocal["local"]?.segments.map(\.network), ["pa"])
        XCTAssertEqual(withLocal["local"]?.ports, [])
        XCTAssertEqual(withLocal["local"]?.filter, false)
        XCTAssertEqual(withLocal["a"]?.filter, true)
        XCTAssertEqual(withLocal["a"]?.segments[0].peers, ["10.250.0.24", "10.250.0.3"])
        XCTAssertEqual(withLocal["a"]?.segments[0].macs["fa:16:3e:00:00:04"], "10.250.0.24")
    }

    /// During a live migration both hosts carry the segment and the MAC stays on the
    /// source; once it commits, the source drops the segment and the MAC is on the destination.
    func testALiveMigrationKeepsTheMacOnTheSourceUntilItCommits() throws {
        guest("a1", on: "b", "pa", 2, mac: "fa:16:3e:00:00:01")   // claimed on b (the destination)
        guest("z1", on: "z", "pa", 3, mac: "fa:16:3e:00:00:02")
        c.instances["a1"]?.oldHost = "a"
        c.instances["a1"]?.taskState = .migrating
        var plans = c.vxlanPlans(including: nil)
        XCTAssertEqual(plans["a"]?.segments.map(\.network), ["pa"])
        XCTAssertEqual(plans["b"]?.segments.map(\.network), ["pa"], "the destination has the bridge before the guest arrives")
        XCTAssertEqual(plans["z"]?.segments.first?.macs["fa:16:3e:00:00:01"], "10.250.0.2", "still on the source")
        XCTAssertEqual(plans["z"]?.segments.first?.peers, ["10.250.0.2", "10.250.0.3"])

        c.instances["a1"]?.oldHost = nil
        c.instances["a1"]?.taskState = .none
        plans = c.vxlanPlans(including: nil)
        XCTAssertEqual(plans["a"], AgentPlan(segments: []), "the source no longer carries pa")
        XCTAssertEqual(plans["z"]?.segments.first?.macs["fa:16:3e:00:00:01"], "10.250.0.3")
        XCTAssertEqual(plans["z"]?.segments.first?.peers, ["10.250.0.3"])
    }
}
