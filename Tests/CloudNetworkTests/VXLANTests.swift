import CloudCore
import CloudNetwork
import Foundation
import XCTest

/// vxlan networks: the spec's rules (Neutron's VXLAN type driver) and the kernel check
/// that refuses vlan on kernels without 802.1Q.
final class VXLANTests: XCTestCase {
    func testVXLANSpecDefaultsAndRefusals() throws {
        let x = NetworkSpec(name: "x", mode: .vxlan, cidr: cidr("10.60.0.0/24"), vni: 5001)
        XCTAssertEqual(x.bridge, "brvx5001"); XCTAssertEqual(x.vxlanInterface, "vxlan5001")
        XCTAssertEqual(x.segmentID, 5001); XCTAssertFalse(x.mode.usesDHCP); XCTAssertTrue(x.mode.isProjectSegment)
        try x.validate(against: [])
        XCTAssertEqual(NetworkSpec(name: "m", mode: .vxlan, cidr: cidr("10.61.0.0/24"), vni: 16_777_215).vxlanInterface?.count, 13,
                       "the longest device name fits IFNAMSIZ")

        var s = x; s.vni = nil
        assertRefused(try s.validate(against: []), containing: "needs a vni")
        s.vni = 16_777_216
        assertRefused(try s.validate(against: []), containing: "outside 1-16777215")
        s = x; s.vlan = 4
        assertRefused(try s.validate(against: []), containing: "vlan 4 is only used in vlan mode")
        s = x; s.bridgeInterface = "eth0"
        assertRefused(try s.validate(against: []), containing: "no bridge_interface")
        s = x; s.floatingRange = cidr("172.20.0.0/24")
        assertRefused(try s.validate(against: []), containing: "no floating_range")
        s = NetworkSpec(name: "f", mode: .flatdhcp, cidr: cidr("10.62.0.0/24")); s.vni = 3
        assertRefused(try s.validate(against: []), containing: "only used in vxlan mode")
        let other = NetworkSpec(name: "y", mode: .vxlan, cidr: cidr("10.63.0.0/24"), vni: 5001)
        assertRefused(try other.validate(against: [x]), containing: "vni 5001 is already used by network x")
        var project = x; project.project = "p1"
        XCTAssertNoThrow(try project.validate(against: []), "vxlan networks belong to a project, as vlan ones do")
    }

    func testVNIField() throws {
        var s = NetworkSpec(name: "x", mode: .flatdhcp, cidr: cidr("10.60.0.0/24"), bridge: "br100")
        try s.set(.mode, text: "vxlan")
        try s.set(.vni, from: Array("77\n".utf8))
        XCTAssertEqual(s.vni, 77); XCTAssertEqual(s.text(of: .vni), "77\n")
        for bad in ["0", "16777216", "-1", "0x10", "1 2", "123456789"] {
            assertRefused(try s.set(.vni, text: bad), containing: "not a VXLAN network identifier")
        }
        try s.set(.vni, text: "")
        XCTAssertNil(s.vni); XCTAssertEqual(s.text(of: .vni), "")
        assertRefused(try NetworkSpec.parseMode("vxlan2"), containing: "flat, flatdhcp, vlan, vxlan")
    }

    /// Reads a made-up /proc, /sys and /lib/modules: built in, loadable and missing.
    func testKernelFeaturesProbe() throws {
        let root = NSTemporaryDirectory() + "cloudfs-kernel-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/proc/sys/kernel", withIntermediateDirectories: true)
        try "6.1.0-test\n".write(toFile: root + "/proc/sys/kernel/osrelease", atomically: true, encoding: .utf8)
        var k = KernelFeatures.probe(root: root)
        XCTAssertEqual(k, KernelFeatures(vlan: false, vxlan: false))
        XCTAssertEqual(k.refusal(for: .vlan)?.reason, "this kernel has no 802.1Q; use vxlan")
        XCTAssertEqual(k.refusal(for: .vlan)?.errno, .notSupported)
        XCTAssertNil(k.refusal(for: .flatdhcp))

        try fm.createDirectory(atPath: root + "/sys/module/vxlan", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: root + "/lib/modules/6.1.0-test/kernel/net/8021q", withIntermediateDirectories: true)
        try Data().write(to: URL(fileURLWithPath: root + "/lib/modules/6.1.0-test/kernel/net/8021q/8021q.ko.xz"))
        k = KernelFeatures.probe(root: root)
        XCTAssertEqual(k, KernelFeatures(vlan: true, vxlan: true), "loaded vxlan, loadable 8021q")
        XCTAssertNil(k.refusal(for: .vlan))

        // This machine: whatever it has, the probe agrees with /proc/net/vlan and /sys/module.
        let here = KernelFeatures.probe()
        if fm.fileExists(atPath: "/proc/net/vlan") { XCTAssertTrue(here.vlan) }
        if fm.fileExists(atPath: "/sys/module/vxlan") { XCTAssertTrue(here.vxlan) }
    }
}
