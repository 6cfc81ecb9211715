import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// nova-network's floating IPs: pools are the networks' `floating_range`s; allocation under
/// the per-project `floating_ips` quota, association with an instance's fixed IP, and the
/// nftables DNAT/SNAT rules that make an association real (re-rendered and applied whole
/// on every change when the host's networking is managed).
extension Engine {
    /// Nova's default `floating_ips` quota per project; the `quota.floating_ips` setting overrides it.
    static let defaultFloatingIPQuota = 10

    var floatingIPQuota: Int {
        catalog.withLock { $0.settings["quota.floating_ips"] }.flatMap { Int($0) } ?? Self.defaultFloatingIPQuota
    }

    public func floatingIPs() -> [FloatingIPInfo] {
        catalog.withLock { c in c.floatingIPs.values.sorted { $0.address < $1.address }.map { floatingInfo($0, c) } }
    }

    public func floatingIP(_ address: String) -> FloatingIPInfo? {
        guard let a = IPv4Address(address) else { return nil }
        return catalog.withLock { c in c.floatingIPs[Int64(a.value)].map { floatingInfo($0, c) } }
    }

    func floatingInfo(_ f: FloatingIPRecord, _ c: Catalog) -> FloatingIPInfo {
        FloatingIPInfo(address: IPv4Address(UInt32(f.address)).description, pool: f.pool,
                       instance: f.instanceId.flatMap { c.instanceNames[$0] } ?? "", project: f.project,
                       ownerUID: UInt32(f.ownerUid))
    }

    /// The floating addresses of a pool: the range without its network and broadcast
    /// addresses (all of it for a /31 or /32).
    static func floatingBounds(_ range: IPv4Network) -> ClosedRange<UInt32> {
        range.prefix >= 31 ? range.network.value...range.broadcast.value : (range.network.value + 1)...(range.broadcast.value - 1)
    }

    func projectOf(_ caller: Caller) -> String {
        defaultValue(.project).isEmpty ? Self.userName(caller.uid) : defaultValue(.project)
    }

    public func createFloatingIP(_ address: String, caller: Caller) throws(CloudError) {
        try refusing("floating_ip", address, caller) { () throws(CloudError) in
            let a = try IPv4Address(parsing: address)
            guard let pool = specs().first(where: { $0.floatingRange?.contains(a) == true }),
                  let range = pool.floatingRange else {
                throw CloudError.notFound("\(address) is in no network's floating_range")
            }
            try allocateFloating(Int64(a.value), pool: pool.name, range: range, caller: caller, instanceID: nil)
        }
    }

    /// Allocates in the store and the catalog (under the mutation lock), then announces.
    @discardableResult
    func allocateFloating(_ address: Int64?, pool: String, range: IPv4Network, caller: Caller,
                          instanceID: String?) throws(CloudError) -> FloatingIPRecord {
        mutation.lock()
        let rec: FloatingIPRecord
        do throws(CloudError) {
            rec = try store.allocateFloatingIP(address: address, pool: pool, range: Self.floatingBounds(range),
                                               project: projectOf(caller), ownerUID: caller.uid,
                                               quota: floatingIPQuota, instanceID: instanceID)
        } catch { mutation.unlock(); throw error }
        if instanceID != nil { reloadFloatingIPsLocked() } else { catalog.withLock { $0.floatingIPs[rec.address] = rec } }
        mutation.unlock()
        let text = IPv4Address(UInt32(rec.address)).description
        events.append(kind: "floating_ip.allocated", object: text, ["pool": pool, "project": rec.project, "uid": "\(caller.uid)"])
        announce(ChangeNotice(.floatingIP, text))
        return rec
    }

    /// Re-reads the floating IPs into the catalog; call under the mutation lock.
    func reloadFloatingIPsLocked() {
        guard let all = try? store.floatingIPs() else { return }
        catalog.withLock { c in c.floatingIPs = Dictionary(uniqueKeysWithValues: all.map { ($0.address, $0) }) }
    }

    public func deleteFloatingIP(_ address: String, caller: Caller) throws(CloudError) {
        let rec = try refusing("floating_ip", address, caller) { () throws(CloudError) -> FloatingIPRecord in
            let f = try ownedFloating(address, caller)
            mutation.lock(); defer { mutation.unlock() }
            try store.releaseFloatingIP(f.address)
            catalog.withLock { $0.floatingIPs[f.address] = nil }
            return f
        }
        events.append(kind: "floating_ip.released", object: address, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.floatingIP, address))
        if let id = rec.instanceId, let name = catalog.withLock({ $0.instanceNames[id] }) { announce(ChangeNotice(.instance, name)) }
        if rec.instanceId != nil { applyRulesetRecording(address) }
    }

    func ownedFloating(_ address: String, _ caller: Caller) throws(CloudError) -> FloatingIPRecord {
        guard let a = IPv4Address(address), let f = catalog.withLock({ $0.floatingIPs[Int64(a.value)] }) else {
            throw CloudError.notFound("floating IP \(address) is not allocated")
        }
        guard caller.isAdmin || UInt32(f.ownerUid) == caller.uid else {
            throw CloudError(.accessDenied, "floating IP \(address) is not yours")
        }
        return f
    }

    public func associateFloatingIP(_ address: String, instance: String, caller: Caller) throws(CloudError) {
        try refusing("floating_ip", address, caller) { () throws(CloudError) in
            let f = try ownedFloating(address, caller)
            try associate(f.address, with: instance.isEmpty ? nil : try ownedInstance(instance, caller), caller: caller)
        }
    }

    func ownedInstance(_ name: String, _ caller: Caller) throws(CloudError) -> InstanceRecord {
        guard let r = catalog.withLock({ $0.instances[name] }) else { throw CloudError.notFound("no instance named '\(name)'") }
        guard caller.isAdmin || UInt32(r.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "instance '\(name)' is not yours") }
        guard !r.deleteRequested else { throw CloudError.busy("instance '\(name)' is being deleted") }
        return r
    }

    /// Associates (or with nil disassociates) and applies the ruleset.
    func associate(_ address: Int64, with r: InstanceRecord?, caller: Caller) throws(CloudError) {
        mutation.lock()
        let changed: [FloatingIPRecord]
        do throws(CloudError) { changed = try store.associateFloatingIP(address, instanceID: r?.id) } catch {
            mutation.unlock(); throw error
        }
        let before = catalog.withLock { c in changed.compactMap { c.floatingIPs[$0.address]?.instanceId } }
        catalog.withLock { c in for f in changed { c.floatingIPs[f.address] = f } }
        mutation.unlock()
        let text = IPv4Address(UInt32(address)).description
        events.append(kind: r == nil ? "floating_ip.disassociated" : "floating_ip.associated", object: text,
                      ["instance": r?.name ?? "-", "uid": "\(caller.uid)"])
        for f in changed { announce(ChangeNotice(.floatingIP, IPv4Address(UInt32(f.address)).description)) }
        let names = catalog.withLock { c in (before + [r?.id].compactMap { $0 }).compactMap { c.instanceNames[$0] } }
        for n in Set(names) { announce(ChangeNotice(.instance, n)) }
        try applyRuleset()
    }

    public func setInstanceFloatingIP(_ name: String, value: String, caller: Caller) throws(CloudError) {
        try refusing("instance", name, caller) { () throws(CloudError) in
            let r = try ownedInstance(name, caller)
            let current = catalog.withLock { c in c.floatingIPs.values.first { $0.instanceId == r.id } }
            switch value {
            case "":
                if let current { try associate(current.address, with: nil, caller: caller) }
            case "auto":
                if current != nil { return }   // already has one: nothing to do
                let fixedNet = catalog.withLock { $0.ips[r.id]?.first?.network } ?? defaultValue(.network)
                let all = specs()
                guard let pool = all.first(where: { $0.name == fixedNet && $0.floatingRange != nil })
                        ?? all.first(where: { $0.floatingRange != nil }), let range = pool.floatingRange else {
                    throw CloudError.notFound("no network has a floating_range to allocate from")
                }
                try allocateFloating(nil, pool: pool.name, range: range, caller: caller, instanceID: r.id)
                announce(ChangeNotice(.instance, name))
                try applyRuleset()
            default:
                let a = try IPv4Address(parsing: value)
                if catalog.withLock({ $0.floatingIPs[Int64(a.value)] }) == nil {
                    try createFloatingIP(value, caller: caller)
                }
                let f = try ownedFloating(value, caller)
                try associate(f.address, with: r, caller: caller)
            }
        }
    }

    // MARK: nftables

    /// The whole ruleset from the catalog: one DNAT/SNAT association per floating IP whose
    /// instance holds a fixed IP, one filtered port per instance with a fixed IP.
    func applyRuleset() throws(CloudError) {
        guard let m = managedNetworking else { return }
        let (assocs, ports) = rulesetInputs()
        try m.applyRuleset(associations: assocs, ports: ports)
    }

    func applyRulesetRecording(_ object: String) {
        do throws(CloudError) { try applyRuleset() } catch {
            events.append(kind: "network.error", object: object, ["reason": error.reason])
        }
    }

    func rulesetInputs() -> ([FloatingIPAssociation], [InstancePort]) {
        let specs = Dictionary(uniqueKeysWithValues: self.specs().map { ($0.name, $0) })
        return catalog.withLock { c in
            var assocs: [FloatingIPAssociation] = []
            for f in c.floatingIPs.values {
                guard let id = f.instanceId, let ip = c.ips[id]?.first, let net = specs[ip.network] else { continue }
                assocs.append(FloatingIPAssociation(floating: IPv4Address(UInt32(f.address)), fixed: IPv4Address(UInt32(ip.address)),
                                                    fixedNetwork: net.cidr))
            }
            var ports: [InstancePort] = []
            for (id, ips) in c.ips {
                guard let ip = ips.first, let net = specs[ip.network] else { continue }
                ports.append(InstancePort(interface: ManagedNetworking.tapName(instanceID: id), address: IPv4Address(UInt32(ip.address)),
                                          dhcpServer: net.mode.usesDHCP ? net.dhcpServer : nil, rules: securityRules(for: id, c)))
            }
            return (assocs, ports)
        }
    }
}
