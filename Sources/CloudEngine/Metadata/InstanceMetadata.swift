import CloudCore
import CloudStore
import Foundation

/// How a guest's first NIC is addressed, as cloud-init is told (network_data.json):
/// on a managed network its fixed IP on the network's bridge; in user-mode networking the
/// same addresses on QEMU's private user-mode network (whose host side is the gateway).
struct GuestAddressing: Sendable, Equatable {
    var mac: String
    var ip: String
    var prefix: Int
    var netmask: String
    var gateway: String
    var dns: [String]
    var networkName: String
}

/// What Nova tells a guest about itself (nova/api/metadata/base.py's InstanceMetadata):
/// the OpenStack `meta_data.json`, `network_data.json`, `vendor_data.json`, the user data,
/// and the EC2 `meta-data`. The config drive and the metadata service serve the same.
struct InstanceMetadata: Sendable {
    let record: InstanceRecord
    let addressing: GuestAddressing?
    let imageID: String

    /// Nova's hostname from the display name: lower case, `[a-z0-9-]` only, 63 characters.
    var hostname: String {
        var h = ""
        for ch in record.name.lowercased() {
            if ch.isASCII && (ch.isLetter || ch.isNumber) { h.append(ch) } else if !h.hasSuffix("-") { h.append("-") }
        }
        h = String(h.trimmingCharacters(in: CharacterSet(charactersIn: "-")).prefix(63))
        return h.isEmpty ? "instance-" + record.id.prefix(8) : h
    }

    var availabilityZone: String { record.availabilityZone ?? "nova" }

    /// The EC2 instance id Nova derives from its integer id; ours from the uuid.
    var ec2InstanceID: String { "i-" + record.id.filter { $0 != "-" }.prefix(8) }

    var publicKeys: [String: String] {
        guard let name = record.keyName, !record.publicKey.isEmpty else { return [:] }
        return [name: record.publicKey]
    }

    /// `openstack/latest/meta_data.json`.
    func metaData() -> [String: Any] {
        var m: [String: Any] = [
            "uuid": record.id, "name": record.name, "hostname": hostname, "availability_zone": availabilityZone,
            "project_id": record.project, "launch_index": 0, "meta": record.metadataItems,
            "public_keys": publicKeys, "devices": [] as [Any],
            "keys": publicKeys.sorted { $0.key < $1.key }.map { ["name": $0.key, "type": "ssh", "data": $0.value] },
        ]
        if let g = record.groupName { m["server_group"] = g }
        return m
    }

    /// `openstack/latest/network_data.json`: the NIC by MAC, a static IPv4 network with its
    /// default route, and the DNS servers (Nova's netutils.get_network_metadata).
    func networkData() -> [String: Any] {
        guard let a = addressing else { return ["links": [] as [Any], "networks": [] as [Any], "services": [] as [Any]] }
        let link = "tap" + record.id.prefix(11)
        let dns = a.dns.map { ["type": "dns", "address": $0] }
        return [
            "links": [["id": link, "type": "phy", "ethernet_mac_address": a.mac, "mtu": 1500, "vif_id": record.id]],
            "networks": [[
                "id": "network0", "link": link, "type": "ipv4", "network_id": a.networkName,
                "ip_address": a.ip, "netmask": a.netmask,
                "routes": [["network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": a.gateway]],
                "services": dns,
            ]],
            "services": dns,
        ]
    }

    /// `ec2/latest/meta-data.json` (and the EC2 metadata tree's values).
    func ec2MetaData() -> [String: Any] {
        var m: [String: Any] = [
            "instance-id": ec2InstanceID, "hostname": hostname, "local-hostname": hostname,
            "ami-id": "ami-" + imageID.filter { $0 != "-" }.prefix(8),
            "instance-type": record.flavor, "reservation-id": "r-" + record.id.prefix(8),
            "placement": ["availability-zone": availabilityZone], "security-groups": record.securityGroupNames,
            "ami-launch-index": 0,
        ]
        if let a = addressing { m["local-ipv4"] = a.ip; m["mac"] = a.mac }
        if let (name, key) = publicKeys.first { m["public-keys"] = ["0": ["openssh-key": key, "_name": "0=\(name)"]] }
        return m
    }

    var userData: String { record.userData }

    /// The files of an OpenStack ConfigDrive v2, by path.
    func configDriveFiles() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        // Both versions hold the same documents: each is made once.
        let meta = Self.json(metaData()), network = Self.json(networkData()), vendor = Self.json([:])
        for version in ["latest", "2018-08-27"] {
            files["openstack/\(version)/meta_data.json"] = meta
            files["openstack/\(version)/network_data.json"] = network
            files["openstack/\(version)/vendor_data.json"] = vendor
            files["openstack/\(version)/vendor_data2.json"] = vendor
            if !userData.isEmpty { files["openstack/\(version)/user_data"] = Array(userData.utf8) }
        }
        files["ec2/latest/meta-data.json"] = Self.json(ec2MetaData())
        if !userData.isEmpty { files["ec2/latest/user-data"] = Array(userData.utf8) }
        return files
    }

    static func json(_ object: Any) -> [UInt8] { JSONText.compact(object) }
}
