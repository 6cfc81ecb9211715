import CLibvirt
import CloudCore

/// Lifecycle operations on an existing domain (Nova's libvirt driver power_on, power_off,
/// pause, unpause, suspend, resume), each one libvirt call with its error translated once,
/// on the domain's kept handle (`LibvirtConnection.cachedLookup`).
extension LibvirtConnection {
    public func perform(_ op: DomainOperation, uuid: String) throws(CloudError) {
        try Libvirt.translating { () throws(LibvirtError) in
            guard let dom = try cachedLookup(uuid: uuid) else {
                throw LibvirtError(operation: "\(op.rawValue) domain \(uuid)", code: Int32(VIR_ERR_NO_DOMAIN.rawValue),
                                   message: "no domain with this uuid")
            }
            defer { virDomainFree(dom) }
            let name = String(cString: virDomainGetName(dom))
            do throws(LibvirtError) {
                switch op {
                case .start: try Libvirt.check("start domain \(name)") { virDomainCreate(dom) }
                case .shutdown: try Libvirt.check("shut down domain \(name)") { virDomainShutdown(dom) }
                case .powerOff: try Libvirt.check("power off domain \(name)") { virDomainDestroy(dom) }
                case .pause: try Libvirt.check("pause domain \(name)") { virDomainSuspend(dom) }
                case .unpause: try Libvirt.check("resume domain \(name)") { virDomainResume(dom) }
                case .managedSave: try Libvirt.check("save domain \(name)") { virDomainManagedSave(dom, 0) }
                }
            } catch where error.isNoDomain {
                // Gone since the handle was kept: the next call looks it up again.
                forgetHandle(uuid: uuid)
                throw error
            }
        }
    }
}
