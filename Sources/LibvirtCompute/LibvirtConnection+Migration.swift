import CLibvirt
import CloudCore
import Foundation

/// Live migration through libvirt (Nova's libvirt driver `live_migration` with
/// `live_migration_tunnelled = False`): peer to peer from the source's libvirt, job stats
/// for progress, virDomainAbortJob to cancel.
extension LibvirtConnection {
    public func hostCPUXML() throws(CloudError) -> String {
        try Libvirt.translating { () throws(LibvirtError) -> String in
            let caps = try Libvirt.call("read capabilities") { virConnectGetCapabilities(rawHandle) }
            defer { free(caps) }
            let xml = String(cString: caps)
            guard let host = xml.range(of: "<host>"), let open = xml.range(of: "<cpu>", range: host.upperBound..<xml.endIndex),
                  let close = xml.range(of: "</cpu>", range: open.upperBound..<xml.endIndex) else {
                throw LibvirtError(operation: "read the host CPU", code: 0, message: "the capabilities of \(uri) describe no host CPU")
            }
            return String(xml[open.lowerBound..<close.upperBound])
        }
    }

    public func cpuIncompatibility(with cpuXML: String) throws(CloudError) -> String? {
        try Libvirt.translating { () throws(LibvirtError) -> String? in
            let r = try Libvirt.check("compare CPUs") { virConnectCompareCPU(rawHandle, cpuXML, 0) }
            return r == VIR_CPU_COMPARE_INCOMPATIBLE.rawValue
                ? "the CPU of \(uri) is not compatible with the source host's (virConnectCompareCPU)" : nil
        }
    }

    public func migratableXML(uuid: String) throws(CloudError) -> String {
        try onDomain(uuid, "read the migratable XML") { dom, name throws(LibvirtError) -> String in
            let flags = VIR_DOMAIN_XML_MIGRATABLE.rawValue | VIR_DOMAIN_XML_SECURE.rawValue
            let cstr = try Libvirt.call("read the migratable XML of \(name)") { virDomainGetXMLDesc(dom, flags) }
            defer { free(cstr) }
            return String(cString: cstr)
        }
    }

    public func liveMigrationHazard(uuid: String) throws(CloudError) -> String? {
        guard let xml = try currentXML(uuid: uuid, persistent: false) else { return nil }
        let type = xml.range(of: "<domain type='").map { r in String(xml[r.upperBound...].prefix { $0 != "'" }) } ?? ""
        var version: UInt = 0
        _ = try Libvirt.translating { () throws(LibvirtError) in
            try Libvirt.check("read the hypervisor version of \(uri)") { virConnectGetVersion(rawHandle, &version) }
        }
        return Self.tcgLiveMigrationHazard(domainType: type, hypervisorVersion: version)
    }

    /// QEMU before 9.0 loses a TCG guest's memory writes during a live migration: the
    /// dirty-bitmap sync's fast path clears the migration's dirty bits without resetting
    /// TCG's TLB, so stores through entries already marked dirty are never recorded and the
    /// destination gets stale pages (QEMU commit 03bfc2188f, "physmem: Fix migration dirty
    /// bitmap coherency with TCG memory access"). The guest then runs on with corrupt kernel
    /// state (here: an empty hrtimer queue, every sleeper asleep for ever). KVM guests
    /// track writes in the kernel and are not affected. `hypervisorVersion` is libvirt's
    /// encoding (major * 1,000,000 + minor * 1,000 + release).
    static func tcgLiveMigrationHazard(domainType: String, hypervisorVersion: UInt) -> String? {
        guard domainType == "qemu", hypervisorVersion < 9_000_000 else { return nil }
        let v = "\(hypervisorVersion / 1_000_000).\(hypervisorVersion / 1_000 % 1_000).\(hypervisorVersion % 1_000)"
        return "QEMU \(v) loses a TCG guest's memory writes in a live migration (fixed in QEMU 9.0), so the guest is paused while it moves"
    }

    public func migrateLive(uuid: String, to destinationURI: String, destinationXML: String?, copyStorage: Bool,
                            bandwidthMiBs: Int, pausingGuest: Bool) throws(CloudError) {
        try onDomain(uuid, "live-migrate") { dom, name throws(LibvirtError) in
            var params: virTypedParameterPtr? = nil
            var count: Int32 = 0
            var capacity: Int32 = 0
            defer { virTypedParamsFree(params, count) }
            if let destinationXML {
                try Libvirt.check("prepare the migration of \(name)") {
                    virTypedParamsAddString(&params, &count, &capacity, "destination_xml", destinationXML)
                }
            }
            if bandwidthMiBs > 0 {
                try Libvirt.check("limit the migration of \(name)") {
                    virTypedParamsAddULLong(&params, &count, &capacity, "bandwidth", UInt64(bandwidthMiBs))
                }
            }
            var flags = VIR_MIGRATE_PEER2PEER.rawValue | VIR_MIGRATE_PERSIST_DEST.rawValue | VIR_MIGRATE_UNDEFINE_SOURCE.rawValue
            if !pausingGuest { flags |= VIR_MIGRATE_LIVE.rawValue }
            if copyStorage { flags |= VIR_MIGRATE_NON_SHARED_INC.rawValue }
            try Libvirt.check("live-migrate \(name) to \(destinationURI)") {
                virDomainMigrateToURI3(dom, destinationURI, params, UInt32(count), flags)
            }
        }
    }

    public func migrationProgress(uuid: String, completed: Bool) throws(CloudError) -> MigrationProgress? {
        try onDomain(uuid, "read migration progress") { dom, name throws(LibvirtError) -> MigrationProgress? in
            var type: Int32 = 0
            var params: virTypedParameterPtr? = nil
            var count: Int32 = 0
            try Libvirt.check("read the job of \(name)") {
                virDomainGetJobStats(dom, &type, &params, &count, completed ? VIR_DOMAIN_JOB_STATS_COMPLETED.rawValue : 0)
            }
            defer { virTypedParamsFree(params, count) }
            guard type != Int32(VIR_DOMAIN_JOB_NONE.rawValue) else { return nil }
            func value(_ field: String) -> UInt64? {
                var v: UInt64 = 0
                return virTypedParamsGetULLong(params, count, field, &v) == 1 ? v : nil
            }
            var p = MigrationProgress()
            p.elapsedMs = value("time_elapsed") ?? 0
            p.memoryTotal = value("memory_total") ?? 0
            p.memoryRemaining = value("memory_remaining") ?? 0
            p.diskTotal = value("disk_total") ?? 0
            p.diskRemaining = value("disk_remaining") ?? 0
            p.downtimeMs = value("downtime")
            return p
        }
    }

    public func abortMigration(uuid: String) throws(CloudError) {
        try onDomain(uuid, "abort the migration") { dom, name throws(LibvirtError) in
            try Libvirt.check("abort the job of \(name)") { virDomainAbortJob(dom) }
        }
    }
}
