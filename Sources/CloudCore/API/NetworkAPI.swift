import Synchronization

/// A nova-network network as the tree shows it (`/networks/NAME/`).
public struct NetworkInfo: Sendable, Equatable {
    public var name: String
    /// The text of each field file (`mode`, `cidr`, `gateway`, `dns`, `bridge`,
    /// `bridge_interface`, `vlan`, `vni`, `dhcp_start`, `floating_range`, `project`), newline-terminated or empty.
    public var fields: [String: String]
    private let usage: Usage
    /// `IP MAC instance` per fixed IP held, sorted by address.
    public var leases: [String] { usage.value.leases }
    /// Free allocatable fixed IPs.
    public var free: Int { usage.value.free }

    public init(name: String, fields: [String: String], leases: [String], free: Int) {
        self.init(name: name, fields: fields) { (leases, free) }
    }

    /// Leases and free count made on first use: they cost a pass over every fixed IP,
    /// which a lookup that only needs the network's fields (a change notice's
    /// invalidation, `cat cidr`) must not pay at 10,000 instances.
    public init(name: String, fields: [String: String],
                usage: @escaping @Sendable () -> (leases: [String], free: Int)) {
        self.name = name; self.fields = fields; self.usage = Usage(usage)
    }

    public static func == (a: NetworkInfo, b: NetworkInfo) -> Bool {
        a.name == b.name && a.fields == b.fields && a.leases == b.leases && a.free == b.free
    }

    private final class Usage: Sendable {
        let make: @Sendable () -> (leases: [String], free: Int)
        let made = Mutex<(leases: [String], free: Int)?>(nil)
        init(_ make: @escaping @Sendable () -> (leases: [String], free: Int)) { self.make = make }
        var value: (leases: [String], free: Int) {
            if let v = made.withLock({ $0 }) { return v }
            let v = make()
            made.withLock { $0 = v }
            return v
        }
    }
}

/// A nova-network floating IP as the tree shows it (`/floating-ips/ADDR/`).
public struct FloatingIPInfo: Sendable, Equatable {
    public var address: String
    /// The network whose floating_range holds it.
    public var pool: String
    /// The associated instance's name ("" when none).
    public var instance: String
    public var project: String
    public var ownerUID: UInt32
    public init(address: String, pool: String, instance: String, project: String, ownerUID: UInt32) {
        self.address = address; self.pool = pool; self.instance = instance; self.project = project; self.ownerUID = ownerUID
    }
}

/// A Nova security group as the tree shows it (`/security-groups/NAME/`).
public struct SecurityGroupInfo: Sendable, Equatable {
    public var name: String
    /// Canonical rules, one `PROTO PORTS CIDR` line each.
    public var rules: String
    public var ownerUID: UInt32
    /// "" for the cloud-wide `default` group.
    public var project: String
    public init(name: String, rules: String, ownerUID: UInt32, project: String = "") {
        self.name = name; self.rules = rules; self.ownerUID = ownerUID; self.project = project
    }
}

/// The writable files of `/networks/NAME/`, each a column of nova-network's `networks`
/// table; the raw value is the file name.
public enum NetworkField: String, CaseIterable, Sendable {
    case mode, cidr, gateway, dns, bridge, vlan
    /// The VXLAN network identifier of a vxlan network (1-16777215).
    case vni
    case bridgeInterface = "bridge_interface"
    case dhcpStart = "dhcp_start"
    case floatingRange = "floating_range"
    /// The project a vlan or vxlan network is associated with (VlanManager); empty: unassigned.
    case project
}

/// nova-network's networks: `/networks` (admin only). Every refusal throws a `CloudError`
/// already recorded in `/events`.
public protocol NetworksAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [NetworkInfo]
    func get(_ name: String, _ caller: Caller) -> NetworkInfo?
    /// `mkdir /networks/NAME`: a flatdhcp network on a free /24 and bridge.
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /networks/NAME`: `EBUSY` while it has leases or floating IPs.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// Writes one field; `EINVAL` with the reason when the network would be invalid (bad
    /// CIDR, overlap, gateway outside), `EBUSY` for addressing changes while addresses are held.
    func change(_ name: String, _ field: NetworkField, _ value: String, _ caller: Caller) throws(CloudError)
}

/// nova-network's floating IPs: `/floating-ips`.
public protocol FloatingIPsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [FloatingIPInfo]
    func get(_ address: String, _ caller: Caller) -> FloatingIPInfo?
    /// `mkdir /floating-ips/ADDR`: allocates that address to the caller's project
    /// (`EDQUOT` over quota, `ENOENT` when no pool holds it, `EEXIST` when taken).
    func create(_ address: String, _ caller: Caller) throws(CloudError)
    /// `rmdir /floating-ips/ADDR`: disassociates and releases it.
    func delete(_ address: String, _ caller: Caller) throws(CloudError)
    /// Writes `/floating-ips/ADDR/instance`: associates with that instance, "" disassociates.
    func associate(_ address: String, instance: String, _ caller: Caller) throws(CloudError)
}

/// Nova's security groups: `/security-groups`.
public protocol SecurityGroupsAPI: AnyObject, Sendable {
    func list(_ caller: Caller) -> [SecurityGroupInfo]
    func get(_ name: String, _ caller: Caller) -> SecurityGroupInfo?
    func create(_ name: String, _ caller: Caller) throws(CloudError)
    /// `EBUSY` for `default` and for a group in use.
    func delete(_ name: String, _ caller: Caller) throws(CloudError)
    /// Replaces the rules; `EINVAL` with `line N: reason` for a bad line.
    func setRules(_ name: String, _ rules: String, _ caller: Caller) throws(CloudError)
}
