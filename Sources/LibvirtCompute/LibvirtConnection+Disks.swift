import CLibvirt
import CloudCore
import Foundation

/// Volume attach, detach, extend and snapshot on a domain (Nova's libvirt driver
/// `attach_volume`, `detach_volume` with `_detach_with_retry`, `extend_volume`, and a
/// point-in-time copy for Cinder's snapshot of an in-use volume).
extension LibvirtConnection {
    public func attachDisk(_ disk: DiskSpec, uuid: String, live: Bool) throws(CloudError) {
        let flags = VIR_DOMAIN_AFFECT_CONFIG.rawValue | (live ? VIR_DOMAIN_AFFECT_LIVE.rawValue : 0)
        let xml = DomainXML.diskXML(disk)
        try onDomain(uuid, "attach \(disk.device)") { dom, name throws(LibvirtError) in
            try Libvirt.check("attach \(disk.device) to domain \(name)") { virDomainAttachDeviceFlags(dom, xml, flags) }
        }
    }

    public func detachDiskPersistent(device: String, uuid: String) throws(CloudError) {
        try onDomain(uuid, "detach \(device)") { dom, name throws(LibvirtError) in
            guard let disk = try diskElements(dom, persistent: true).first(where: { $0.target == device }) else { return }
            try Libvirt.check("detach \(device) from the definition of domain \(name)") {
                virDomainDetachDeviceFlags(dom, disk.xml, VIR_DOMAIN_AFFECT_CONFIG.rawValue)
            }
        }
    }

    public func detachDiskLive(device: String, uuid: String, timeout: TimeInterval) throws(CloudError) -> DetachOutcome {
        try onDomain(uuid, "detach \(device)") { dom, name throws(LibvirtError) -> DetachOutcome in
            guard virDomainIsActive(dom) == 1,
                  let disk = try diskElements(dom, persistent: false).first(where: { $0.target == device }) else { return .removed }
            let hasEvents = deviceEvents.ensureRegistered(rawHandle)
            let key = DeviceEventHub.key(uuid, disk.alias)
            if hasEvents { deviceEvents.expect(key) }
            do throws(LibvirtError) {
                try Libvirt.check("detach \(device) from running domain \(name)") {
                    virDomainDetachDeviceFlags(dom, disk.xml, VIR_DOMAIN_AFFECT_LIVE.rawValue)
                }
            } catch where error.message.contains("already in progress") || error.message.contains("unplug") {
                // A previous request is still pending in the guest: keep waiting for it.
            }
            let gone: () -> Bool = { [self] in
                ((try? diskElements(dom, persistent: false))?.contains { $0.target == device }) == false
            }
            let deadline = Date().addingTimeInterval(timeout)
            if hasEvents { return deviceEvents.wait(key, until: deadline, check: gone) }
            while Date() < deadline {
                if gone() { return .removed }
                usleep(100_000)
            }
            return gone() ? .removed : .timedOut
        }
    }

    public func resizeDisk(device: String, uuid: String, bytes: Int64) throws(CloudError) {
        try onDomain(uuid, "resize \(device)") { dom, name throws(LibvirtError) in
            try Libvirt.check("resize \(device) of domain \(name)") {
                virDomainBlockResize(dom, device, UInt64(bytes), VIR_DOMAIN_BLOCK_RESIZE_BYTES.rawValue)
            }
        }
    }

    public func disks(uuid: String, persistent: Bool) throws(CloudError) -> [String: String] {
        try Libvirt.translating { () throws(LibvirtError) -> [String: String] in
            guard let dom = try lookupRaw(uuid: uuid) else { return [:] }
            defer { virDomainFree(dom) }
            let all = try diskElements(dom, persistent: persistent)
            return Dictionary(all.map { ($0.target, $0.source) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func currentXML(uuid: String, persistent: Bool) throws(CloudError) -> String? {
        try Libvirt.translating { () throws(LibvirtError) -> String? in
            guard let dom = try lookupRaw(uuid: uuid) else { return nil }
            defer { virDomainFree(dom) }
            let cstr = try Libvirt.call("read the XML of domain \(uuid)") {
                virDomainGetXMLDesc(dom, persistent ? VIR_DOMAIN_XML_INACTIVE.rawValue : 0)
            }
            defer { free(cstr) }
            return String(cString: cstr)
        }
    }

    public func copyDisk(device: String, uuid: String, to path: String, timeout: TimeInterval) throws(CloudError) {
        try onDomain(uuid, "copy \(device)") { dom, name throws(LibvirtError) in
            let others = try diskElements(dom, persistent: false).filter { $0.target != device }
            let skip = others.map { "    <disk name='\(DomainXML.escape($0.target))' backup='no'/>" }
            let xml = (["<domainbackup mode='push'>", "  <disks>"] + skip + [
                "    <disk name='\(DomainXML.escape(device))' backup='yes' type='file'>",
                "      <target file='\(DomainXML.escape(path))'/>",
                "      <driver type='qcow2'/>",
                "    </disk>",
                "  </disks>", "</domainbackup>",
            ]).joined(separator: "\n")
            try Libvirt.check("start a backup of \(device) of domain \(name)") { virDomainBackupBegin(dom, xml, nil, 0) }
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                var info = virDomainJobInfo()
                try Libvirt.check("read the backup job of domain \(name)") { virDomainGetJobInfo(dom, &info) }
                if info.type == Int32(VIR_DOMAIN_JOB_NONE.rawValue) { break }
                if Date() >= deadline {
                    _ = virDomainAbortJob(dom)
                    throw LibvirtError(operation: "copy \(device) of domain \(name)", code: 0,
                                       message: "the backup job did not finish within \(Int(timeout)) s")
                }
                usleep(20_000)
            }
            var type: Int32 = 0
            var params: virTypedParameterPtr? = nil
            var count: Int32 = 0
            try Libvirt.check("read the finished backup job of domain \(name)") {
                virDomainGetJobStats(dom, &type, &params, &count, UInt32(VIR_DOMAIN_JOB_STATS_COMPLETED.rawValue))
            }
            virTypedParamsFree(params, count)
            if type != Int32(VIR_DOMAIN_JOB_COMPLETED.rawValue) {
                throw LibvirtError(operation: "copy \(device) of domain \(name)", code: 0,
                                   message: "the backup job ended without completing (job type \(type))")
            }
        }
    }

    /// The domain's `<disk>` elements, live or persistent.
    func diskElements(_ dom: virDomainPtr, persistent: Bool) throws(LibvirtError) -> [DiskElement] {
        let flags = persistent ? VIR_DOMAIN_XML_INACTIVE.rawValue : 0
        let cstr = try Libvirt.call("read the XML of a domain") { virDomainGetXMLDesc(dom, flags) }
        defer { free(cstr) }
        return DiskElement.all(in: String(cString: cstr))
    }

    /// Runs `body` on the domain with `uuid`; `ENOENT` when there is none.
    @discardableResult
    func onDomain<T>(_ uuid: String, _ what: String,
                             _ body: (virDomainPtr, String) throws(LibvirtError) -> T) throws(CloudError) -> T {
        try Libvirt.translating { () throws(LibvirtError) -> T in
            guard let dom = try lookupRaw(uuid: uuid) else {
                throw LibvirtError(operation: "\(what) on domain \(uuid)", code: Int32(VIR_ERR_NO_DOMAIN.rawValue),
                                   message: "no domain with this uuid")
            }
            defer { virDomainFree(dom) }
            return try body(dom, String(cString: virDomainGetName(dom)))
        }
    }
}
