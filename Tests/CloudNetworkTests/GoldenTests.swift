import CloudCore
import CloudNetwork
import Foundation
import XCTest

/// The rendered dnsmasq and nftables files, compared byte for byte with the files under
/// `Golden/`. After an intended change, regenerate them with
/// `CLOUDFS_UPDATE_GOLDEN=1 swift test --filter CloudNetworkTests.GoldenTests` and review the diff.
final class GoldenTests: XCTestCase {
    static let flat = NetworkSpec(name: "default", mode: .flatdhcp, cidr: cidr("10.0.0.0/16"),
                                  dns: [ip("8.8.8.8"), ip("8.8.4.4")], floatingRange: cidr("172.24.4.0/24"))
    static let vlan = NetworkSpec(name: "tenant_a.net", mode: .vlan, cidr: cidr("10.20.0.0/24"),
                                  bridgeInterface: "eth1", vlan: 20, dhcpStart: ip("10.20.0.10"))

    func testDnsmasqConfig() {
        assertGolden("dnsmasq-default.conf", DnsmasqConfig(spec: Self.flat, directory: "/var/lib/cloudfs/networks/default").configText)
        assertGolden("dnsmasq-vlan.conf", DnsmasqConfig(spec: Self.vlan, directory: "/var/lib/cloudfs/networks/tenant_a.net/",
                                                         leaseSeconds: 120, user: "dnsmasq").configText)
    }

    func testDnsmasqHosts() throws {
        let hosts = [
            try DHCPHost(mac: "fa:16:3e:00:00:0a", ip: ip("10.0.1.3"), instanceName: "db_1"),
            try DHCPHost(mac: "FA:16:3E:12:34:56", ip: ip("10.0.0.2"), instanceName: "web1"),
            try DHCPHost(mac: "fa:16:3e:ab:cd:ef", ip: ip("10.0.0.10"), instanceName: "-Web.2-"),
        ]
        assertGolden("dnsmasq-hosts", DnsmasqConfig.hostsText(hosts.reversed() + hosts))
        assertRefused(try DHCPHost(mac: "fa:16:3e:00:00", ip: ip("10.0.0.2"), instanceName: "x"), containing: "not a MAC")
        XCTAssertEqual(DHCPHost.hostname(for: "..."), "instance")
    }

    func testNftablesRuleset() throws {
        let web = try SecurityGroupRule.parseRules("tcp 22 0.0.0.0/0\ntcp 80-81 10.0.0.0/8\nicmp - 0.0.0.0/0\nudp - 192.168.0.0/16\n")
        let ports = [
            InstancePort(interface: "tap-web2", address: ip("10.0.0.3"), dhcpServer: ip("10.0.0.1"), rules: []),
            InstancePort(interface: "tap-web1", address: ip("10.0.0.2"), dhcpServer: ip("10.0.0.1"), rules: web),
        ]
        let assocs = [
            FloatingIPAssociation(floating: ip("172.24.4.20"), fixed: ip("10.0.0.3"), fixedNetwork: Self.flat.cidr),
            FloatingIPAssociation(floating: ip("172.24.4.10"), fixed: ip("10.0.0.2"), fixedNetwork: Self.flat.cidr),
        ]
        assertGolden("nftables-full.nft", try NftablesRuleset.render(associations: assocs, ports: ports))
        assertGolden("nftables-empty.nft", try NftablesRuleset.render(associations: [], ports: []))
        // Managed networks: SNAT of each fixed range and the metadata redirect to its gateway.
        let nats = [NetworkNAT(bridge: "br100", cidr: Self.flat.cidr, gateway: ip("10.0.0.1"))]
        assertGolden("nftables-networks.nft", try NftablesRuleset.render(associations: assocs, ports: ports, networks: nats, metadataPort: 8775))
        assertGolden("nftables-teardown.nft", NftablesRuleset.teardown)
        var dup = ports; dup[0].address = ip("10.0.0.2")
        assertRefused(try NftablesRuleset.render(associations: [], ports: dup), containing: "two ports have fixed IP 10.0.0.2")
    }

    /// Compares `actual` with `Golden/NAME`, or writes it there when CLOUDFS_UPDATE_GOLDEN=1.
    func assertGolden(_ name: String, _ actual: String, file: StaticString = #filePath, line: UInt = #line) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name)")
        if ProcessInfo.processInfo.environment["CLOUDFS_UPDATE_GOLDEN"] == "1" {
            XCTAssertNoThrow(try actual.write(to: url, atomically: true, encoding: .utf8), file: file, line: line)
            return
        }
        guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
            return XCTFail("missing golden file \(url.path); run with CLOUDFS_UPDATE_GOLDEN=1", file: file, line: line)
        }
        XCTAssertEqual(actual, expected, "\(name) differs from its golden file", file: file, line: line)
    }
}
