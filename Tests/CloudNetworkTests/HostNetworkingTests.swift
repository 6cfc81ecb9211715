import CloudCore
import CloudNetwork
import Foundation
import XCTest

/// Applies real host networking, but only inside a network namespace this test creates
/// (ENVIRONMENT.md "Network"); the namespace, its dnsmasq and the state directory are always
/// removed in teardown, even when the test fails.
final class HostNetworkingTests: XCTestCase {
    var ns = ""
    var state = ""
    var host: HostNetworking!
    let root = CommandRunner()

    override func setUpWithError() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root for ip netns") }
        for tool in ["ip", "nft", "dnsmasq", "nsenter", "sysctl"] where (try? root.run(["which", tool]).status) != 0 {
            throw XCTSkip("\(tool) is not installed (scripts/install-deps.sh)")
        }
        ns = "cloudfs-test-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        state = NSTemporaryDirectory() + "cloudfs-net-\(ns)"
        try root.check(["ip", "netns", "add", ns])
        addTeardownBlock { [ns, state] in
            // dnsmasq first (it would keep running after the namespace is gone), then the rest.
            let h = HostNetworking(stateDirectory: state, runner: .inNetworkNamespace(ns))
            for dir in (try? FileManager.default.contentsOfDirectory(atPath: state + "/networks")) ?? [] {
                if let pid = h.dnsmasqPID(NetworkSpec(name: dir, mode: .flatdhcp, cidr: cidr("10.0.0.0/24"))) { kill(pid, SIGKILL) }
            }
            _ = try? CommandRunner().run(["ip", "netns", "del", ns])
            try? FileManager.default.removeItem(atPath: state)
        }
        host = HostNetworking(stateDirectory: state, runner: .inNetworkNamespace(ns))
    }

    func inNS(_ argv: [String]) throws -> String { try CommandRunner.inNetworkNamespace(ns).check(argv) }

    func testBridgeDHCPAndRulesetAreAppliedIdempotentlyAndTornDown() throws {
        let spec = NetworkSpec(name: "default", mode: .flatdhcp, cidr: cidr("10.77.0.0/24"))
        try host.ensureBridge(spec)
        try host.ensureBridge(spec)
        let addr = try root.check(["ip", "-n", ns, "-o", "addr", "show", "dev", "br100"])
        XCTAssertTrue(addr.contains("inet 10.77.0.1/24"), addr)
        XCTAssertEqual(addr.components(separatedBy: "inet ").count, 2, "one address after two ensures: \(addr)")

        // dnsmasq: started, left alone, reloaded by SIGHUP for new hosts, restarted for new config.
        let web1 = try DHCPHost(mac: "fa:16:3e:00:00:01", ip: ip("10.77.0.2"), instanceName: "web1")
        let web2 = try DHCPHost(mac: "fa:16:3e:00:00:02", ip: ip("10.77.0.3"), instanceName: "web2")
        XCTAssertEqual(try host.syncDHCP(spec, hosts: [web1]), .started)
        let pid = try XCTUnwrap(host.dnsmasqPID(spec), "dnsmasq runs after start")
        XCTAssertEqual(try host.syncDHCP(spec, hosts: [web1]), .unchanged)
        let cfg = host.dnsmasqConfig(for: spec)
        XCTAssertEqual(try String(contentsOfFile: cfg.hostsFile, encoding: .utf8), "fa:16:3e:00:00:01,10.77.0.2,web1\n")
        XCTAssertEqual(try host.syncDHCP(spec, hosts: [web2, web1]), .reloaded)
        XCTAssertEqual(host.dnsmasqPID(spec), pid, "a hosts change is a SIGHUP, not a restart")
        XCTAssertTrue(waitFor { self.log(cfg).components(separatedBy: "read \(cfg.hostsFile)").count >= 3 },
                      "dnsmasq re-read its hosts file after SIGHUP:\n\(log(cfg))")
        let listening = try inNS(["cat", "/proc/net/udp"])
        XCTAssertTrue(listening.contains(":0043 "), "dnsmasq listens on the DHCP port inside the namespace")
        var withDNS = spec; withDNS.dns = [ip("10.77.0.1")]
        XCTAssertEqual(try host.syncDHCP(withDNS, hosts: [web2, web1]), .restarted)
        let newPid = try XCTUnwrap(host.dnsmasqPID(withDNS))
        XCTAssertNotEqual(newPid, pid)
        XCTAssertFalse(alive(pid), "the old dnsmasq is gone")

        // nftables: applied inside the namespace, twice gives the same ruleset.
        let rules = try SecurityGroupRule.parseRules("tcp 22 0.0.0.0/0\n")
        let ports = [InstancePort(interface: "tap1", address: ip("10.77.0.2"), dhcpServer: spec.dhcpServer, rules: rules)]
        let assoc = [FloatingIPAssociation(floating: ip("172.30.0.5"), fixed: ip("10.77.0.2"), fixedNetwork: spec.cidr)]
        try host.applyRuleset(associations: assoc, ports: ports)
        let first = try inNS(["nft", "list", "ruleset"])
        try host.applyRuleset(associations: assoc, ports: ports)
        XCTAssertEqual(try inNS(["nft", "list", "ruleset"]), first, "applying twice changes nothing")
        for needle in ["table ip cloudfs_nat", "ip daddr 172.30.0.5 dnat to 10.77.0.2", "snat to 172.30.0.5",
                       "table inet cloudfs_filter", "chain sg_tap1", "tcp dport 22 accept", "ct state established,related accept"] {
            XCTAssertTrue(first.contains(needle), "missing '\(needle)' in\n\(first)")
        }
        try host.applyRuleset(associations: [], ports: [])
        XCTAssertFalse(try inNS(["nft", "list", "ruleset"]).contains("dnat"), "a removed association leaves no rule")
        XCTAssertEqual(try inNS(["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"]), "1\n")

        try host.teardown(networks: [withDNS])
        try host.teardown(networks: [withDNS])
        XCTAssertNil(host.dnsmasqPID(withDNS))
        XCTAssertFalse(alive(newPid), "dnsmasq stopped")
        XCTAssertFalse(host.linkExists("br100"))
        XCTAssertEqual(try inNS(["nft", "list", "ruleset"]), "")
    }

    func testFailuresCarryTheCommandsStderr() throws {
        let spec = NetworkSpec(name: "up", mode: .flat, cidr: cidr("10.78.0.0/24"), bridgeInterface: "nosuchif0")
        assertRefused(try host.ensureBridge(spec), .io, containing: "nosuchif0")
        // The bridge itself was made before the uplink failed; a retry gets just as far.
        XCTAssertTrue(host.linkExists("br100"))
        assertRefused(try host.ensureBridge(spec), .io, containing: "Cannot find device")
    }

    func testVLANNetworkGetsItsInterfaceOnTheBridge() throws {
        _ = try inNS(["ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1"])
        let spec = NetworkSpec(name: "t", mode: .vlan, cidr: cidr("10.79.0.0/24"), bridgeInterface: "uplink0", vlan: 79)
        let refusal: CloudError? = { () -> CloudError? in
            do throws(CloudError) { try host.ensureBridge(spec); return nil } catch { return error }
        }()
        if let refusal {
            if refusal.reason.contains("Unknown device type") {
                throw XCTSkip("this kernel has no 802.1Q support (CONFIG_VLAN_8021Q): \(refusal.reason)")
            }
            throw refusal
        }
        try host.ensureBridge(spec)
        let link = try root.check(["ip", "-n", ns, "-d", "link", "show", "dev", "vlan79"])
        XCTAssertTrue(link.contains("master br79") && link.contains("vlan protocol 802.1Q id 79"), link)
        try host.teardown(networks: [spec])
        XCTAssertFalse(host.linkExists("vlan79")); XCTAssertFalse(host.linkExists("br79"))
    }

    /// A flat network joins the operator's bridge: the teardown leaves it, but removes the
    /// floating route through it and any dnsmasq still running from a network directory
    /// whose network is gone.
    func testTeardownKeepsAFlatBridgeAndStopsAStrayDNSMasq() throws {
        _ = try inNS(["ip", "link", "add", "brop", "type", "bridge"])
        _ = try inNS(["ip", "link", "set", "brop", "up"])
        let flat = NetworkSpec(name: "flat1", mode: .flat, cidr: cidr("10.81.0.0/24"), bridge: "brop",
                               floatingRange: cidr("10.82.0.0/24"))
        try host.ensureFloatingRoute(flat)
        XCTAssertTrue(try inNS(["ip", "route"]).contains("10.82.0.0/24 dev brop"))
        let gone = NetworkSpec(name: "gone", mode: .flatdhcp, cidr: cidr("10.83.0.0/24"))
        try host.ensureBridge(gone)
        try host.syncDHCP(gone, hosts: [])
        let stray = try XCTUnwrap(host.dnsmasqPID(gone))
        XCTAssertEqual(host.runningDHCPDirectories(), ["gone": stray])

        let done = try host.teardown(networks: [flat])
        XCTAssertEqual(done.stoppedDHCP, ["gone": stray])
        XCTAssertEqual(done.removedLinks, [])
        XCTAssertFalse(alive(stray), "the stray dnsmasq was stopped")
        XCTAssertTrue(host.linkExists("brop"), "the operator's bridge stays")
        XCTAssertFalse(try inNS(["ip", "route"]).contains("10.82.0.0/24"), "the floating route is gone")
        XCTAssertEqual(host.runningDHCPDirectories(), [:])
    }

    /// True while `pid` runs (an exited daemon not yet reaped by init is a zombie: not running).
    func alive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    func log(_ cfg: DnsmasqConfig) -> String { (try? String(contentsOfFile: cfg.logFile, encoding: .utf8)) ?? "" }

    func waitFor(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end { if condition() { return true }; usleep(20_000) }
        return condition()
    }
}

extension HostNetworkingTests {
    /// A vxlan segment in the namespace: bridge without address, the VXLAN device on it,
    /// flood entries per peer and unicast entries per remote MAC; a second apply changes
    /// nothing, a changed plan deletes the stale entries, removal leaves no link.
    func testVXLANSegmentGetsDeviceAndForwardingEntries() throws {
        _ = try inNS(["ip", "link", "set", "lo", "up"])
        var seg = VXLANSegment(network: "t", vni: 4242, bridge: "brvx4242", device: "vxlan4242",
                               peers: ["10.251.0.2", "10.251.0.3"], macs: ["FA:16:3E:00:00:09": "10.251.0.3"])
        let first = try host.ensureSegment(seg, local: "127.0.0.1")
        XCTAssertTrue(first.contains("vxlan vxlan4242 vni 4242 created"), "\(first)")
        let link = try inNS(["ip", "-d", "link", "show", "dev", "vxlan4242"])
        XCTAssertTrue(link.contains("vxlan id 4242") && link.contains("master brvx4242") && link.contains("nolearning")
                      && link.contains("dstport 4789") && link.contains("local 127.0.0.1"), link)
        let addrs = try inNS(["ip", "-o", "-4", "addr", "show", "dev", "brvx4242"])
        XCTAssertEqual(addrs, "", "the host holds no address on a tenant segment")
        XCTAssertEqual(try host.forwardingEntries(device: "vxlan4242"), [
            FDBEntry(mac: "00:00:00:00:00:00", dst: "10.251.0.2"), FDBEntry(mac: "00:00:00:00:00:00", dst: "10.251.0.3"),
            FDBEntry(mac: "fa:16:3e:00:00:09", dst: "10.251.0.3")])
        XCTAssertEqual(try host.ensureSegment(seg, local: "127.0.0.1"), [], "a second apply changes nothing")

        seg.peers = ["10.251.0.2"]; seg.macs = ["fa:16:3e:00:00:0a": "10.251.0.2"]
        let second = try host.ensureSegment(seg, local: "127.0.0.1")
        XCTAssertEqual(Set(second), ["fdb 00:00:00:00:00:00 dst 10.251.0.3 deleted", "fdb fa:16:3e:00:00:09 dst 10.251.0.3 deleted",
                                     "fdb fa:16:3e:00:00:0a dst 10.251.0.2 added"])
        XCTAssertEqual(try host.forwardingEntries(device: "vxlan4242"), [
            FDBEntry(mac: "00:00:00:00:00:00", dst: "10.251.0.2"), FDBEntry(mac: "fa:16:3e:00:00:0a", dst: "10.251.0.2")])
        XCTAssertEqual(try host.removeSegment(bridge: seg.bridge, device: seg.device), ["vxlan4242", "brvx4242"])
        XCTAssertFalse(host.linkExists("vxlan4242")); XCTAssertFalse(host.linkExists("brvx4242"))
    }

    /// A segment's local DHCP port: its own namespace with the network's DHCP address and
    /// the local-port MAC on the segment's bridge, dnsmasq inside it answering a real DHCP
    /// client on the bridge with the planned address, the bridge table keeping the port's
    /// frames off the tunnel; a second apply changes nothing; removal leaves nothing.
    func testLocalPortServesTheSegmentsDHCPFromItsOwnNamespace() throws {
        let portNS = HostNetworking.localPortNamespace(vni: 4243)
        addTeardownBlock { _ = try? CommandRunner().run(["ip", "netns", "del", portNS]) }
        _ = try inNS(["ip", "link", "set", "lo", "up"])
        let guestMAC = "fa:16:3e:00:00:21"
        let seg = VXLANSegment(network: "t2", vni: 4243, bridge: "brvx4243", device: "vxlan4243", peers: ["10.251.0.2"], macs: [:],
                               dhcp: SegmentDHCP(server: "10.72.0.1", prefix: 24, dns: [], hosts: ["\(guestMAC),10.72.0.7,web7"]))
        try host.isolateLocalPorts(macs: [SegmentDHCP.portMAC(vni: 4243)])
        _ = try host.ensureSegment(seg, local: "127.0.0.1")
        let made = try host.ensureLocalPort(seg)
        XCTAssertTrue(made.contains("namespace \(portNS) created") && made.contains("dnsmasq started"), "\(made)")
        let port = try root.check(["ip", "-n", portNS, "-o", "addr", "show", "dev", "dhn4243"])
        XCTAssertTrue(port.contains("inet 10.72.0.1/24"), port)
        let portLink = try root.check(["ip", "-n", portNS, "link", "show", "dev", "dhn4243"])
        XCTAssertTrue(portLink.contains("link/ether 0a:cf:00:10:93:01"), portLink)
        XCTAssertTrue(try inNS(["ip", "link", "show", "dev", "dhp4243"]).contains("master brvx4243"))
        XCTAssertEqual(try inNS(["ip", "-o", "-4", "addr", "show", "dev", "brvx4243"]), "", "the host itself stays off the segment")
        let table = try inNS(["nft", "list", "table", "bridge", "cloudfs_localport"])
        XCTAssertTrue(table.contains("oifname \"vxlan*\" ether saddr 0a:cf:00:10:93:01 drop"), table)
        XCTAssertEqual(try host.ensureLocalPort(seg), [], "a second apply changes nothing")

        // A real client on the bridge: busybox udhcpc in the test namespace behind a veth.
        _ = try inNS(["ip", "link", "add", "gst4243", "type", "veth", "peer", "name", "gsp4243"])
        _ = try inNS(["ip", "link", "set", "dev", "gst4243", "address", guestMAC])
        _ = try inNS(["ip", "link", "set", "dev", "gsp4243", "master", "brvx4243"])
        for dev in ["gst4243", "gsp4243"] { _ = try inNS(["ip", "link", "set", "dev", dev, "up"]) }
        let lease = try CommandRunner.inNetworkNamespace(ns).run(["busybox", "udhcpc", "-i", "gst4243", "-n", "-q", "-t", "5", "-T", "1", "-s", "/bin/true"])
        XCTAssertTrue((lease.stdout + lease.stderr).contains("lease of 10.72.0.7 obtained from 10.72.0.1"), lease.stdout + lease.stderr)

        let removed = try host.removeLocalPort(network: "t2", vni: 4243)
        // The pair first (at once, both ends), then the namespace: nothing is left to the
        // kernel's asynchronous teardown of a namespace (CI once saw dhp4243 outlive it).
        XCTAssertEqual(removed, ["dnsmasq", "dhp4243", "namespace \(portNS)"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/run/netns/\(portNS)"))
        XCTAssertFalse(host.linkExists("dhp4243"))
        try host.isolateLocalPorts(macs: [])
        XCTAssertNotEqual(try CommandRunner.inNetworkNamespace(ns).run(["nft", "list", "table", "bridge", "cloudfs_localport"]).status, 0)
    }
}
