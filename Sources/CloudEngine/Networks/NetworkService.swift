import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// nova-network's networks (`nova-manage network create` as `mkdir /networks/NAME` plus
/// field writes) and its fixed IPs: `allocate_for_instance` as the build's network step,
/// in the same transaction that moves the build on, and the release on delete or failure.
final class NetworkService: NetworksAPI, NetworkProvider, @unchecked Sendable {
    // @unchecked: immutable after init (the weak reference is set once by `Engine`).
    let core: EngineCore
    let host: NetworkHost
    /// `/defaults/network` (SettingsService).
    let settings: any SettingsReader
    /// Instances' floating IP writes go there (set by `Engine`).
    weak var floating: FloatingIPService?

    init(core: EngineCore, host: NetworkHost, settings: any SettingsReader) {
        self.core = core; self.host = host; self.settings = settings
    }

    /// A network associated with a project (VlanManager) is that project's; the others
    /// are every user's to see. Only an admin changes networks.
    func ref(_ name: String) -> ObjectRef {
        ObjectRef("network", name, project: core.catalog.withLock { $0.networks[name]?.project } ?? "")
    }

    /// The `default` flatdhcp network (10.0.0.0/16 on br100), then every network.
    func load() throws(CloudError) {
        try core.store.ensureNetwork(NetworkSpec.defaultNetwork.record)
        let networks = try core.store.networks()
        let ips = try core.store.fixedIPs()
        core.catalog.withLock { c in
            for n in networks { c.networks[n.name] = n }
            for (id, held) in Dictionary(grouping: ips, by: \.instanceId) { c.setIPs(held, of: id) }
        }
    }

    // MARK: NetworksAPI

    func list(_ caller: Caller) -> [NetworkInfo] {
        core.catalog.withLock { c in c.networkSpecs().map { info($0, c) } }.filter { core.visible(caller, ref($0.name)) }
    }

    func get(_ name: String, _ caller: Caller) -> NetworkInfo? {
        guard core.visible(caller, ref(name)) else { return nil }
        return core.catalog.withLock { c in c.networkSpec(named: name).map { info($0, c) } }
    }

    private func info(_ s: NetworkSpec, _ c: Catalog) -> NetworkInfo {
        var fields: [String: String] = [:]
        for f in NetworkField.allCases { fields[f.rawValue] = s.text(of: f) }
        // Copies of the catalog's tables (copy-on-write: no pass over them until read).
        let all = c.ips, names = c.instanceNames
        return NetworkInfo(name: s.name, fields: fields) {
            let ips = all.values.joined().filter { $0.network == s.name }.sorted { $0.address < $1.address }
            let leases = ips.map { "\(IPv4Address(UInt32($0.address))) \($0.mac) \(names[$0.instanceId] ?? $0.instanceId)" }
            return (leases, s.freeCount(used: Set(ips.map { IPv4Address(UInt32($0.address)) })))
        }
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        let spec = try core.refusing("network", name, caller) { () throws(CloudError) -> NetworkSpec in
            try ObjectName.validate(name, kind: "network")
            try core.authorize(caller, .administer("create networks"), ref(name))
            return try core.write({ (s) throws(CloudError) -> NetworkSpec in
                let others = core.catalog.withLock { $0.networkSpecs() }
                guard !others.contains(where: { $0.name == name }) else { throw CloudError.exists("network '\(name)' already exists") }
                let spec = try Self.freshSpec(name, beside: others)
                try s.insertNetwork(spec.record)
                return spec
            }) { c, spec in c.networks[name] = spec.record }
        }
        core.events.append(kind: "network.created", object: name, ["cidr": spec.cidr.description, "bridge": spec.bridge, "uid": "\(caller.uid)"])
        core.announce(.network, name)
    }

    /// A new network's starting point: flatdhcp on the first 10.X.Y.0/24 and `brN` bridge
    /// no other network uses (fields are then written one by one, like configfs).
    static func freshSpec(_ name: String, beside others: [NetworkSpec]) throws(CloudError) -> NetworkSpec {
        let bridges = Set(others.map(\.bridge))
        let bridge = (101...4095).lazy.map { "br\($0)" }.first { !bridges.contains($0) } ?? "br-\(name.prefix(12))"
        for n in UInt32(1 << 8)..<UInt32(1 << 16) {
            let cidr = try IPv4Network(cidr: "\(IPv4Address(0x0A00_0000 | n << 8))/24")
            let s = NetworkSpec(name: name, mode: .flatdhcp, cidr: cidr, bridge: bridge)
            do throws(CloudError) { try s.validate(against: others); return s } catch { continue }   // overlaps: the next /24
        }
        throw CloudError.noSpace("no free 10.x.y.0/24 is left for a new network")
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let spec = try core.refusing("network", name, caller) { () throws(CloudError) -> NetworkSpec in
            try core.authorize(caller, .administer("remove networks"), ref(name))
            guard let s = core.catalog.withLock({ $0.networkSpec(named: name) }) else { throw CloudError.notFound("no network named '\(name)'") }
            try core.write({ (st) throws(CloudError) in try st.deleteNetwork(name) }) { c, _ in c.networks[name] = nil }
            return s
        }
        do throws(CloudError) { try host.remove(spec) } catch {
            core.events.append(kind: "network.error", object: name, ["reason": error.reason])
        }
        core.events.append(kind: "network.deleted", object: name, ["uid": "\(caller.uid)"])
        core.announce(.network, name)
    }

    func change(_ name: String, _ field: NetworkField, _ value: String, _ caller: Caller) throws(CloudError) {
        let (spec, old) = try core.refusing("network", "\(name)/\(field.rawValue)", caller) { () throws(CloudError) -> (NetworkSpec, String?) in
            try core.authorize(caller, .administer("change networks"), ref(name))
            guard core.catalog.withLock({ $0.networks[name] }) != nil else { throw CloudError.notFound("no network named '\(name)'") }
            return try core.write({ (st) throws(CloudError) -> (NetworkSpec, String?) in
                let (current, others, held) = core.catalog.withLock { c in
                    (c.networkSpec(named: name), c.networkSpecs().filter { $0.name != name },
                     (c.networkInUse(name), c.floatingIPs.values.contains { $0.pool == name }))
                }
                guard var s = current else { throw CloudError.notFound("no network named '\(name)'") }
                if held.0, field != .dns, field != .floatingRange {
                    throw CloudError.busy("network '\(name)' has leases: its \(field.rawValue) cannot change until they are released")
                }
                if held.1, field == .floatingRange {
                    throw CloudError.busy("floating IPs of network '\(name)' are allocated: release them first")
                }
                let before = s.project
                try s.set(field, from: Array(value.utf8))
                if field == .project, let p = s.project, p != before, let owned = others.first(where: { $0.project == p }) {
                    // VlanManager: one vlan (or vxlan) network (bridge, subnet) per project.
                    throw CloudError.busy("project \(p) already has \(owned.mode.rawValue) network \(owned.name)")
                }
                if field == .mode, let refusal = host.refusal(for: s.mode) { throw refusal }
                if field == .mode, s.mode.isProjectSegment, s.segmentID == nil {
                    // The first free id, so `echo vlan > mode` works without a vlan written
                    // first: VlanManager numbers from `vlan_start` (100), Neutron's VXLAN type
                    // driver from the start of `vni_ranges` (1).
                    let (idField, ids) = s.mode == .vlan ? (NetworkField.vlan, 100...NetworkSpec.vlanRange.upperBound)
                                                          : (NetworkField.vni, NetworkSpec.vniRange)
                    let used = Set(others.filter { $0.mode == s.mode }.compactMap(\.segmentID))
                    if let id = ids.lazy.first(where: { !used.contains($0) }) { try s.set(idField, text: "\(id)") }
                }
                try s.validate(against: others)
                try st.updateNetwork(s.record)
                return (s, before)
            }) { c, result in c.networks[name] = result.0.record }
        }
        core.events.append(kind: "network.updated", object: name, [field.rawValue: value])
        if spec.project != old {
            if let old { core.events.append(kind: "network.disassociated", object: name, ["project": old, "uid": "\(caller.uid)"]) }
            if let p = spec.project { core.events.append(kind: "network.associated", object: name, ["project": p, "uid": "\(caller.uid)"]) }
        }
        core.announce(.network, name)
        // On demand: a vlan network's interface, bridge and dnsmasq appear once it is
        // associated with a project (or used), never for an unassigned one.
        if host.isManaged, spec.mode == .flat || spec.floatingRange != nil || spec.project != nil
            || core.catalog.withLock({ $0.networkInUse(name) }) {
            host.applyRecording(spec)
        }
    }

    // MARK: fixed IPs (NetworkProvider)

    /// Which network a build takes its fixed IP from, nova-network's VlanManager rule:
    /// - a project that owns a vlan network (`/networks/NAME/project`) always uses it;
    /// - otherwise, when the requested network (`/defaults/network`) is in vlan mode, the
    ///   project gets the unassigned vlan network with the lowest vlan id, associated in the
    ///   transaction that allocates the fixed IP (`project_get_networks(associate=True)`);
    /// - otherwise the requested network itself (flat, flatdhcp), shared by every project.
    /// Associations outlive instances: only the admin dissociates (an empty `project` write).
    enum Plan {
        case network(NetworkSpec)
        /// The project and the vlan networks it may use: its own and the unassigned ones,
        /// lowest vlan id first.
        case project(String, [NetworkSpec])
    }

    func plan(for project: String, requested: String? = nil) throws(CloudError) -> Plan {
        let netName = requested ?? settings.defaultValue(.network)
        let all = core.catalog.withLock { $0.networkSpecs() }
        let requested = all.first { $0.name == netName }
        let owned = all.first { $0.mode.isProjectSegment && $0.project == project }
        if let kind = owned?.mode ?? requested.map(\.mode), kind.isProjectSegment {
            // The project's own network, else the unassigned ones of the requested kind.
            if owned == nil, let refusal = host.refusal(for: kind) { throw refusal }
            let vlans = all.filter { $0.mode == kind && ($0.project == nil || $0.project == project) }
                .sorted { ($0.segmentID ?? 0, $0.name) < ($1.segmentID ?? 0, $1.name) }
            return .project(project, owned.map { [$0] } ?? vlans)
        }
        guard let requested else { throw CloudError.notFound("no network named '\(netName)'") }
        return .network(requested)
    }

    func checkFixedIPsLeft(project: String, requested: String? = nil) throws(CloudError) {
        let target: NetworkSpec
        let planned: Plan
        // A default network that does not exist is the build's to report (in `fault`).
        do throws(CloudError) { planned = try plan(for: project, requested: requested) } catch { return }
        switch planned {
        case .network(let s): target = s
        case .project(let p, let vlans):
            if let mine = vlans.first(where: { $0.project == p }) { target = mine }
            else if vlans.isEmpty { throw CloudError.noSpace("No more networks available for project \(p)") }
            else { return }
        }
        // Fewer addresses held than the network has: some are free, whichever they are.
        let used = core.catalog.withLock { c -> Set<IPv4Address>? in
            guard c.ipsHeld[target.name, default: 0] >= target.allocatableCount else { return nil }
            return Set(c.ips.values.joined().filter { $0.network == target.name }.map { IPv4Address(UInt32($0.address)) })
        }
        if let used, target.freeCount(used: used) == 0 {
            throw CloudError.noSpace("No more fixed IPs in network \(target.name) (\(target.cidr)): all \(target.allocatableCount) addresses are in use")
        }
    }

    /// The build's network step: nova-network's allocate_for_instance on the network
    /// `plan` picks (associating a vlan network with the project when it has none),
    /// committed with the move to `spawning`; then, when the host's networking is managed,
    /// the network is set up on demand and dnsmasq learns the MAC → IP binding before the
    /// guest can ask for it.
    func allocate(for r: InstanceRecord) throws(CloudError) -> Commit<InstanceRecord> {
        var got: NetworkSpec?   // the network the address came from
        let plan = try plan(for: r.project, requested: r.requestedNetwork)
        // The allocation's events are written by its transaction, shown after the commit.
        var told: [String] = []
        func tell(_ ip: FixedIPRecord, associated: String?) -> [String] {
            told = core.events.capture {
                if let associated {
                    core.events.append(kind: "network.associated", object: associated, ["project": r.project, "instance": r.name])
                }
                core.events.append(kind: "instance.networked", object: r.name,
                                   ["ip": IPv4Address(UInt32(ip.address)).description, "mac": ip.mac, "network": ip.network,
                                    "project": r.project])
            }
            return told
        }
        let outcome = try core.commit { (s) throws(CloudError) -> InstanceRecord? in
            switch plan {
            case .network(let spec):
                guard let bounds = spec.allocatableBounds else {
                    throw CloudError.noSpace("No more fixed IPs in network \(spec.name): it has no allocatable address")
                }
                guard let (inst, ip) = try s.allocateFixedIPForBuild(
                    instanceID: r.id, network: spec.name, range: bounds, reserved: spec.reserved(in: bounds),
                    mac: { MACAddress.random() }, events: { tell($0, associated: nil) }) else { return nil }
                core.catalog.withLock { $0.setIPs([ip], of: r.id) }
                got = spec
                return inst
            case .project(let project, let vlans):
                let choices = vlans.compactMap { s in
                    s.allocatableBounds.map { FixedIPChoice(network: s.name, range: $0, reserved: s.reserved(in: $0)) }
                }
                guard let (inst, ip, associated) = try s.allocateProjectFixedIPForBuild(
                    instanceID: r.id, project: project, candidates: choices, mac: { MACAddress.random() },
                    events: { tell($0, associated: $1) }) else { return nil }
                core.catalog.withLock { c in
                    c.setIPs([ip], of: r.id)
                    if let associated { c.networks[associated]?.project = project }
                }
                guard var spec = vlans.first(where: { $0.name == ip.network }) else { return inst }
                spec.project = project
                got = spec
                return inst
            }
        }
        guard case .applied = outcome, let spec = got else { return outcome }
        core.events.publish(told)
        core.announce(.network, spec.name)
        CrashPoints.pass("build.networked")
        try host.apply(spec)
        try host.applyRuleset()
        return outcome
    }

    func release(_ r: InstanceRecord) throws(CloudError) -> Bool {
        let held = core.catalog.withLock { $0.ips[r.id] ?? [] }
        if !held.isEmpty {
            try core.write({ (s) throws(CloudError) in try s.releaseFixedIPs(instanceID: r.id) }) { c, _ in c.setIPs(nil, of: r.id) }
        }
        // nova-network's deallocate_for_instance: auto-assigned floating IPs go, others are
        // disassociated.
        let touched = try core.write({ (s) throws(CloudError) -> ([Int64], [FloatingIPRecord]) in
            let touched = try s.releaseFloatingIPs(instanceID: r.id)
            return (touched, touched.isEmpty ? [] : try s.floatingIPs())
        }) { c, result in
            if !result.0.isEmpty { c.floatingIPs = Dictionary(uniqueKeysWithValues: result.1.map { ($0.address, $0) }) }
        }.0
        let networks = Set(held.map(\.network)).sorted()
        for n in networks { core.announce(.network, n) }
        for a in touched { core.announce(.floatingIP, IPv4Address(UInt32(a)).description) }
        if host.isManaged {
            do throws(CloudError) {
                try host.syncBindings(networks)
                try host.applyRuleset()
            } catch {
                core.events.append(kind: "network.error", object: r.name, ["reason": error.reason])
            }
        }
        return !held.isEmpty
    }

    // MARK: the guest's side (NetworkProvider)

    /// The guest's NIC (a tap on the network's bridge when the host's networking is
    /// managed, else a user-mode NIC) and the kernel command line words for direct kernel
    /// boot: `cloudfs.dhcp=1` when dnsmasq serves the guest (flatdhcp and vlan, managed;
    /// vxlan on a host whose agent runs the segment's DHCP port),
    /// else the address injected as `cloudfs.ip=A/P cloudfs.gw=G` (flat: nova's injected
    /// network configuration).
    func guestNetwork(for r: InstanceRecord) -> (nics: [NICSpec], cmdline: String?) {
        guard let (ip, s) = core.catalog.withLock({ c in c.ips[r.id]?.first.map { ($0, c.networkSpec(named: $0.network)) } }) else {
            return ([], nil)
        }
        let addr = IPv4Address(UInt32(ip.address))
        var nic = NICSpec(mac: ip.mac, ip: addr.description)
        guard let s else { return ([nic], "cloudfs.ip=\(addr) cloudfs.name=\(r.name)") }
        if host.isManaged {
            nic.bridge = s.bridge
            nic.interfaceName = ManagedNetworking.tapName(instanceID: r.id)
        } else {
            nic.userNet = UserNetSpec(network: s.cidr.description, host: s.gateway.description,
                                      dns: UserModeNetwork.dnsAddress(s.cidr, avoiding: addr).description,
                                      guest: addr.description, sshPort: r.sshPort)
        }
        // A vxlan guest on a host with an agent asks the segment's local DHCP port.
        let agentDHCP = s.mode == .vxlan && core.catalog.withLock { c in r.host.flatMap { c.hosts[$0] }.map { !$0.record.agent.isEmpty } ?? false }
        let words = host.isManaged && (s.mode.usesDHCP || agentDHCP) ? "cloudfs.dhcp=1 cloudfs.name=\(r.name)"
            : "cloudfs.ip=\(addr)/\(s.cidr.prefix) cloudfs.gw=\(s.gateway) cloudfs.name=\(r.name)"
        return ([nic], words)
    }

    func guestAddressing(for r: InstanceRecord) -> GuestAddressing? {
        guard let (ip, s) = core.catalog.withLock({ c in c.ips[r.id]?.first.map { ($0, c.networkSpec(named: $0.network)) } }),
              let s else { return nil }
        let addr = IPv4Address(UInt32(ip.address))
        // Managed: dnsmasq answers on the gateway unless the network names servers. User
        // mode: QEMU's own resolver on its private network (UserModeNetwork).
        let dns = host.isManaged ? (s.dns.isEmpty ? [s.gateway.description] : s.dns.map(\.description))
                                 : [UserModeNetwork.dnsAddress(s.cidr, avoiding: addr).description]
        return GuestAddressing(mac: ip.mac, ip: addr.description, prefix: s.cidr.prefix, netmask: s.cidr.netmask.description,
                               gateway: s.gateway.description, dns: dns, networkName: s.name)
    }

    func securityGroupsChanged() throws(CloudError) { try host.applyRuleset() }

    func plugVIFs(_ r: InstanceRecord, on host: String) throws(CloudError) {
        guard self.host.isManaged else { return }
        try self.host.segments.plug(r, on: host)
    }

    func networksMoved() { if host.isManaged { host.segments.syncRecording() } }

    func setFloatingIP(of r: InstanceRecord, _ request: FloatingIPRequest, _ caller: Caller) throws(CloudError) {
        guard let floating else { throw CloudError.io("the floating IP service is not running") }
        try floating.setInstanceFloatingIP(r, request, caller)
    }
}
