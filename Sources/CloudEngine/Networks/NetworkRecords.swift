import CloudCore
import CloudNetwork
import CloudStore

/// nova-network's rows as the network manager's value types: a `NetworkRecord` (what
/// SQLite holds) is a `NetworkSpec` (what CloudNetwork validates and plans with).
extension NetworkSpec {
    /// The spec a stored row describes; `EINVAL` for a row that no longer parses. The
    /// row's `vlan` column is the segment id (Neutron's `segmentation_id`): the VNI of a
    /// vxlan network.
    init(record r: NetworkRecord) throws(CloudError) {
        let cidr = try IPv4Network(cidr: r.cidr)
        let mode = NetworkMode(rawValue: r.mode) ?? .flatdhcp
        self.init(name: r.name, mode: mode, cidr: cidr,
                  gateway: IPv4Address(r.gateway), dns: try NetworkSpec.parseDNS(r.dns),
                  bridge: r.bridge.isEmpty ? nil : r.bridge, bridgeInterface: r.bridgeInterface.isEmpty ? nil : r.bridgeInterface,
                  vlan: mode == .vxlan ? nil : r.vlan, vni: mode == .vxlan ? r.vlan : nil, dhcpStart: IPv4Address(r.dhcpStart),
                  floatingRange: r.floatingRange.isEmpty ? nil : try IPv4Network(cidr: r.floatingRange), project: r.project)
    }

    /// The row that stores this spec.
    var record: NetworkRecord {
        NetworkRecord(name: name, cidr: cidr.description, gateway: gateway.description, mode: mode.rawValue,
                      dns: dns.map(\.description).joined(separator: ","), bridge: bridge,
                      bridgeInterface: bridgeInterface ?? "", vlan: mode == .vxlan ? vni : vlan, dhcpStart: dhcpStart.description,
                      floatingRange: floatingRange?.description ?? "", project: project)
    }

    /// The addresses of the range that are never handed out although inside the bounds.
    func reserved(in bounds: ClosedRange<UInt32>) -> Set<UInt32> {
        bounds.contains(gateway.value) ? [gateway.value] : []
    }

    /// The floating addresses of the pool: the range without its network and broadcast
    /// addresses (all of it for a /31 or /32).
    static func floatingBounds(_ range: IPv4Network) -> ClosedRange<UInt32> {
        range.prefix >= 31 ? range.network.value...range.broadcast.value : (range.network.value + 1)...(range.broadcast.value - 1)
    }
}

extension Catalog {
    /// Every network's spec, by name (rows that no longer parse are left out: they were
    /// validated when written).
    func networkSpecs() -> [NetworkSpec] {
        networks.values.compactMap { r -> NetworkSpec? in
            do throws(CloudError) { return try NetworkSpec(record: r) } catch { return nil }
        }.sorted { $0.name < $1.name }
    }

    func networkSpec(named name: String) -> NetworkSpec? {
        guard let r = networks[name] else { return nil }
        do throws(CloudError) { return try NetworkSpec(record: r) } catch { return nil }
    }

    /// Whether any fixed IP of the network is held.
    func networkInUse(_ name: String) -> Bool { ips.values.joined().contains { $0.network == name } }

    /// The fixed MAC → IP bindings of a network, for dnsmasq's hosts file.
    func dhcpHosts(_ network: String) -> [DHCPHost] {
        ips.values.joined().filter { $0.network == network }.compactMap { ip -> DHCPHost? in
            do throws(CloudError) {
                return try DHCPHost(mac: ip.mac, ip: IPv4Address(UInt32(ip.address)), instanceName: instanceNames[ip.instanceId] ?? "instance")
            } catch { return nil }   // MACs are made by MACAddress.random(): always valid
        }
    }

    /// The mode of the network a build of `r` gets its address from (NetworkService's
    /// `plan`): the project's own vlan or vxlan network, else the requested (or default)
    /// network's; nil when that network does not exist.
    func plannedNetworkMode(for r: InstanceRecord) -> NetworkMode? {
        if let held = ips[r.id]?.first { return networkSpec(named: held.network)?.mode }
        if let owned = networkSpecs().first(where: { $0.mode.isProjectSegment && $0.project == r.project }) { return owned.mode }
        let name = r.requestedNetwork ?? defaultValue(.network)
        return networkSpec(named: name)?.mode
    }
}
