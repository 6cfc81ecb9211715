import CloudCore

/// nova-network's network manager, one per network: `FlatManager` (flat: addresses are
/// injected, no DHCP), `FlatDHCPManager` (flatdhcp: one bridge, dnsmasq hands out the fixed
/// IPs), `VlanManager` (vlan: one bridge and 802.1Q interface per network, with DHCP) and
/// Neutron's VXLAN type driver with l2population (vxlan: on every host with an instance on
/// it, one bridge and one VXLAN device per network, unicast forwarding entries to the other
/// hosts; on a host with an agent, each segment's local DHCP port hands out the addresses).
public enum NetworkMode: String, CaseIterable, Sendable, Codable {
    case flat, flatdhcp, vlan, vxlan

    /// Whether the network runs a DHCP server (dnsmasq) on its bridge.
    public var usesDHCP: Bool { self == .flatdhcp || self == .vlan }

    /// Whether networks of this mode belong to one project each (VlanManager's rule, also
    /// Neutron's tenant networks): vlan and vxlan.
    public var isProjectSegment: Bool { self == .vlan || self == .vxlan }
}

/// One nova-network network (the `networks` table row `nova-manage network create` writes):
/// its subnet, gateway, DNS servers, bridge, optional VLAN and floating range.
///
/// The memberwise defaults follow nova-network: the gateway is the first host address,
/// `dhcp_start` the address after the gateway, the bridge `br100` for flat networks and
/// `br<vlan>` for VLAN networks. Build one with `init` and check it with `validate(against:)`.
public struct NetworkSpec: Hashable, Sendable {
    public var name: String
    public var mode: NetworkMode
    public var cidr: IPv4Network
    /// The bridge's address on the host, the guests' default route and the DHCP server.
    public var gateway: IPv4Address
    /// DNS servers handed to guests; empty means the DHCP server (gateway) itself.
    public var dns: [IPv4Address]
    /// The Linux bridge the guests' tap devices are plugged into (nova's `bridge`).
    public var bridge: String
    /// The host interface enslaved to the bridge (nova's `bridge_interface`, from
    /// `flat_interface` or `vlan_interface`): the physical uplink for flat networks, the
    /// parent of `vlan<N>` for VLAN networks. Nil: a bridge without uplink.
    public var bridgeInterface: String?
    /// The 802.1Q tag (VlanManager only).
    public var vlan: Int?
    /// The VXLAN network identifier (vxlan mode only; Neutron's `segmentation_id`).
    public var vni: Int?
    /// The first address handed to instances: everything below it is reserved.
    public var dhcpStart: IPv4Address
    /// The floating IP pool that belongs with this network, if any.
    public var floatingRange: IPv4Network?
    /// VlanManager's project association (nova's `networks.project_id`): the project whose
    /// instances use this vlan network; nil while it is unassigned. Only vlan networks
    /// are associated.
    public var project: String?

    /// A spec with nova-network's defaults for every field not given.
    public init(name: String, mode: NetworkMode, cidr: IPv4Network, gateway: IPv4Address? = nil,
                dns: [IPv4Address] = [], bridge: String? = nil, bridgeInterface: String? = nil,
                vlan: Int? = nil, vni: Int? = nil, dhcpStart: IPv4Address? = nil, floatingRange: IPv4Network? = nil,
                project: String? = nil) {
        self.name = name
        self.mode = mode
        self.cidr = cidr
        let gw = gateway ?? cidr.defaultGateway
        self.gateway = gw
        self.dns = dns
        self.bridge = bridge ?? NetworkSpec.defaultBridge(mode: mode, vlan: vlan, vni: vni)
        self.bridgeInterface = bridgeInterface
        self.vlan = vlan
        self.vni = vni
        self.dhcpStart = dhcpStart ?? IPv4Address(gw.value &+ 1)
        self.floatingRange = floatingRange
        self.project = project
    }

    /// The network the engine creates on first mount, like nova-network's single
    /// FlatDHCP network: `default`, flatdhcp, 10.0.0.0/16 on bridge br100.
    public static let defaultNetwork = NetworkSpec(
        name: "default", mode: .flatdhcp, cidr: try! IPv4Network(cidr: "10.0.0.0/16"))

    /// nova-network's bridge names: `br100` (the `flat_network_bridge` default) for flat and
    /// flatdhcp networks, `br<vlan>` for VLAN networks; `brvx<vni>` for VXLAN networks.
    public static func defaultBridge(mode: NetworkMode, vlan: Int?, vni: Int? = nil) -> String {
        if mode == .vlan, let vlan { return "br\(vlan)" }
        if mode == .vxlan, let vni { return "brvx\(vni)" }
        return "br100"
    }

    /// The VXLAN device enslaved to the bridge on every host that carries the network
    /// (`vxlan<vni>`, at most 13 characters); nil outside vxlan mode.
    public var vxlanInterface: String? {
        guard mode == .vxlan, let vni else { return nil }
        return "vxlan\(vni)"
    }

    /// The project segment's id: the VLAN tag or the VNI (Neutron's `segmentation_id`).
    public var segmentID: Int? { mode == .vxlan ? vni : mode == .vlan ? vlan : nil }

    /// The 802.1Q interface VlanManager creates on `bridgeInterface` and enslaves to the
    /// bridge (`vlan<N>`); nil for flat networks.
    public var vlanInterface: String? {
        guard mode == .vlan, let vlan else { return nil }
        return "vlan\(vlan)"
    }

    /// The address dnsmasq listens on (nova's `dhcp_server`, the gateway by default).
    public var dhcpServer: IPv4Address { gateway }
}
