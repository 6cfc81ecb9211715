import CloudCore

/// Linux network interface names (bridges, VLAN interfaces, uplinks): what
/// `nova.network.linux_net` passes to `ip link`. At most 15 bytes (IFNAMSIZ - 1) of
/// `[A-Za-z0-9_.-]`, not `.` or `..`, not starting with `-` (it would read as an option).
public enum InterfaceName {
    public static let maxLength = 15

    /// Returns nil when `name` is a usable interface name, otherwise the reason it is not.
    public static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "an interface name may not be empty" }
        if bytes.count > maxLength { return "'\(name.prefix(40))' is longer than \(maxLength) characters, the Linux limit for interface names" }
        if name == "." || name == ".." { return "'\(name)' is not a usable interface name" }
        if bytes[0] == UInt8(ascii: "-") { return "an interface name may not start with '-'" }
        if !bytes.allSatisfy(ObjectName.isAllowed) {
            return "interface name '\(name.prefix(40))' may only contain A-Z a-z 0-9 . _ -"
        }
        return nil
    }

    /// Throws `EINVAL` naming the field when `name` is not a usable interface name.
    public static func validate(_ name: String, field: String) throws(CloudError) {
        if let p = problem(name) { throw CloudError.invalid("\(field): \(p)") }
    }
}

extension NetworkSpec {
    /// The valid 802.1Q VLAN ids (0 and 4095 are reserved by the standard).
    public static let vlanRange = 1...4094
    /// The valid VXLAN network identifiers (24 bits; Neutron's `vni_ranges` never use 0).
    public static let vniRange = 1...16_777_215

    /// nova-network's checks in `create_networks`, plus Linux's limits: throws `EINVAL` with
    /// the reason when this spec is unusable on its own or next to `others` (specs with the
    /// same name are skipped, so an updated spec can be checked against the stored list).
    public func validate(against others: [NetworkSpec]) throws(CloudError) {
        try ObjectName.validate(name, kind: "network")
        try validateAddresses()
        try validateLinks()
        for other in others where other.name != name {
            try validateBeside(other)
        }
    }

    private func validateAddresses() throws(CloudError) {
        guard cidr.prefix <= 30 else {
            throw CloudError.invalid("cidr \(cidr) is too small: a network needs at least a /30 (network, gateway, one instance, broadcast)")
        }
        guard cidr.contains(gateway) else { throw CloudError.invalid("gateway \(gateway) is outside cidr \(cidr)") }
        guard gateway != cidr.network else { throw CloudError.invalid("gateway \(gateway) is the network address of \(cidr)") }
        guard gateway != cidr.broadcast else { throw CloudError.invalid("gateway \(gateway) is the broadcast address of \(cidr)") }
        guard cidr.contains(dhcpStart), dhcpStart != cidr.network, dhcpStart != cidr.broadcast else {
            throw CloudError.invalid("dhcp_start \(dhcpStart) is outside the host addresses of cidr \(cidr)")
        }
        guard allocatableCount > 0 else {
            throw CloudError.invalid("cidr \(cidr) with gateway \(gateway) and dhcp_start \(dhcpStart) leaves no address for instances")
        }
        if let floatingRange, floatingRange.overlaps(cidr) {
            throw CloudError.invalid("floating_range \(floatingRange) overlaps this network's cidr \(cidr)")
        }
    }

    /// Also VlanManager's rule that only vlan (and vxlan) networks belong to a project.
    private func validateLinks() throws(CloudError) {
        try InterfaceName.validate(bridge, field: "bridge")
        if let bridgeInterface { try InterfaceName.validate(bridgeInterface, field: "bridge_interface") }
        if mode != .vxlan, let vni { throw CloudError.invalid("vni \(vni) is only used in vxlan mode, not \(mode.rawValue)") }
        switch mode {
        case .vxlan:
            guard let vni else { throw CloudError.invalid("vxlan mode needs a vni (1-16777215)") }
            guard Self.vniRange.contains(vni) else { throw CloudError.invalid("vni \(vni) is outside 1-16777215") }
            if let vlan { throw CloudError.invalid("vlan \(vlan) is only used in vlan mode, not vxlan") }
            if let bridgeInterface {
                throw CloudError.invalid("vxlan networks take no bridge_interface (\(bridgeInterface)): the VXLAN device sends from each host's tunnel address")
            }
            if floatingRange != nil {
                throw CloudError.invalid("vxlan networks have no floating_range: their guests are reached on the tenant segment only")
            }
        case .vlan:
            guard let vlan else { throw CloudError.invalid("vlan mode needs a vlan id (1-4094)") }
            guard Self.vlanRange.contains(vlan) else { throw CloudError.invalid("vlan \(vlan) is outside 1-4094") }
            guard bridgeInterface != nil else {
                throw CloudError.invalid("vlan mode needs bridge_interface: the host interface vlan\(vlan) is created on")
            }
            if bridgeInterface == bridge { throw CloudError.invalid("bridge_interface may not be the bridge \(bridge) itself") }
        case .flat, .flatdhcp:
            if let vlan { throw CloudError.invalid("vlan \(vlan) is only used in vlan mode, not \(mode.rawValue)") }
            if let project {
                throw CloudError.invalid("only vlan and vxlan networks are associated with a project, and \(name) (associated with \(project)) is \(mode.rawValue)")
            }
            if bridgeInterface == bridge { throw CloudError.invalid("bridge_interface may not be the bridge \(bridge) itself") }
        }
    }

    private func validateBeside(_ other: NetworkSpec) throws(CloudError) {
        if cidr.overlaps(other.cidr) {
            throw CloudError.invalid("cidr \(cidr) overlaps network \(other.name)'s cidr \(other.cidr)")
        }
        if let f = other.floatingRange, cidr.overlaps(f) {
            throw CloudError.invalid("cidr \(cidr) overlaps network \(other.name)'s floating_range \(f)")
        }
        if let mine = floatingRange {
            if mine.overlaps(other.cidr) {
                throw CloudError.invalid("floating_range \(mine) overlaps network \(other.name)'s cidr \(other.cidr)")
            }
            if let f = other.floatingRange, mine.overlaps(f) {
                throw CloudError.invalid("floating_range \(mine) overlaps network \(other.name)'s floating_range \(f)")
            }
        }
        if mode == .vlan, other.mode == .vlan, let vlan, vlan == other.vlan {
            throw CloudError.invalid("vlan \(vlan) is already used by network \(other.name)")
        }
        if mode == .vxlan, other.mode == .vxlan, let vni, vni == other.vni {
            throw CloudError.invalid("vni \(vni) is already used by network \(other.name)")
        }
        // Flat networks may share a bridge (nova's br100); a VLAN or VXLAN network's bridge is its own.
        if bridge == other.bridge, mode.isProjectSegment || other.mode.isProjectSegment {
            throw CloudError.invalid("bridge \(bridge) is already used by network \(other.name)")
        }
    }
}
