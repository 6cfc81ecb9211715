import Foundation
import XCTest

/// `/networks`, `/floating-ips` and `/security-groups` through a real mount (test:/// host,
/// host networking not managed): validation errnos with reasons in /events, leases,
/// exhaustion, floating IP association from both sides, security group rules, VlanManager's
/// project association.
final class NetworkMountTests: MountTestCase {
    func testNetworksAreValidatedOnWrite() {
        XCTAssertEqual(ok("ls networks"), "default\n")
        XCTAssertEqual(ok("ls networks/default").split(separator: "\n"),
                       ["bridge", "bridge_interface", "cidr", "dhcp_start", "dns", "floating_range", "free", "gateway", "leases", "mode",
                        "project", "vlan", "vni"])
        XCTAssertEqual(read("networks/default/mode"), "flatdhcp")
        XCTAssertEqual(read("networks/default/cidr"), "10.0.0.0/16")
        XCTAssertEqual(read("networks/default/free"), "65533")
        ok("mkdir networks/lab")
        XCTAssertTrue(fails("echo 10.0.3.0/24 > networks/lab/cidr").contains("Invalid argument"))
        XCTAssertTrue(fails("echo 10.5.0.0/33 > networks/lab/cidr").contains("Invalid argument"))
        XCTAssertTrue(fails("echo 10.9.9.1 > networks/lab/gateway").contains("Invalid argument"))
        XCTAssertTrue(fails("echo bridged > networks/lab/mode").contains("Invalid argument"))
        XCTAssertTrue(fails("echo 5 > networks/lab/free").contains("Read-only file system"))
        let events = read("events")
        XCTAssertTrue(events.contains("overlaps network default"), events)
        XCTAssertTrue(events.contains("is outside cidr"), events)
        ok("echo 192.168.50.0/24 > networks/lab/cidr && echo 192.168.50.10 > networks/lab/dhcp_start")
        XCTAssertEqual(read("networks/lab/gateway"), "192.168.50.1")
        XCTAssertEqual(read("networks/lab/free"), "245")
        ok("printf '192.168.50.1\\n192.168.50.2\\n' > networks/lab/dns")
        XCTAssertEqual(read("networks/lab/dns"), "192.168.50.1\n192.168.50.2")
        XCTAssertTrue(fails("echo 7 > networks/lab/vlan").contains("Invalid argument"), "vlan ids are for vlan mode")
        XCTAssertTrue(fails("echo vlan > networks/lab/mode").contains("Invalid argument"), "vlan mode needs bridge_interface")
        ok("echo eth0 > networks/lab/bridge_interface && echo vlan > networks/lab/mode")
        XCTAssertEqual(read("networks/lab/vlan"), "100", "VlanManager's vlan_start")
        ok("echo 7 > networks/lab/vlan")
        XCTAssertEqual(read("networks/lab/vlan"), "7")
        ok("rmdir networks/lab")
        XCTAssertEqual(ok("ls networks"), "default\n")
    }

    func testLeasesExhaustionAndFloatingIPs() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir networks/small && echo 10.6.0.0/30 > networks/small/cidr && echo small > defaults/network")
        ok("mkdir instances/a && timeout 30 cat instances/a/wait")
        XCTAssertEqual(read("instances/a/ip"), "10.6.0.2")
        XCTAssertEqual(read("networks/small/leases"), "10.6.0.2 \(read("instances/a/mac")) a")
        XCTAssertEqual(read("networks/small/free"), "0")
        XCTAssertTrue(fails("mkdir instances/b").contains("No space left on device"))
        XCTAssertTrue(read("events").contains("No more fixed IPs"))
        XCTAssertTrue(fails("rmdir networks/small").contains("busy"))

        ok("echo 10.99.0.0/29 > networks/small/floating_range")
        ok("echo auto > instances/a/floating_ip")
        XCTAssertEqual(read("instances/a/floating_ip"), "10.99.0.1")
        XCTAssertEqual(ok("ls floating-ips"), "10.99.0.1\n")
        XCTAssertEqual(read("floating-ips/10.99.0.1/instance"), "a")
        XCTAssertEqual(read("floating-ips/10.99.0.1/pool"), "small")
        ok("mkdir floating-ips/10.99.0.5")
        ok("echo a > floating-ips/10.99.0.5/instance")
        XCTAssertEqual(read("instances/a/floating_ip"), "10.99.0.5", "one floating IP per instance: the new one replaces it")
        XCTAssertEqual(read("floating-ips/10.99.0.1/instance"), "")
        ok(": > instances/a/floating_ip")
        XCTAssertEqual(read("floating-ips/10.99.0.5/instance"), "")
        XCTAssertTrue(fails("mkdir floating-ips/10.98.0.1").contains("No such file"))
        XCTAssertTrue(fails("echo nope > instances/a/floating_ip").contains("Invalid argument"))
        ok("rmdir floating-ips/10.99.0.5")
        XCTAssertEqual(ok("ls floating-ips"), "10.99.0.1\n")
    }

    func testSecurityGroupRules() {
        XCTAssertEqual(ok("ls security-groups"), "default\n")
        XCTAssertEqual(read("security-groups/default/rules"), "")
        ok("printf 'tcp 22 0.0.0.0/0\\nicmp - 10.0.0.0/8 # ping\\n' > security-groups/default/rules")
        XCTAssertEqual(read("security-groups/default/rules"), "tcp 22 0.0.0.0/0\nicmp - 10.0.0.0/8")
        XCTAssertTrue(fails("printf 'tcp 22 0.0.0.0/0\\ntcp 99999 0.0.0.0/0\\n' > security-groups/default/rules").contains("Invalid argument"))
        XCTAssertTrue(read("events").contains("line 2: port 99999 is outside 1-65535"))
        ok("mkdir security-groups/web && echo 'tcp 80 0.0.0.0/0' > security-groups/web/rules && rmdir security-groups/web")
        XCTAssertTrue(fails("rmdir security-groups/default").contains("busy"))
    }

    func testVlanNetworkIsAssociatedWithTheProjectOfItsFirstInstance() {
        ok("head -c 1M /dev/zero > '\(work)/d.raw' && cp '\(work)/d.raw' images/disk && echo m1.nano > defaults/flavor")
        ok("mkdir networks/v100 && echo eth0 > networks/v100/bridge_interface && echo vlan > networks/v100/mode")
        XCTAssertEqual(read("networks/v100/vlan"), "100")
        XCTAssertEqual(read("networks/v100/project"), "")
        XCTAssertTrue(fails("echo web > networks/default/project").contains("Invalid argument"), "flatdhcp networks have no project")
        ok("mkdir projects/web projects/ops")   // projects exist before anything goes into them
        ok("echo v100 > defaults/network && echo web > defaults/project")
        ok("mkdir instances/a && timeout 30 cat instances/a/wait")
        XCTAssertEqual(read("instances/a/status"), "ACTIVE")
        XCTAssertEqual(read("networks/v100/project"), "web")
        XCTAssertEqual(read("networks/v100/leases"), "\(read("instances/a/ip")) \(read("instances/a/mac")) a")
        XCTAssertTrue(read("events").split(separator: "\n").contains { $0.contains("network.associated v100 ") && $0.hasSuffix(" project=web") })
        ok("echo ops > defaults/project")
        XCTAssertTrue(fails("mkdir instances/b").contains("No space left on device"))
        XCTAssertTrue(read("events").contains("No more networks available for project ops"))
        XCTAssertTrue(fails("echo > networks/v100/project").contains("busy"), "its instance holds a lease")
        XCTAssertEqual(read("networks/v100/project"), "web")
        ok("rmdir instances/a && for i in $(seq 100); do [ -e instances/a ] || break; sleep 0.1; done; [ ! -e instances/a ]")
        XCTAssertEqual(read("networks/v100/project"), "web", "the association outlives the instance")
        ok(": > networks/v100/project")
        XCTAssertEqual(read("networks/v100/project"), "")
        XCTAssertTrue(read("events").split(separator: "\n").contains { $0.contains("network.disassociated v100 ") && $0.hasSuffix(" project=web") })
    }
}
