/// What the metadata service answers one guest (Nova's metadata API, as neutron's
/// metadata agent proxies it): the OpenStack files by name and the EC2 meta-data tree.
public struct MetadataDocument: Codable, Sendable, Equatable {
    /// `openstack/latest/NAME`: meta_data.json, network_data.json, vendor_data.json,
    /// vendor_data2.json, and user_data when there is some.
    public var openstack: [String: [UInt8]]
    /// The EC2 `meta-data/` tree, one entry per leaf path (`placement/availability-zone`).
    public var ec2: [String: String]
    public var userData: String
    public init(openstack: [String: [UInt8]], ec2: [String: String], userData: String) {
        self.openstack = openstack; self.ec2 = ec2; self.userData = userData
    }
}

/// Finds the guest a metadata request came from: by its fixed IP (`client`) on the network
/// whose gateway it reached (`local`, after the host's DNAT of 169.254.169.254), as
/// neutron tells instances apart by fixed IP and network. Nil: nothing of the cloud.
public protocol MetadataSource: AnyObject, Sendable {
    func metadata(client: String, local: String) -> MetadataDocument?
}
