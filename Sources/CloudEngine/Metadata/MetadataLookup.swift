import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// The metadata service's lookup (neutron's metadata agent): a request reached the
/// gateway of one network from one fixed IP; the instance holding that fixed IP on that
/// network is the only one whose data it gets.
extension Engine: MetadataSource {
    public func metadata(client: String, local: String) -> MetadataDocument? {
        guard let clientIP = try? IPv4Address(parsing: client), let localIP = try? IPv4Address(parsing: local) else { return nil }
        let record = core.catalog.withLock { c -> InstanceRecord? in
            guard let net = c.networkSpecs().first(where: { $0.gateway == localIP }) else { return nil }
            guard let id = c.ips.first(where: { _, ips in
                ips.contains { $0.network == net.name && UInt32($0.address) == clientIP.value }
            })?.key, let name = c.instanceNames[id] else { return nil }
            return c.instances[name]
        }
        guard let record else { return nil }
        return Self.document(instanceService.ctx.guests.metadata(record))
    }

    /// What the metadata service answers the guest `meta` describes.
    static func document(_ meta: InstanceMetadata) -> MetadataDocument {
        MetadataDocument(
            openstack: [
                "meta_data.json": InstanceMetadata.json(meta.metaData()),
                "network_data.json": InstanceMetadata.json(meta.networkData()),
                "vendor_data.json": InstanceMetadata.json([:]),
                "vendor_data2.json": InstanceMetadata.json([:]),
            ].merging(meta.userData.isEmpty ? [:] : ["user_data": Array(meta.userData.utf8)]) { a, _ in a },
            ec2: Self.flatten(meta.ec2MetaData()), userData: meta.userData)
    }

    /// The EC2 meta-data tree as leaf paths (`placement/availability-zone`); lists become
    /// one line per item, and a public key's `_name` is its directory's listing name.
    static func flatten(_ object: [String: Any], prefix: String = "") -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in object where k != "_name" {
            let path = prefix + k
            switch v {
            case let d as [String: Any]:
                if k == "public-keys" {
                    // EC2 lists keys as `0=NAME`; their data is under `0/openssh-key`.
                    for (idx, entry) in d {
                        guard let e = entry as? [String: Any] else { continue }
                        for (field, value) in e where field != "_name" { out["\(path)/\(idx)/\(field)"] = "\(value)" }
                    }
                } else {
                    out.merge(flatten(d, prefix: path + "/")) { a, _ in a }
                }
            case let list as [String]: out[path] = list.joined(separator: "\n")
            default: out[path] = "\(v)"
            }
        }
        return out
    }
}
