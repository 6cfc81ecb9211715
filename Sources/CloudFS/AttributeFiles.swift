import CloudCore
import Foundation
import FuseKit

/// Attribute files: one value per file, ending in "\n" (an empty value is an empty file).
/// Writable ones take the whole value in one write at offset 0, applied at write time, so
/// `echo x > file` reports the cloud's refusal as the write's error.
extension CloudFileSystem {
    /// The bytes of a one-value file: `value` plus a newline, or nothing for "".
    func text(_ value: String) -> [UInt8] {
        if value.isEmpty { return [] }
        return value.hasSuffix("\n") ? Array(value.utf8) : Array((value + "\n").utf8)
    }

    /// Lines of a list file (`ip`, `mac`, `instances`): one item per line.
    func lines(_ items: [String]) -> [UInt8] {
        items.isEmpty ? [] : Array((items.joined(separator: "\n") + "\n").utf8)
    }

    /// The content of a synthetic file, nil when the object is gone. `console`, `wait`,
    /// `/events` and image bytes are served elsewhere.
    func content(of node: Node) -> [UInt8]? {
        switch node {
        case .readme: return text(api.readme)
        case .defaultFile(let k): return text(api.defaultValue(k))
        case .configFile(let k): return text(api.configValue(k))
        case .imageInfoFile(let name, let f): return api.image(name).map { text(imageValue($0, f)) }
        case .imageProperty(let name, let key):
            guard let info = api.image(name) else { return nil }
            return text(info.properties[key] ?? "")
        case .instanceFile(let name, let f): return api.instance(name).map { instanceContent($0, f) }
        case .flavorFile(let name, let f): return api.flavor(name).map { text(flavorValue($0, f)) }
        case .hostFile(let name, let f): return api.host(name).map { hostContent($0, f) }
        case .schedulerFile(let k):
            return k == schedulerLastName ? text(api.schedulerLast) : api.schedulerValue(k).map(text)
        case .groupFile(let name, let f):
            return api.group(name).map { f == .policy ? text($0.policy) : lines($0.members) }
        case .networkFile, .floatingIPFile, .securityGroupFile: return networkingContent(of: node)
        default: return nil
        }
    }

    /// A Glance image field as text (file under `/images.d/NAME/` and `user.cloud.*` xattr).
    func imageValue(_ i: ImageInfo, _ f: ImageField) -> String {
        switch f {
        case .id: i.id
        case .status: i.status.rawValue
        case .format: i.format.rawValue
        case .size: String(i.size)
        case .virtualSize: String(i.virtualSize)
        case .checksum: i.checksum
        case .created: Timestamp.string(i.created)
        case .minRam: String(i.minRamMB)
        case .minDisk: String(i.minDiskGB)
        }
    }

    func flavorValue(_ f: Flavor, _ field: FlavorField) -> String {
        switch field {
        case .vcpus: String(f.vcpus)
        case .ramMB: String(f.ramMB)
        case .diskGB: String(f.diskGB)
        }
    }

    func hostContent(_ h: HostInfo, _ f: HostField) -> [UInt8] {
        switch f {
        case .uri: text(h.uri)
        case .state: text(h.state.rawValue)
        case .hypervisorType: text(h.hypervisorType)
        case .vcpus: text(String(h.vcpus))
        case .ramMB: text(String(h.ramMB))
        case .diskGB: text(String(h.diskGB))
        case .vcpusUsed: text(String(h.vcpusUsed))
        case .ramMBUsed: text(String(h.ramMBUsed))
        case .diskGBUsed: text(String(h.diskGBUsed))
        case .instances: lines(h.instances)
        case .availabilityZone: text(h.availabilityZone)
        case .ctl: []
        }
    }

    /// The value written to an attribute file: one trailing newline and surrounding
    /// whitespace removed.
    func value(of data: UnsafeRawBufferPointer) -> String {
        var s = String(decoding: data, as: UTF8.self)
        if s.hasSuffix("\n") { s.removeLast() }
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Applies a write to a writable attribute file through the cloud. Throws the cloud's
    /// refusal (already recorded by the cloud).
    func apply(_ node: Node, value: String, _ r: Request) throws(CloudError) {
        switch node {
        case .configFile(let k):
            try api.setConfig(k, value, caller: r.caller)
        case .defaultFile(let k):
            try api.setDefault(k, value, caller: r.caller)
        case .instanceFile(let name, .ctl):
            try api.instanceAction(name, action: value, caller: r.caller)
        case .instanceFile(let name, .floatingIP):
            try api.setInstanceFloatingIP(name, value: value, caller: r.caller)
        case .instanceFile(let name, let f) where f.isWritable:
            try api.setInstanceField(name, field: f.rawValue, value: value, caller: r.caller)
        case .flavorFile(let name, let f):
            try api.setFlavorField(name, field: f.rawValue, value: value, caller: r.caller)
        case .imageProperty(let name, let key):
            try api.setImageProperty(name, key: key, value: value, caller: r.caller)
        case .hostFile(let name, .ctl):
            try api.hostAction(name, action: value, caller: r.caller)
        case .hostFile(let name, let f) where f.isWritable:
            try api.setHostField(name, field: f.rawValue, value: value, caller: r.caller)
        case .schedulerFile(let k) where k != schedulerLastName:
            try api.setSchedulerValue(k, value, caller: r.caller)
        case .groupFile(let name, .policy):
            try api.setGroupPolicy(name, value, caller: r.caller)
        case .networkFile(let name, let f) where f.isWritable:
            try api.setNetworkField(name, field: f.rawValue, value: value, caller: r.caller)
        case .floatingIPFile(let address, .instance):
            try api.associateFloatingIP(address, instance: value, caller: r.caller)
        case .securityGroupFile(let name, .rules):
            try api.setSecurityGroupRules(name, rules: value, caller: r.caller)
        default:
            throw refuse(.readOnly, "\(node.path) is read-only", node, r)
        }
        switch node {
        case .defaultFile(let k): changed(.defaults, k.rawValue)
        case .configFile(let k): changed(.config, k.rawValue)
        case .instanceFile(let name, _): changed(.instance, name)
        case .flavorFile(let name, _): changed(.flavor, name)
        case .imageProperty(let name, _): changed(.image, name)
        case .hostFile(let name, _): changed(.host, name)
        case .schedulerFile(let k): changed(.scheduler, k)
        case .groupFile(let name, _): changed(.group, name)
        case .networkFile(let name, _): changed(.network, name)
        case .floatingIPFile(let address, _): changed(.floatingIP, address)
        case .securityGroupFile(let name, _): changed(.securityGroup, name)
        default: break
        }
    }

    /// The longest value an attribute file takes. The kernel splits a longer write(2) into
    /// several WRITEs (at max_write or max_pages, never below 128 KiB), so refusing a piece
    /// this long keeps a split write from applying its first piece and failing afterwards.
    static let maxAttributeValue = 64 << 10

    /// WRITE to an attribute file: the whole value at offset 0, in one write; files of
    /// several lines (rules, dns) also take consecutive writes, each applying everything
    /// written so far through this descriptor (bash's printf writes line by line).
    func writeAttribute(_ h: AttributeHandle, offset: Int64, data: UnsafeRawBufferPointer,
                        _ r: Request) throws(CloudError) -> Int {
        guard offset == 0 || h.node.takesSeveralLines, let all = h.accumulate(data, at: offset) else {
            throw refuse(.invalid, "write the whole value at once, at offset 0 (got offset \(offset))", h.node, r)
        }
        guard data.count <= Self.maxAttributeValue, all.count <= Self.maxAttributeValue else {
            throw refuse(.invalid, "a value is at most \(Self.maxAttributeValue) bytes (got \(max(data.count, all.count)))", h.node, r)
        }
        let text = all.withUnsafeBytes { value(of: $0) }
        try apply(h.node, value: text, r)
        h.markWritten()
        if h.created { pendingProperties.withLock { $0[h.node] = nil } }
        return data.count
    }

    /// FLUSH of an attribute file created empty (`touch properties/KEY`): the empty value.
    func flushAttribute(_ h: AttributeHandle, _ r: Request) throws(CloudError) {
        guard h.created || h.truncated, !h.wasWritten else { return }
        try apply(h.node, value: "", r)
        h.markWritten()
        if h.created { pendingProperties.withLock { $0[h.node] = nil } }
    }
}
