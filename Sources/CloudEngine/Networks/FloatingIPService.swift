import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// nova-network's floating IPs: `/floating-ips`. Pools are the networks' `floating_range`s;
/// allocation under the per-project `floating_ips` quota, association with an instance's
/// fixed IP, and the nftables DNAT/SNAT rules that make an association real (re-rendered
/// and applied whole on every change when the host's networking is managed).
final class FloatingIPService: FloatingIPsAPI, @unchecked Sendable {
    // @unchecked: immutable after init.
    let core: EngineCore
    let host: NetworkHost
    /// `/defaults/network` (SettingsService).
    let settings: any SettingsReader

    init(core: EngineCore, host: NetworkHost, settings: any SettingsReader) {
        self.core = core; self.host = host; self.settings = settings
    }

    static func ref(_ f: FloatingIPRecord) -> ObjectRef {
        ObjectRef("floating IP", IPv4Address(UInt32(f.address)).description, ownerUID: UInt32(f.ownerUid), project: f.project)
    }

    func load() throws(CloudError) {
        let floating = try core.store.floatingIPs()
        core.catalog.withLock { c in for f in floating { c.floatingIPs[f.address] = f } }
    }

    // MARK: FloatingIPsAPI

    func list(_ caller: Caller) -> [FloatingIPInfo] {
        core.catalog.withLock { c in
            c.floatingIPs.values.sorted { $0.address < $1.address }.filter { core.visible(caller, Self.ref($0)) }.map { info($0, c) }
        }
    }

    func get(_ address: String, _ caller: Caller) -> FloatingIPInfo? {
        guard let a = IPv4Address(address) else { return nil }
        return core.catalog.withLock { c in
            c.floatingIPs[Int64(a.value)].flatMap { core.visible(caller, Self.ref($0)) ? info($0, c) : nil }
        }
    }

    private func info(_ f: FloatingIPRecord, _ c: Catalog) -> FloatingIPInfo {
        FloatingIPInfo(address: IPv4Address(UInt32(f.address)).description, pool: f.pool,
                       instance: f.instanceId.flatMap { c.instanceNames[$0] } ?? "", project: f.project,
                       ownerUID: UInt32(f.ownerUid))
    }

    func create(_ address: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("floating_ip", address, caller) { () throws(CloudError) in
            try allocate(address, caller)
        }
    }

    /// `mkdir /floating-ips/ADDR` (also what writing an address to an instance's
    /// `floating_ip` does first when it is not allocated yet).
    private func allocate(_ address: String, _ caller: Caller) throws(CloudError) {
        let a = try IPv4Address(parsing: address)
        try core.authorize(caller, .create, ObjectRef("floating IP", address))
        guard let pool = core.catalog.withLock({ $0.networkSpecs() }).first(where: { $0.floatingRange?.contains(a) == true }),
              let range = pool.floatingRange else {
            throw CloudError.notFound("\(address) is in no network's floating_range")
        }
        try allocate(Int64(a.value), pool: pool.name, range: range, caller: caller, instanceID: nil)
    }

    /// Allocates in the store and the catalog, then announces.
    @discardableResult
    private func allocate(_ address: Int64?, pool: String, range: IPv4Network, caller: Caller,
                          instanceID: String?) throws(CloudError) -> FloatingIPRecord {
        // An address for an instance goes to the instance's project (counted by its quota).
        let owning = instanceID.flatMap { id in core.catalog.withLock { $0.instance(id: id)?.project } }
        let project: String
        if let owning { project = owning } else { project = try core.project(of: caller) }
        let rec = try core.write({ (s) throws(CloudError) -> (FloatingIPRecord, [FloatingIPRecord]) in
            let rec = try s.allocateFloatingIP(address: address, pool: pool, range: NetworkSpec.floatingBounds(range),
                                               project: project, ownerUID: caller.uid, instanceID: instanceID)
            // Associating at once may have moved the instance's previous address off it.
            return (rec, instanceID == nil ? [] : try s.floatingIPs())
        }) { c, result in
            if instanceID == nil { c.floatingIPs[result.0.address] = result.0 }
            else { c.floatingIPs = Dictionary(uniqueKeysWithValues: result.1.map { ($0.address, $0) }) }
        }.0
        let text = IPv4Address(UInt32(rec.address)).description
        core.events.append(kind: "floating_ip.allocated", object: text, ["pool": pool, "project": rec.project, "uid": "\(caller.uid)"])
        core.announce(.floatingIP, text)
        return rec
    }

    func delete(_ address: String, _ caller: Caller) throws(CloudError) {
        let rec = try core.refusing("floating_ip", address, caller) { () throws(CloudError) -> FloatingIPRecord in
            let f = try owned(address, caller)
            try core.write({ (s) throws(CloudError) in try s.releaseFloatingIP(f.address) }) { c, _ in c.floatingIPs[f.address] = nil }
            return f
        }
        core.events.append(kind: "floating_ip.released", object: address, ["uid": "\(caller.uid)"])
        core.announce(.floatingIP, address)
        if let id = rec.instanceId, let name = core.catalog.withLock({ $0.instanceNames[id] }) { core.announce(.instance, name) }
        if rec.instanceId != nil { host.applyRulesetRecording(address) }
    }

    /// The allocated address, if `caller` may change it.
    private func owned(_ address: String, _ caller: Caller) throws(CloudError) -> FloatingIPRecord {
        guard let a = IPv4Address(address), let f = core.catalog.withLock({ $0.floatingIPs[Int64(a.value)] }),
              core.visible(caller, Self.ref(f)) else {
            throw CloudError.notFound("floating IP \(address) is not allocated")
        }
        try core.authorize(caller, .change, Self.ref(f))
        return f
    }

    func associate(_ address: String, instance: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("floating_ip", address, caller) { () throws(CloudError) in
            let f = try owned(address, caller)
            try associate(f.address, with: instance.isEmpty ? nil : try target(instance, caller), caller: caller)
        }
    }

    /// The instance an association names, if `caller` may change it and it is not being deleted.
    private func target(_ name: String, _ caller: Caller) throws(CloudError) -> InstanceRecord {
        guard let r = core.catalog.withLock({ $0.instances[name] }),
              core.visible(caller, InstanceService.ref(r)) else { throw CloudError.notFound("no instance named '\(name)'") }
        try core.authorize(caller, .change, InstanceService.ref(r))
        guard !r.deleteRequested else { throw CloudError.busy("instance '\(name)' is being deleted") }
        return r
    }

    /// Associates (or with nil disassociates) and applies the ruleset.
    private func associate(_ address: Int64, with r: InstanceRecord?, caller: Caller) throws(CloudError) {
        var before: [String] = []
        let changed = try core.write({ (s) throws(CloudError) in try s.associateFloatingIP(address, instanceID: r?.id) }) { c, changed in
            before = changed.compactMap { c.floatingIPs[$0.address]?.instanceId }
            for f in changed { c.floatingIPs[f.address] = f }
        }
        let text = IPv4Address(UInt32(address)).description
        core.events.append(kind: r == nil ? "floating_ip.disassociated" : "floating_ip.associated", object: text,
                           ["instance": r?.name ?? "-", "uid": "\(caller.uid)"])
        for f in changed { core.announce(.floatingIP, IPv4Address(UInt32(f.address)).description) }
        let names = core.catalog.withLock { c in (before + [r?.id].compactMap { $0 }).compactMap { c.instanceNames[$0] } }
        for n in Set(names) { core.announce(.instance, n) }
        try host.applyRuleset()
    }

    /// `instances/NAME/floating_ip`: `auto`, an address, or "" to disassociate. The caller
    /// was authorized against the instance already.
    func setInstanceFloatingIP(_ r: InstanceRecord, _ request: FloatingIPRequest, _ caller: Caller) throws(CloudError) {
        guard !r.deleteRequested else { throw CloudError.busy("instance '\(r.name)' is being deleted") }
        let current = core.catalog.withLock { c in c.floatingIPs.values.first { $0.instanceId == r.id } }
        switch request {
        case .none:
            if let current { try associate(current.address, with: nil, caller: caller) }
        case .auto:
            if current != nil { return }   // already has one: nothing to do
            let fixedNet = core.catalog.withLock { $0.ips[r.id]?.first?.network } ?? settings.defaultValue(.network)
            let all = core.catalog.withLock { $0.networkSpecs() }
            guard let pool = all.first(where: { $0.name == fixedNet && $0.floatingRange != nil })
                    ?? all.first(where: { $0.floatingRange != nil }), let range = pool.floatingRange else {
                throw CloudError.notFound("no network has a floating_range to allocate from")
            }
            try allocate(nil, pool: pool.name, range: range, caller: caller, instanceID: r.id)
            core.announce(.instance, r.name)
            try host.applyRuleset()
        case .address(let value):
            let a = try IPv4Address(parsing: value)
            if core.catalog.withLock({ $0.floatingIPs[Int64(a.value)] }) == nil { try allocate(value, caller) }
            let f = try owned(value, caller)
            try associate(f.address, with: r, caller: caller)
        }
    }
}
