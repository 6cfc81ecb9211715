import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// nova-network's networks (`nova-manage network create` as `mkdir /networks/NAME` plus
/// field writes) and its fixed IPs: `allocate_for_instance` as the build's network step,
/// in the same transaction that moves the build on, and the release on delete or failure.
extension Engine {
    // MARK: records and specs

    static func spec(_ r: NetworkRecord) throws(CloudError) -> NetworkSpec {
        let cidr = try IPv4Network(cidr: r.cidr)
        return NetworkSpec(
            name: r.name, mode: NetworkMode(rawValue: r.mode) ?? .flatdhcp, cidr: cidr,
            gateway: IPv4Address(r.gateway), dns: try NetworkSpec.parseDNS(r.dns),
            bridge: r.bridge.isEmpty ? nil : r.bridge, bridgeInterface: r.bridgeInterface.isEmpty ? nil : r.bridgeInterface,
            vlan: r.vlan, dhcpStart: IPv4Address(r.dhcpStart),
            floatingRange: r.floatingRange.isEmpty ? nil : try IPv4Network(cidr: r.floatingRange), project: r.project)
    }

    static func record(_ s: NetworkSpec) -> NetworkRecord {
        NetworkRecord(name: s.name, cidr: s.cidr.description, gateway: s.gateway.description, mode: s.mode.rawValue,
                      dns: s.dns.map(\.description).joined(separator: ","), bridge: s.bridge,
                      bridgeInterface: s.bridgeInterface ?? "", vlan: s.vlan, dhcpStart: s.dhcpStart.description,
                      floatingRange: s.floatingRange?.description ?? "", project: s.project)
    }

    /// Every network's spec (rows that no longer parse are skipped).
    func specs() -> [NetworkSpec] {
        catalog.withLock { Array($0.networks.values) }.compactMap { try? Self.spec($0) }.sorted { $0.name < $1.name }
    }

    func spec(named name: String) -> NetworkSpec? {
        catalog.withLock { $0.networks[name] }.flatMap { try? Self.spec($0) }
    }

    /// The addresses of the range that are never handed out although inside the bounds.
    static func reserved(_ s: NetworkSpec, in bounds: ClosedRange<UInt32>) -> Set<UInt32> {
        bounds.contains(s.gateway.value) ? [s.gateway.value] : []
    }

    // MARK: start-up

    /// The `default` flatdhcp network (10.0.0.0/16 on br100) and the `default` security group.
    func seedNetworking() throws(CloudError) {
        try store.ensureNetwork(Self.record(NetworkSpec.defaultNetwork))
        try store.ensureSecurityGroup(SecurityGroupRecord(name: "default"))
    }

    func loadNetworking() throws(CloudError) {
        let floating = try store.floatingIPs()
        let groups = try store.securityGroups()
        catalog.withLock { c in
            for f in floating { c.floatingIPs[f.address] = f }
            for g in groups { c.securityGroups[g.name] = g }
        }
    }

    // MARK: the tree

    public func networks() -> [NetworkInfo] {
        specs().map(networkInfo)
    }

    public func network(_ name: String) -> NetworkInfo? {
        spec(named: name).map(networkInfo)
    }

    func networkInfo(_ s: NetworkSpec) -> NetworkInfo {
        let (ips, names) = catalog.withLock { c in
            (c.ips.values.flatMap { $0 }.filter { $0.network == s.name }, c.instanceNames)
        }
        let leases = ips.sorted { $0.address < $1.address }.map {
            "\(IPv4Address(UInt32($0.address))) \($0.mac) \(names[$0.instanceId] ?? $0.instanceId)"
        }
        var fields: [String: String] = [:]
        for f in NetworkField.allCases { fields[f.rawValue] = s.text(of: f) }
        return NetworkInfo(name: s.name, fields: fields, leases: leases,
                           free: s.freeCount(used: Set(ips.map { IPv4Address(UInt32($0.address)) })))
    }

    public func createNetwork(_ name: String, caller: Caller) throws(CloudError) {
        let spec = try refusing("network", name, caller) { () throws(CloudError) -> NetworkSpec in
            try ObjectName.validate(name, kind: "network")
            guard caller.isAdmin else { throw CloudError.notPermitted("only the admin creates networks") }
            mutation.lock(); defer { mutation.unlock() }
            let others = specs()
            guard !others.contains(where: { $0.name == name }) else { throw CloudError.exists("network '\(name)' already exists") }
            let spec = try Self.freshSpec(name, beside: others)
            try store.insertNetwork(Self.record(spec))
            catalog.withLock { $0.networks[name] = Self.record(spec) }
            return spec
        }
        events.append(kind: "network.created", object: name, ["cidr": spec.cidr.description, "bridge": spec.bridge, "uid": "\(caller.uid)"])
        announce(ChangeNotice(.network, name))
    }

    /// A new network's starting point: flatdhcp on the first 10.X.Y.0/24 and `brN` bridge
    /// no other network uses (fields are then written one by one, like configfs).
    static func freshSpec(_ name: String, beside others: [NetworkSpec]) throws(CloudError) -> NetworkSpec {
        let bridges = Set(others.map(\.bridge))
        let bridge = (101...4095).lazy.map { "br\($0)" }.first { !bridges.contains($0) } ?? "br-\(name.prefix(12))"
        for n in UInt32(1 << 8)..<UInt32(1 << 16) {
            let cidr = try IPv4Network(cidr: "\(IPv4Address(0x0A00_0000 | n << 8))/24")
            let s = NetworkSpec(name: name, mode: .flatdhcp, cidr: cidr, bridge: bridge)
            if (try? s.validate(against: others)) != nil { return s }
        }
        throw CloudError.noSpace("no free 10.x.y.0/24 is left for a new network")
    }

    public func deleteNetwork(_ name: String, caller: Caller) throws(CloudError) {
        let spec = try refusing("network", name, caller) { () throws(CloudError) -> NetworkSpec in
            guard let s = self.spec(named: name) else { throw CloudError.notFound("no network named '\(name)'") }
            guard caller.isAdmin else { throw CloudError.notPermitted("only the admin removes networks") }
            mutation.lock(); defer { mutation.unlock() }
            try store.deleteNetwork(name)
            catalog.withLock { $0.networks[name] = nil }
            return s
        }
        if let m = managedNetworking {
            do throws(CloudError) { try m.remove(spec) } catch { events.append(kind: "network.error", object: name, ["reason": error.reason]) }
        }
        events.append(kind: "network.deleted", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.network, name))
    }

    public func setNetworkField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        let (spec, old) = try refusing("network", "\(name)/\(field)", caller) { () throws(CloudError) -> (NetworkSpec, String?) in
            guard var s = self.spec(named: name) else { throw CloudError.notFound("no network named '\(name)'") }
            guard let f = NetworkField(rawValue: field) else { throw CloudError.readOnly("\(field) is read-only") }
            guard caller.isAdmin else { throw CloudError.notPermitted("only the admin changes networks") }
            mutation.lock(); defer { mutation.unlock() }
            let held = catalog.withLock { c in
                (c.ips.values.joined().contains { $0.network == name }, c.floatingIPs.values.contains { $0.pool == name })
            }
            if held.0, f != .dns, f != .floatingRange {
                throw CloudError.busy("network '\(name)' has leases: its \(field) cannot change until they are released")
            }
            if held.1, f == .floatingRange {
                throw CloudError.busy("floating IPs of network '\(name)' are allocated: release them first")
            }
            let before = s.project
            try s.set(f, from: Array(value.utf8))
            let others = specs()
            if f == .project, let p = s.project, p != before,
               let owned = others.first(where: { $0.name != name && $0.project == p }) {
                // VlanManager: one vlan network (bridge, subnet) per project.
                throw CloudError.busy("project \(p) already has vlan network \(owned.name)")
            }
            if f == .mode, s.mode == .vlan, s.vlan == nil {
                // VlanManager numbers networks from `vlan_start` (100): take the first free
                // id, so `echo vlan > mode` works without a vlan written first.
                let used = Set(others.compactMap { $0.mode == .vlan ? $0.vlan : nil })
                if let id = (100...NetworkSpec.vlanRange.upperBound).first(where: { !used.contains($0) }) {
                    try s.set(.vlan, text: "\(id)")
                }
            }
            try s.validate(against: others)
            try store.updateNetwork(Self.record(s))
            catalog.withLock { $0.networks[name] = Self.record(s) }
            return (s, before)
        }
        events.append(kind: "network.updated", object: name, [field: value])
        if spec.project != old {
            if let old { events.append(kind: "network.disassociated", object: name, ["project": old, "uid": "\(caller.uid)"]) }
            if let p = spec.project { events.append(kind: "network.associated", object: name, ["project": p, "uid": "\(caller.uid)"]) }
        }
        announce(ChangeNotice(.network, name))
        // On demand: a vlan network's interface, bridge and dnsmasq appear once it is
        // associated with a project (or used), never for an unassigned one.
        if managedNetworking != nil,
           spec.mode == .flat || spec.floatingRange != nil || spec.project != nil || networkInUse(name) {
            do throws(CloudError) { try applyOnHost(spec) } catch {
                events.append(kind: "network.error", object: name, ["reason": error.reason])
            }
        }
    }

    func networkInUse(_ name: String) -> Bool {
        catalog.withLock { $0.ips.values.joined().contains { $0.network == name } }
    }

    // MARK: fixed IPs

    /// Which network a build takes its fixed IP from, nova-network's VlanManager rule:
    /// - a project that owns a vlan network (`/networks/NAME/project`) always uses it;
    /// - otherwise, when the requested network (`/defaults/network`) is in vlan mode, the
    ///   project gets the unassigned vlan network with the lowest vlan id, associated in the
    ///   transaction that allocates the fixed IP (`project_get_networks(associate=True)`);
    /// - otherwise the requested network itself (flat, flatdhcp), shared by every project.
    /// Associations outlive instances: only the admin dissociates (an empty `project` write).
    enum NetworkPlan {
        case network(NetworkSpec)
        /// The project and the vlan networks it may use: its own and the unassigned ones,
        /// lowest vlan id first.
        case project(String, [NetworkSpec])
    }

    func networkPlan(for project: String) throws(CloudError) -> NetworkPlan {
        let netName = defaultValue(.network)
        let all = specs()
        let vlans = all.filter { $0.mode == .vlan && ($0.project == nil || $0.project == project) }
            .sorted { ($0.vlan ?? 0, $0.name) < ($1.vlan ?? 0, $1.name) }
        let requested = all.first { $0.name == netName }
        if vlans.contains(where: { $0.project == project }) || requested?.mode == .vlan {
            return .project(project, vlans)
        }
        guard let requested else { throw CloudError.notFound("no network named '\(netName)'") }
        return .network(requested)
    }

    /// mkdir's synchronous check (SPEC: ENOSPC "no free IP"): refuses when the network a
    /// new instance of `project` would use is already full, or when it would need a vlan
    /// network of its own and none is left ("No more networks available for project P").
    func checkFixedIPsLeft(project: String) throws(CloudError) {
        guard let plan = try? networkPlan(for: project) else { return }   // the build reports it
        let target: NetworkSpec
        switch plan {
        case .network(let s): target = s
        case .project(let p, let vlans):
            if let mine = vlans.first(where: { $0.project == p }) { target = mine }
            else if vlans.isEmpty { throw CloudError.noSpace("No more networks available for project \(p)") }
            else { return }
        }
        if networkInfo(target).free == 0 {
            throw CloudError.noSpace("No more fixed IPs in network \(target.name) (\(target.cidr)): all \(target.allocatableCount) addresses are in use")
        }
    }

    /// The build's network step: nova-network's allocate_for_instance on the network
    /// `networkPlan` picks (associating a vlan network with the project when it has none),
    /// committed with the move to `spawning`; then, when the host's networking is managed,
    /// the network is set up on demand and dnsmasq learns the MAC → IP binding before the
    /// guest can ask for it.
    func allocateNetwork(_ r: InstanceRecord) throws(CloudError) {
        var failure: CloudError?
        var got: (ip: FixedIPRecord, spec: NetworkSpec, associated: Bool)?
        commitInstance { (e) throws(CloudError) -> InstanceRecord? in
            do throws(CloudError) {
                switch try e.networkPlan(for: r.project) {
                case .network(let spec):
                    guard let bounds = spec.allocatableBounds else {
                        throw CloudError.noSpace("No more fixed IPs in network \(spec.name): it has no allocatable address")
                    }
                    guard let (inst, ip) = try e.store.allocateFixedIPForBuild(
                        instanceID: r.id, network: spec.name, range: bounds, reserved: Self.reserved(spec, in: bounds),
                        mac: { MACAddress.random() }) else { return nil }
                    e.catalog.withLock { $0.ips[r.id] = [ip] }
                    got = (ip, spec, false)
                    return inst
                case .project(let project, let vlans):
                    let choices = vlans.compactMap { s in
                        s.allocatableBounds.map { FixedIPChoice(network: s.name, range: $0, reserved: Self.reserved(s, in: $0)) }
                    }
                    guard let (inst, ip, associated) = try e.store.allocateProjectFixedIPForBuild(
                        instanceID: r.id, project: project, candidates: choices, mac: { MACAddress.random() }) else { return nil }
                    e.catalog.withLock { c in
                        c.ips[r.id] = [ip]
                        if let associated { c.networks[associated]?.project = project }
                    }
                    guard var spec = vlans.first(where: { $0.name == ip.network }) else { return inst }
                    spec.project = project
                    got = (ip, spec, associated != nil)
                    return inst
                }
            } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        guard let (ip, spec, associated) = got else { return }
        if associated {
            events.append(kind: "network.associated", object: spec.name, ["project": r.project, "instance": r.name])
        }
        events.append(kind: "instance.networked", object: r.name,
                      ["ip": IPv4Address(UInt32(ip.address)).description, "mac": ip.mac, "network": spec.name])
        announce(ChangeNotice(.network, spec.name))
        CrashPoints.pass("build.networked")
        if managedNetworking != nil {
            try applyOnHost(spec)
            try applyRuleset()
        }
    }

    /// After the instance's fixed IPs were released: dnsmasq forgets them, the floating IPs
    /// go (auto-assigned) or are disassociated, and the ruleset follows.
    func networkReleased(_ r: InstanceRecord, networks: [String]) {
        mutation.lock()
        let touched = (try? store.releaseFloatingIPs(instanceID: r.id)) ?? []
        if !touched.isEmpty, let all = try? store.floatingIPs() {
            catalog.withLock { c in c.floatingIPs = Dictionary(uniqueKeysWithValues: all.map { ($0.address, $0) }) }
        }
        mutation.unlock()
        for n in networks { announce(ChangeNotice(.network, n)) }
        for a in touched { announce(ChangeNotice(.floatingIP, IPv4Address(UInt32(a)).description)) }
        guard let m = managedNetworking else { return }
        do throws(CloudError) {
            for n in networks { if let s = spec(named: n) { try m.syncHosts(s, hosts: dhcpHosts(n)) } }
            try applyRuleset()
        } catch {
            events.append(kind: "network.error", object: r.name, ["reason": error.reason])
        }
    }

    // MARK: host

    /// The fixed MAC → IP bindings of a network, for dnsmasq's hosts file.
    func dhcpHosts(_ network: String) -> [DHCPHost] {
        catalog.withLock { c in
            c.ips.values.joined().filter { $0.network == network }.compactMap {
                try? DHCPHost(mac: $0.mac, ip: IPv4Address(UInt32($0.address)), instanceName: c.instanceNames[$0.instanceId] ?? "instance")
            }
        }
    }

    func applyOnHost(_ spec: NetworkSpec) throws(CloudError) {
        try managedNetworking?.apply(spec, hosts: dhcpHosts(spec.name))
    }

    /// At start with `--manage-network`: every network in use, associated with a project or
    /// holding a floating range (and the default one unless it is a vlan network: those
    /// are created on demand, when a project first gets one) on the host, then the ruleset. Failures are logged and recorded, not fatal: a build
    /// that needs the network tries again and fails with the reason.
    func applyHostNetworking() {
        guard managedNetworking != nil else { return }
        let wanted = defaultValue(.network)
        for s in specs() where (s.name == wanted && s.mode != .vlan) || s.project != nil
            || networkInUse(s.name) || s.floatingRange != nil {
            do throws(CloudError) { try applyOnHost(s) } catch {
                log.error("network \(s.name): \(error)")
                events.append(kind: "network.error", object: s.name, ["reason": error.reason])
            }
        }
        do { try applyRuleset() } catch {
            log.error("nftables: \(error)")
            events.append(kind: "network.error", object: "-", ["reason": error.reason])
        }
    }
}

/// How the guest learns its address and where its NIC is plugged (nova-network's
/// network_info handed to the virt driver).
extension Engine {
    /// Kernel command line words for direct kernel boot: `cloudfs.dhcp=1` when dnsmasq
    /// serves the guest (flatdhcp and vlan, managed), else the address injected as
    /// `cloudfs.ip=A/P cloudfs.gw=G` (flat: nova's injected network configuration).
    func guestNetworkArguments(_ r: InstanceRecord, _ ip: FixedIPRecord) -> String {
        let addr = IPv4Address(UInt32(ip.address))
        guard let s = spec(named: ip.network) else { return "cloudfs.ip=\(addr) cloudfs.name=\(r.name)" }
        if managedNetworking != nil, s.mode.usesDHCP { return "cloudfs.dhcp=1 cloudfs.name=\(r.name)" }
        return "cloudfs.ip=\(addr)/\(s.cidr.prefix) cloudfs.gw=\(s.gateway) cloudfs.name=\(r.name)"
    }

    /// With managed networking the NIC goes on the network's bridge through a tap named
    /// after the instance; otherwise it stays a user-mode NIC.
    func plugInterface(_ spec: inout DomainSpec, _ r: InstanceRecord, _ ip: FixedIPRecord) {
        guard managedNetworking != nil, let s = self.spec(named: ip.network) else { return }
        spec.bridge = s.bridge
        spec.interfaceName = ManagedNetworking.tapName(instanceID: r.id)
    }
}
