import CloudCore
import Foundation
import FoundationXML
@testable import LibvirtCompute
import XCTest

/// Pure tests of the domain XML renderer: structure and escaping, no hypervisor.
final class DomainXMLTests: XCTestCase {
    private func parse(_ xml: String) throws -> XMLElement {
        let doc = try XMLDocument(xmlString: xml, options: [])
        return try XCTUnwrap(doc.rootElement())
    }

    private func value(_ root: XMLElement, _ xpath: String) throws -> String? {
        try root.nodes(forXPath: xpath).first?.stringValue
    }

    func testQemuDomainHasDirectKernelBootSerialFileAndUserNIC() throws {
        let spec = Fixture.spec(diskPath: "/s/disk.qcow2", consolePath: "/s/console.log", mac: "fa:16:3e:aa:bb:cc",
                                kernelPath: "/img/vmlinuz", initrdPath: "/img/initrd", cmdline: "console=ttyS0")
        let root = try parse(DomainXML.render(spec, as: .qemu(type: "qemu", machine: "pc")))
        XCTAssertEqual(try value(root, "/domain/@type"), "qemu")
        XCTAssertEqual(try value(root, "/domain/name"), spec.domainName)
        XCTAssertEqual(try value(root, "/domain/uuid"), spec.uuid)
        XCTAssertEqual(try value(root, "/domain/memory"), "128")
        XCTAssertEqual(try value(root, "/domain/memory/@unit"), "MiB")
        XCTAssertEqual(try value(root, "/domain/vcpu"), "1")
        XCTAssertEqual(try value(root, "/domain/os/type/@machine"), "pc")
        XCTAssertEqual(try value(root, "/domain/os/type/@arch"), "x86_64")
        XCTAssertEqual(try value(root, "/domain/os/kernel"), "/img/vmlinuz")
        XCTAssertEqual(try value(root, "/domain/os/initrd"), "/img/initrd")
        XCTAssertEqual(try value(root, "/domain/os/cmdline"), "console=ttyS0")
        XCTAssertEqual(try value(root, "/domain/on_poweroff"), "destroy")
        XCTAssertEqual(try value(root, "/domain/devices/disk/driver/@type"), "qcow2")
        XCTAssertEqual(try value(root, "/domain/devices/disk/source/@file"), "/s/disk.qcow2")
        XCTAssertEqual(try value(root, "/domain/devices/disk/target/@bus"), "virtio")
        XCTAssertEqual(try value(root, "/domain/devices/interface/@type"), "user")
        XCTAssertEqual(try value(root, "/domain/devices/interface/mac/@address"), "fa:16:3e:aa:bb:cc")
        XCTAssertEqual(try value(root, "/domain/devices/interface/model/@type"), "virtio")
        XCTAssertEqual(try value(root, "/domain/devices/serial/@type"), "pty")
        XCTAssertEqual(try value(root, "/domain/devices/serial/log/@file"), "/s/console.log")
        XCTAssertEqual(try value(root, "/domain/devices/serial/log/@append"), "on")
        XCTAssertEqual(try value(root, "/domain/devices/console/@type"), "pty")
        XCTAssertEqual(try value(root, "/domain/devices/memballoon/@model"), "none")
        XCTAssertTrue(try root.nodes(forXPath: "/domain/devices/graphics").isEmpty)
        XCTAssertTrue(try root.nodes(forXPath: "/domain/os/boot").isEmpty, "kernel boot needs no boot device")
    }

    /// User-mode networking laid out as the cloud network, with the ssh port forward, is
    /// passed to QEMU; the SMBIOS identity is Nova's.
    func testUserNetworkOnTheCloudRangeWithAPortForwardAndNovaSMBIOS() throws {
        var spec = Fixture.spec(diskPath: "/s/disk.qcow2", consolePath: "/s/console.log", mac: "fa:16:3e:aa:bb:cc")
        spec.nics[0].userNet = UserNetSpec(network: "10.0.0.0/16", host: "10.0.0.1", dns: "10.0.255.254", guest: "10.0.0.2", sshPort: 22001)
        let xml = DomainXML.render(spec, as: .qemu(type: "qemu", machine: "pc"))
        XCTAssertTrue(xml.contains("xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"))
        XCTAssertTrue(xml.contains("<qemu:arg value='user,id=cfsnet0,net=10.0.0.0/16,host=10.0.0.1,dns=10.0.255.254,dhcpstart=10.0.0.2,hostfwd=tcp:127.0.0.1:22001-10.0.0.2:22'/>"), xml)
        XCTAssertTrue(xml.contains("<qemu:arg value='virtio-net-pci,netdev=cfsnet0,mac=fa:16:3e:aa:bb:cc,bus=pci.0,addr=0x1f'/>"), xml)
        XCTAssertFalse(xml.contains("<interface"), "the NIC is QEMU's, not libvirt's")
        let root = try parse(xml)
        XCTAssertEqual(try value(root, "/domain/sysinfo/system/entry[@name='product']"), "OpenStack Nova")
        XCTAssertEqual(try value(root, "/domain/sysinfo/system/entry[@name='uuid']"), spec.uuid)
        XCTAssertEqual(try value(root, "/domain/os/smbios/@mode"), "sysinfo")
        // The test driver keeps its plain user NIC.
        XCTAssertTrue(DomainXML.render(spec, as: .test).contains("<interface type='user'>"))
    }

    func testDiskBootWithoutKernelAndNoNICWithoutMAC() throws {
        let spec = Fixture.spec(mac: nil)
        let root = try parse(DomainXML.render(spec, as: .qemu(type: "kvm", machine: "q35")))
        XCTAssertEqual(try value(root, "/domain/@type"), "kvm")
        XCTAssertEqual(try value(root, "/domain/os/type/@machine"), "q35")
        XCTAssertEqual(try value(root, "/domain/os/boot/@dev"), "hd")
        XCTAssertTrue(try root.nodes(forXPath: "/domain/os/kernel").isEmpty)
        XCTAssertTrue(try root.nodes(forXPath: "/domain/devices/interface").isEmpty)
    }

    func testTestDomainIsMinimal() throws {
        let root = try parse(DomainXML.render(Fixture.spec(), as: .test))
        XCTAssertEqual(try value(root, "/domain/@type"), "test")
        XCTAssertNil(try value(root, "/domain/os/type/@machine"))
        XCTAssertEqual(try value(root, "/domain/devices/disk/source/@file"), "/var/lib/cloudfs/disk.qcow2")
        XCTAssertEqual(try value(root, "/domain/devices/interface/@type"), "user")
        XCTAssertTrue(try root.nodes(forXPath: "/domain/devices/serial").isEmpty)
    }

    /// Odd but legal paths survive rendering + parsing unchanged and add no elements.
    func testOddPathsAreEscaped() throws {
        let odd = "/tmp/a b/it's \"x\" & <y> 'z'/\ttab\nnewline\r/ünïcödé/disk.qcow2"
        let cmd = "console=ttyS0 x=\"a&b\" </cmdline><evil/>"
        let spec = Fixture.spec(diskPath: odd, consolePath: odd + ".log", kernelPath: odd + "-k", cmdline: cmd)
        for flavor in [DomainXML.Flavor.test, .qemu(type: "qemu", machine: "pc")] {
            let xml = DomainXML.render(spec, as: flavor)
            XCTAssertFalse(xml.contains("<evil"), "cmdline must not add elements")
            let root = try parse(xml)
            XCTAssertEqual(try value(root, "/domain/devices/disk/source/@file"), odd)
            XCTAssertEqual(try value(root, "/domain/os/kernel"), odd + "-k")
            XCTAssertEqual(try value(root, "/domain/os/cmdline"), cmd)
            XCTAssertTrue(try root.nodes(forXPath: "//evil").isEmpty)
            if flavor != .test {
                XCTAssertEqual(try value(root, "/domain/devices/serial/log/@file"), odd + ".log")
            }
        }
    }

    func testEscapeOfEachSpecialCharacter() {
        XCTAssertEqual(DomainXML.escape("a&b<c>d'e\"f"), "a&amp;b&lt;c&gt;d&apos;e&quot;f")
        XCTAssertEqual(DomainXML.escape("\t\n\r"), "&#9;&#10;&#13;")
        XCTAssertEqual(DomainXML.escape("x\u{1}y"), "x\u{FFFD}y")
        XCTAssertEqual(DomainXML.escape("plain/path-1.qcow2"), "plain/path-1.qcow2")
    }

    func testValidateRefusesWhatXMLCannotCarry() {
        assertCloudError(.invalid) { () throws(CloudError) in try DomainXML.validate(Fixture.spec(diskPath: "/tmp/a\u{1}b")) }
        assertCloudError(.invalid) { () throws(CloudError) in try DomainXML.validate(Fixture.spec(ramMB: 0)) }
        XCTAssertNoThrow(try DomainXML.validate(Fixture.spec(diskPath: "/tmp/it's & <ok>")))
    }

    func testVirtTypeResolution() {
        XCTAssertEqual(VirtType.qemu.resolved, .qemu)
        XCTAssertEqual(VirtType.kvm.resolved, .kvm)
        let kvmUsable = access("/dev/kvm", R_OK | W_OK) == 0
        XCTAssertEqual(VirtType.auto.resolved, kvmUsable ? .kvm : .qemu)
        XCTAssertEqual(VirtType(rawValue: "qemu"), .qemu)
    }
}

/// The compute contract holds several disks (boot disk, volumes, a config-drive cdrom)
/// and several NICs, in guest order.
final class DomainDevicesTests: XCTestCase {
    func testSeveralDisksAndNICsRenderInOrder() throws {
        var spec = Fixture.spec(diskPath: "/s/disk")
        spec.disks += [DiskSpec(path: "/v/data", format: "raw", device: "vdb"),
                       DiskSpec(kind: .cdrom, path: "/s/config.iso", format: "raw", device: "hdc")]
        spec.nics += [NICSpec(mac: "fa:16:3e:00:00:02", ip: "10.1.0.5", bridge: "br101", interfaceName: "tap0123")]
        XCTAssertNoThrow(try DomainXML.validate(spec))
        let doc = try XMLDocument(xmlString: DomainXML.render(spec, as: .qemu(type: "qemu", machine: "pc")), options: [])
        let root = try XCTUnwrap(doc.rootElement())
        func values(_ xpath: String) throws -> [String] { try root.nodes(forXPath: xpath).compactMap(\.stringValue) }
        XCTAssertEqual(try values("/domain/devices/disk/target/@dev"), ["vda", "vdb", "hdc"])
        XCTAssertEqual(try values("/domain/devices/disk/@device"), ["disk", "disk", "cdrom"])
        XCTAssertEqual(try values("/domain/devices/disk/target/@bus"), ["virtio", "virtio", "ide"])
        XCTAssertEqual(try values("/domain/devices/disk/driver/@type"), ["qcow2", "raw", "raw"])
        XCTAssertEqual(try root.nodes(forXPath: "/domain/devices/disk[@device='cdrom']/readonly").count, 1)
        XCTAssertEqual(try values("/domain/devices/interface/@type"), ["user", "bridge"])
        XCTAssertEqual(try values("/domain/devices/interface/mac/@address"), ["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"])
        XCTAssertEqual(try values("/domain/devices/interface/target/@dev"), ["tap0123"])
        XCTAssertEqual(spec.bootDisk?.path, "/s/disk")
    }

    func testADeviceNameUsedTwiceOrAControlCharacterIsRefused() {
        var spec = Fixture.spec()
        spec.disks.append(DiskSpec(path: "/v/x", device: "vda"))
        XCTAssertThrowsError(try DomainXML.validate(spec)) { XCTAssertEqual(($0 as? CloudError)?.errno, .invalid) }
        var nic = Fixture.spec()
        nic.nics.append(NICSpec(mac: "fa:16:3e:00:00:02", bridge: "br\u{1}"))
        XCTAssertThrowsError(try DomainXML.validate(nic)) { XCTAssertEqual(($0 as? CloudError)?.errno, .invalid) }
    }

    func testTheTestDriverDefinesEveryDisk() throws {
        let conn = try LibvirtDriver(virtType: .qemu, stateDir: NSTemporaryDirectory()).connect(uri: "test:///default")
        var spec = Fixture.spec()
        spec.disks.append(DiskSpec(path: "/v/data", format: "raw", device: "vdb"))
        let xml = try conn.spawn(spec)
        defer { try? conn.destroy(uuid: spec.uuid) }
        XCTAssertTrue(xml.contains("vdb"), xml)
    }

    /// `isUUID` accepts what `UUID(uuidString:)` (which it replaced) accepts of the
    /// canonical 8-4-4-4-12 form, in either case, and refuses malformed strings, including
    /// two Foundation lets through: a hyphen in place of the first or an inner hex digit
    /// (31 digits, which libvirt's own parser refuses too).
    func testIsUUIDAcceptsTheCanonicalFormOnly() {
        for s in (0..<50).map({ _ in UUID().uuidString }) + (0..<50).map({ _ in UUID().uuidString.lowercased() }) {
            XCTAssertTrue(DomainXML.isUUID(s), s)
            XCTAssertNotNil(UUID(uuidString: s), s)
        }
        XCTAssertTrue(DomainXML.isUUID("1B4E28BA-2fa1-11d2-883f-0016d3cca427"))
        for s in ["", "x", "1b4e28ba2fa111d2883f0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca42", "1b4e28ba-2fa1-11d2-883f-0016d3cca4277",
                  "1b4e28ba-2fa1-11d2-883f-0016d3cca42g", "1b4e28ba-2fa1-11d2-883f_0016d3cca427", "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}",
                  "1b4e28ba-2fa1-11d2-883f-0016d3cca42é", "-b4e28ba-2fa1-11d2-883f-0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca4-7"] {
            XCTAssertFalse(DomainXML.isUUID(s), s)
        }
    }
}
