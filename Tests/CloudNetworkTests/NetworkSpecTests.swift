import CloudCore
import CloudNetwork
import XCTest

final class NetworkSpecTests: XCTestCase {
    func testNovaDefaults() throws {
        let d = NetworkSpec.defaultNetwork
        XCTAssertEqual(d.name, "default"); XCTAssertEqual(d.mode, .flatdhcp)
        XCTAssertEqual(d.cidr.description, "10.0.0.0/16"); XCTAssertEqual(d.bridge, "br100")
        XCTAssertEqual(d.gateway.description, "10.0.0.1"); XCTAssertEqual(d.dhcpStart.description, "10.0.0.2")
        XCTAssertNil(d.vlanInterface)
        try d.validate(against: [])
        let v = NetworkSpec(name: "v", mode: .vlan, cidr: cidr("10.5.0.0/24"), bridgeInterface: "eth1", vlan: 42)
        XCTAssertEqual(v.bridge, "br42"); XCTAssertEqual(v.vlanInterface, "vlan42")
        try v.validate(against: [d])
    }

    func testRefusals() {
        let base = NetworkSpec(name: "n", mode: .flatdhcp, cidr: cidr("10.1.0.0/24"))
        var s = base; s.gateway = ip("10.2.0.1")
        assertRefused(try s.validate(against: []), containing: "outside cidr")
        s = base; s.gateway = ip("10.1.0.0")
        assertRefused(try s.validate(against: []), containing: "network address")
        s = base; s.gateway = ip("10.1.0.255")
        assertRefused(try s.validate(against: []), containing: "broadcast")
        s = base; s.dhcpStart = ip("10.1.1.5")
        assertRefused(try s.validate(against: []), containing: "dhcp_start")
        s = base; s.bridge = "a-very-long-bridge"
        assertRefused(try s.validate(against: []), containing: "15 characters")
        s = base; s.bridge = "br 0"
        assertRefused(try s.validate(against: []), containing: "may only contain")
        s = base; s.vlan = 5
        assertRefused(try s.validate(against: []), containing: "only used in vlan mode")
        s = base; s.name = "bad/name"
        assertRefused(try s.validate(against: []), containing: "network name")
        s = NetworkSpec(name: "v", mode: .vlan, cidr: cidr("10.1.0.0/24"), bridgeInterface: "eth0")
        assertRefused(try s.validate(against: []), containing: "needs a vlan id")
        s.vlan = 4095
        assertRefused(try s.validate(against: []), containing: "outside 1-4094")
        s.vlan = 7; s.bridgeInterface = nil
        assertRefused(try s.validate(against: []), containing: "needs bridge_interface")
        s = NetworkSpec(name: "tiny", mode: .flat, cidr: cidr("10.1.0.0/31"))
        assertRefused(try s.validate(against: []), containing: "too small")
        s = NetworkSpec(name: "tiny", mode: .flat, cidr: cidr("10.1.0.0/30"))
        XCTAssertNoThrow(try s.validate(against: []))
        XCTAssertEqual(s.allocatableCount, 1)
        s.dhcpStart = ip("10.1.0.3")
        assertRefused(try s.validate(against: []), containing: "dhcp_start")
        s = base; s.floatingRange = cidr("10.1.0.128/25")
        assertRefused(try s.validate(against: []), containing: "overlaps this network")
    }

    func testRefusalsAgainstOthers() {
        let a = NetworkSpec(name: "a", mode: .flatdhcp, cidr: cidr("10.1.0.0/16"), floatingRange: cidr("172.16.0.0/24"))
        let v = NetworkSpec(name: "v", mode: .vlan, cidr: cidr("10.9.0.0/24"), bridgeInterface: "eth0", vlan: 9)
        assertRefused(try NetworkSpec(name: "b", mode: .flat, cidr: cidr("10.1.5.0/24")).validate(against: [a]), containing: "overlaps network a's cidr")
        assertRefused(try NetworkSpec(name: "b", mode: .flat, cidr: cidr("172.16.0.0/28")).validate(against: [a]), containing: "a's floating_range")
        assertRefused(try NetworkSpec(name: "b", mode: .flat, cidr: cidr("10.2.0.0/24"), floatingRange: cidr("10.1.2.0/24")).validate(against: [a]),
                      containing: "floating_range 10.1.2.0/24 overlaps network a's cidr")
        assertRefused(try NetworkSpec(name: "b", mode: .flat, cidr: cidr("10.2.0.0/24"), floatingRange: cidr("172.16.0.0/16")).validate(against: [a]),
                      containing: "overlaps network a's floating_range")
        assertRefused(try NetworkSpec(name: "w", mode: .vlan, cidr: cidr("10.8.0.0/24"), bridge: "brx", bridgeInterface: "eth0", vlan: 9).validate(against: [v]),
                      containing: "vlan 9 is already used")
        assertRefused(try NetworkSpec(name: "w", mode: .flat, cidr: cidr("10.8.0.0/24"), bridge: "br9").validate(against: [v]),
                      containing: "bridge br9 is already used")
        // The same name is the spec being updated, not another network.
        XCTAssertNoThrow(try NetworkSpec(name: "a", mode: .flat, cidr: cidr("10.1.0.0/24")).validate(against: [a, v]))
        // Flat networks share br100 like nova-network's.
        XCTAssertNoThrow(try NetworkSpec(name: "c", mode: .flat, cidr: cidr("10.3.0.0/24")).validate(against: [a, v]))
    }

    func testFieldsFromWrittenBytes() throws {
        var s = NetworkSpec(name: "n", mode: .flatdhcp, cidr: cidr("10.1.0.0/24"))
        try s.set(.cidr, from: Array("192.168.7.0/24\n".utf8))
        XCTAssertEqual(s.gateway.description, "192.168.7.1", "a default gateway follows the cidr")
        XCTAssertEqual(s.dhcpStart.description, "192.168.7.2")
        try s.set(.gateway, from: Array("  192.168.7.254 \n".utf8))
        XCTAssertEqual(s.dhcpStart.description, "192.168.7.255", "a default dhcp_start follows the gateway")
        try s.set(.dhcpStart, from: Array("192.168.7.10".utf8))
        try s.set(.gateway, from: Array("".utf8))
        XCTAssertEqual(s.gateway.description, "192.168.7.1"); XCTAssertEqual(s.dhcpStart.description, "192.168.7.10")
        try s.set(.dns, from: Array("8.8.8.8\n1.1.1.1, 8.8.8.8\n".utf8))
        XCTAssertEqual(s.text(of: .dns), "8.8.8.8\n1.1.1.1\n")
        try s.set(.mode, from: Array("vlan\n".utf8))
        try s.set(.vlan, from: Array("12\n".utf8))
        XCTAssertEqual(s.bridge, "br12", "a default bridge follows mode and vlan")
        try s.set(.bridgeInterface, from: Array("eth1".utf8))
        try s.set(.floatingRange, from: Array("172.20.0.0/24\n".utf8))
        try s.validate(against: [])
        XCTAssertEqual(NetworkField.allCases.map { s.text(of: $0) }.joined(),
                       "vlan\n192.168.7.0/24\n192.168.7.1\n8.8.8.8\n1.1.1.1\nbr12\n12\neth1\n192.168.7.10\n172.20.0.0/24\n")
        try s.set(.vlan, from: [])
        XCTAssertEqual(s.text(of: .vlan), "")
    }

    func testFieldRefusals() {
        var s = NetworkSpec.defaultNetwork
        assertRefused(try s.set(.cidr, from: Array("10.0.0.0/8\n\n".utf8)), containing: "one value per file")
        assertRefused(try s.set(.cidr, from: [0x31, 0x00]), containing: "NUL")
        assertRefused(try s.set(.cidr, from: [0xff, 0xfe]), containing: "UTF-8")
        assertRefused(try s.set(.cidr, from: Array("10.0.0.0/33".utf8)), containing: "cidr:")
        assertRefused(try s.set(.mode, from: Array("bridge".utf8)), containing: "flat, flatdhcp, vlan")
        assertRefused(try s.set(.vlan, from: Array("0".utf8)), containing: "1 to 4094")
        assertRefused(try s.set(.vlan, from: Array("+5".utf8)), containing: "1 to 4094")
        assertRefused(try s.set(.gateway, from: Array("10.0.0".utf8)), containing: "gateway:")
        assertRefused(try s.set(.dns, from: Array("8.8.8.8 nope".utf8)), containing: "dns:")
        assertRefused(try s.set(.bridge, from: Array("-br".utf8)), containing: "start with '-'")
        assertRefused(try s.set(.cidr, from: []), containing: "cidr:")
        XCTAssertEqual(s, NetworkSpec.defaultNetwork, "refused writes change nothing")
    }
}
