/// A nova-network network as the tree shows it (`/networks/NAME/`).
public struct NetworkInfo: Sendable, Equatable {
    public var name: String
    /// The text of each field file (`mode`, `cidr`, `gateway`, `dns`, `bridge`,
    /// `bridge_interface`, `vlan`, `dhcp_start`, `floating_range`, `project`), newline-terminated or empty.
    public var fields: [String: String]
    /// `IP MAC instance` per fixed IP held, sorted by address.
    public var leases: [String]
    /// Free allocatable fixed IPs.
    public var free: Int
    public init(name: String, fields: [String: String], leases: [String], free: Int) {
        self.name = name; self.fields = fields; self.leases = leases; self.free = free
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
    public init(name: String, rules: String, ownerUID: UInt32) { self.name = name; self.rules = rules; self.ownerUID = ownerUID }
}

/// The network manager's part of `CloudAPI` (nova-network: networks, floating IPs,
/// security groups). Every refusal throws a `CloudError` already recorded in `/events`.
public protocol NetworkAPI: AnyObject, Sendable {
    func networks() -> [NetworkInfo]
    func network(_ name: String) -> NetworkInfo?
    /// `mkdir /networks/NAME` (admin only): a flatdhcp network on a free /24 and bridge.
    func createNetwork(_ name: String, caller: Caller) throws(CloudError)
    /// `rmdir /networks/NAME` (admin only): `EBUSY` while it has leases or floating IPs.
    func deleteNetwork(_ name: String, caller: Caller) throws(CloudError)
    /// Writes one field (admin only); `EINVAL` with the reason when the network would be
    /// invalid (bad CIDR, overlap, gateway outside), `EBUSY` for addressing changes while
    /// addresses are held.
    func setNetworkField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError)

    func floatingIPs() -> [FloatingIPInfo]
    func floatingIP(_ address: String) -> FloatingIPInfo?
    /// `mkdir /floating-ips/ADDR`: allocates that address to the caller's project
    /// (`EDQUOT` over quota, `ENOENT` when no pool holds it, `EEXIST` when taken).
    func createFloatingIP(_ address: String, caller: Caller) throws(CloudError)
    /// `rmdir /floating-ips/ADDR`: disassociates and releases it.
    func deleteFloatingIP(_ address: String, caller: Caller) throws(CloudError)
    /// Writes `/floating-ips/ADDR/instance`: associates with that instance, "" disassociates.
    func associateFloatingIP(_ address: String, instance: String, caller: Caller) throws(CloudError)
    /// Writes `/instances/NAME/floating_ip`: `auto`, an address, or "" to disassociate.
    func setInstanceFloatingIP(_ name: String, value: String, caller: Caller) throws(CloudError)

    func securityGroups() -> [SecurityGroupInfo]
    func securityGroup(_ name: String) -> SecurityGroupInfo?
    func createSecurityGroup(_ name: String, caller: Caller) throws(CloudError)
    /// `EBUSY` for `default`.
    func deleteSecurityGroup(_ name: String, caller: Caller) throws(CloudError)
    /// Replaces the rules; `EINVAL` with `line N: reason` for a bad line.
    func setSecurityGroupRules(_ name: String, rules: String, caller: Caller) throws(CloudError)
}
