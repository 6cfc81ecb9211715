import CloudCore
import Foundation

/// Renders libvirt domain XML from a `DomainSpec` (what Nova's nova/virt/libvirt/config.py
/// and `_get_guest_xml` do), without touching the hypervisor.
///
/// Every value from the spec goes through `DomainXML.escape`, so paths and command lines with
/// `&`, `<`, quotes or newlines stay data and can never add elements to the domain.
public enum DomainXML {
    /// The domain type attribute and what it implies for the rendered devices.
    public enum Flavor: Sendable, Equatable {
        /// libvirt's test driver (`<domain type='test'>`): minimal devices, no console capture.
        case test
        /// A QEMU domain: `type` is `qemu` (TCG) or `kvm`; `machine` e.g. `pc` or `q35`.
        case qemu(type: String, machine: String)
    }

    /// Renders the domain XML for `spec`. Characters XML 1.0 cannot carry at all (control
    /// characters other than tab/newline/CR) are replaced by U+FFFD; `validate(_:)` refuses
    /// such specs before they reach libvirt.
    public static func render(_ spec: DomainSpec, as flavor: Flavor) -> String {
        let isTest = flavor == .test
        let domainType: String
        let machine: String?
        switch flavor {
        case .test: domainType = "test"; machine = nil
        case .qemu(let type, let m): domainType = type; machine = m
        }
        var x: [String] = []
        // User-mode NICs laid out as the cloud network are QEMU arguments libvirt passes
        // through (its own <interface type='user'> cannot set the range or a port forward).
        let userNets = isTest ? [] : spec.nics.filter { $0.bridge == nil && $0.userNet != nil }
        let ns = userNets.isEmpty ? "" : " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'"
        x.append("<domain type='\(escape(domainType))'\(ns)>")
        x.append("  <name>\(escape(spec.domainName))</name>")
        x.append("  <uuid>\(escape(spec.uuid))</uuid>")
        x.append("  <memory unit='MiB'>\(spec.ramMB)</memory>")
        x.append("  <currentMemory unit='MiB'>\(spec.ramMB)</currentMemory>")
        x.append("  <vcpu placement='static'>\(spec.vcpus)</vcpu>")
        if !isTest {
            // Nova's SMBIOS identity: cloud-init tries the OpenStack metadata service only on
            // a machine whose product says OpenStack Nova.
            x.append("  <sysinfo type='smbios'>")
            x.append("    <system>")
            x.append("      <entry name='manufacturer'>OpenStack Foundation</entry>")
            x.append("      <entry name='product'>OpenStack Nova</entry>")
            x.append("      <entry name='serial'>\(escape(spec.uuid))</entry>")
            x.append("      <entry name='uuid'>\(escape(spec.uuid))</entry>")
            x.append("      <entry name='family'>Virtual Machine</entry>")
            x.append("    </system>")
            x.append("  </sysinfo>")
        }
        x.append("  <os>")
        let machineAttr = machine.map { " machine='\(escape($0))'" } ?? ""
        x.append("    <type arch='x86_64'\(machineAttr)>hvm</type>")
        if let kernel = spec.kernelPath {
            x.append("    <kernel>\(escape(kernel))</kernel>")
            if let initrd = spec.initrdPath { x.append("    <initrd>\(escape(initrd))</initrd>") }
            if let cmdline = spec.cmdline { x.append("    <cmdline>\(escape(cmdline))</cmdline>") }
        } else {
            x.append("    <boot dev='hd'/>")
        }
        if !isTest { x.append("    <smbios mode='sysinfo'/>") }
        x.append("  </os>")
        if !isTest {
            x.append("  <features><acpi/></features>")
            x.append("  <clock offset='utc'/>")
        }
        x.append("  <on_poweroff>destroy</on_poweroff>")
        x.append("  <on_reboot>restart</on_reboot>")
        x.append("  <on_crash>destroy</on_crash>")
        x.append("  <devices>")
        for disk in spec.disks { x.append(diskXML(disk, indent: "    ")) }
        for nic in spec.nics {
            if let bridge = nic.bridge {
                // nova-network's bridged VIF: a tap on the network's bridge, named so the
                // host's firewall rules can find it.
                x.append("    <interface type='bridge'>")
                x.append("      <source bridge='\(escape(bridge))'/>")
                x.append("      <mac address='\(escape(nic.mac))'/>")
                if let dev = nic.interfaceName { x.append("      <target dev='\(escape(dev))'/>") }
                x.append("      <model type='virtio'/>")
                x.append("    </interface>")
            } else if !isTest, nic.userNet != nil {
                continue   // in <qemu:commandline> below
            } else {
                // User-mode networking (QEMU's slirp): the guest gets a NIC without touching
                // any host network configuration (cloudfs mount without --manage-network).
                x.append("    <interface type='user'>")
                x.append("      <mac address='\(escape(nic.mac))'/>")
                x.append("      <model type='virtio'/>")
                x.append("    </interface>")
            }
        }
        if !isTest {
            // The serial console is a pty libvirt's console stream attaches to (`cloudfs
            // console`), logged to a file (append: a hard reboot keeps the history; QEMU
            // writes it itself, qemu.conf's stdio_handler = "file").
            // No log file when the host is another machine (an empty path): the controller
            // records the console from libvirt's stream instead.
            x.append("    <serial type='pty'>")
            if !spec.consolePath.isEmpty { x.append("      <log file='\(escape(spec.consolePath))' append='on'/>") }
            x.append("      <target port='0'/>")
            x.append("    </serial>")
            x.append("    <console type='pty'>")
            x.append("      <target type='serial' port='0'/>")
            x.append("    </console>")
            x.append("    <memballoon model='none'/>")
        }
        x.append("  </devices>")
        if !userNets.isEmpty {
            x.append("  <qemu:commandline>")
            for (i, nic) in userNets.enumerated() {
                for arg in userNetArguments(nic, index: i) { x.append("    <qemu:arg value='\(escape(arg))'/>") }
            }
            x.append("  </qemu:commandline>")
        }
        x.append("</domain>")
        return x.joined(separator: "\n") + "\n"
    }

    /// QEMU's arguments for a user-mode NIC on the cloud network's range: the netdev (QEMU
    /// at the gateway, its resolver, the loopback port forwarded to the guest's port 22) and
    /// a virtio NIC with the instance's MAC at a PCI slot libvirt does not hand out early
    /// (slots are given from the bottom; hotplugged volumes take the next free ones).
    static func userNetArguments(_ nic: NICSpec, index: Int) -> [String] {
        guard let u = nic.userNet else { return [] }
        var netdev = "user,id=cfsnet\(index),net=\(u.network),host=\(u.host),dns=\(u.dns),dhcpstart=\(u.guest)"
        if let port = u.sshPort { netdev += ",hostfwd=tcp:127.0.0.1:\(port)-\(u.guest):22" }
        let slot = String(0x1f - index, radix: 16)
        return ["-netdev", netdev, "-device", "virtio-net-pci,netdev=cfsnet\(index),mac=\(nic.mac),bus=pci.0,addr=0x\(slot)"]
    }

    /// One `<disk>` element (also what a hotplug attaches): virtio for the guest's own disk
    /// and attached volumes, a block device for an LVM volume; a cdrom (a config drive) on
    /// the IDE bus, which every machine type has and every guest reads.
    public static func diskXML(_ disk: DiskSpec, indent: String = "") -> String {
        let bus = disk.kind == .cdrom ? "ide" : "virtio"
        let (type, attr) = disk.isBlockDevice ? ("block", "dev") : ("file", "file")
        return [
            "<disk type='\(type)' device='\(disk.kind.rawValue)'>",
            "  <driver name='qemu' type='\(escape(disk.format))'/>",
            "  <source \(attr)='\(escape(disk.path))'/>",
            "  <target dev='\(escape(disk.device))' bus='\(bus)'/>",
            disk.kind == .cdrom ? "  <readonly/>" : nil,
            "</disk>",
        ].compactMap { $0.map { indent + $0 } }.joined(separator: "\n")
    }

    /// Escapes `text` for XML character data and for single- or double-quoted attribute
    /// values: `& < > ' "` become entities, tab/newline/CR become character references (so
    /// attribute normalization cannot change them), and characters XML 1.0 forbids become U+FFFD.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "'": out += "&apos;"
            case "\"": out += "&quot;"
            case "\t": out += "&#9;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            default:
                out.unicodeScalars.append(isXMLChar(scalar) ? scalar : "\u{FFFD}")
            }
        }
        return out
    }

    /// Whether `s` is a uuid in its canonical 8-4-4-4-12 hex form, either case. It replaced
    /// `UUID(uuidString:)` (about 9K instructions, and every domain lookup checked its uuid
    /// first), which also lets a hyphen stand for a hex digit; libvirt refuses those too.
    public static func isUUID(_ s: String) -> Bool {
        var count = 0
        for byte in s.utf8 {
            let hyphen = count == 8 || count == 13 || count == 18 || count == 23
            switch byte {
            case UInt8(ascii: "-"): guard hyphen else { return false }
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"):
                guard !hyphen else { return false }
            default: return false
            }
            count += 1
            if count > 36 { return false }
        }
        return count == 36
    }

    /// Refuses specs libvirt could not take faithfully: characters XML 1.0 cannot carry,
    /// a malformed uuid, non-positive sizes. Throws `EINVAL` naming the field.
    public static func validate(_ spec: DomainSpec) throws(CloudError) {
        var fields: [(String, String?)] = [
            ("domain name", spec.domainName), ("uuid", spec.uuid), ("kernel path", spec.kernelPath),
            ("initrd path", spec.initrdPath), ("cmdline", spec.cmdline), ("console path", spec.consolePath),
        ]
        for d in spec.disks { fields += [("disk path", d.path), ("disk format", d.format), ("disk device", d.device)] }
        for n in spec.nics { fields += [("mac", n.mac), ("bridge", n.bridge), ("interface name", n.interfaceName)] }
        for (name, value) in fields {
            if let value, !value.unicodeScalars.allSatisfy(isXMLChar) {
                throw .invalid("\(name) contains a control character libvirt XML cannot carry")
            }
        }
        if spec.domainName.isEmpty { throw .invalid("domain name is empty") }
        if !isUUID(spec.uuid) { throw .invalid("uuid \(spec.uuid) is not a uuid") }
        if spec.vcpus < 1 { throw .invalid("vcpus must be at least 1, not \(spec.vcpus)") }
        if spec.ramMB < 1 { throw .invalid("ram must be at least 1 MB, not \(spec.ramMB)") }
        let devices = spec.disks.map(\.device)
        if let dup = devices.first(where: { d in devices.filter { $0 == d }.count > 1 }) {
            throw .invalid("disk device \(dup) is used twice")
        }
    }

    /// XML 1.0 `Char`: tab, LF, CR, U+0020–U+D7FF, U+E000–U+FFFD, U+10000 and above.
    static func isXMLChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x9, 0xA, 0xD: return true
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        default: return false
        }
    }
}
