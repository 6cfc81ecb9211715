import CloudCore
import Foundation

/// The nova-network part of the tree: `/networks/NAME/`, `/floating-ips/ADDR/` and
/// `/security-groups/NAME/`, as snapshots of `NetworkInfo`, `FloatingIPInfo` and
/// `SecurityGroupInfo`. Only the admin changes networks (the cloud enforces it); every user
/// allocates floating IPs and makes security groups (sticky directories, like /tmp).
extension CloudFileSystem {
    func networkingMeta(of node: Node) -> Meta? {
        let t = mountTime
        switch node {
        case .floatingIPsDir, .securityGroupsDir:
            var m = Meta.directory(t)
            m.permissions = 0o1777
            return m
        case .networkDir(let n): return api.network(n).map { _ in .directory(t) }
        case .floatingIPDir(let a): return api.floatingIP(a).map { .directory(t, uid: $0.ownerUID) }
        case .securityGroupDir(let g): return api.securityGroup(g).map { .directory(t, uid: $0.ownerUID) }
        case .networkFile(_, let f):
            return networkingContent(of: node).map { .file($0.count, writable: f.isWritable, time: t) }
        case .floatingIPFile(let a, let f):
            guard let ip = api.floatingIP(a), let bytes = networkingContent(of: node) else { return nil }
            return .file(bytes.count, writable: f == .instance, time: t, uid: ip.ownerUID)
        case .securityGroupFile(let g, _):
            guard let sg = api.securityGroup(g), let bytes = networkingContent(of: node) else { return nil }
            return .file(bytes.count, writable: true, time: t, uid: sg.ownerUID)
        default: return nil
        }
    }

    func networkingChildren(of node: Node) -> [(String, Node, Meta)]? {
        func fixed(_ names: [String]) -> [(String, Node, Meta)] {
            names.compactMap { n in node.child(n).flatMap { c in meta(of: c).map { (n, c, $0) } } }
        }
        switch node {
        case .networksDir:
            return api.networks().map { ($0.name, .networkDir($0.name), .directory(mountTime)) }
        case .floatingIPsDir:
            return api.floatingIPs().map { ($0.address, .floatingIPDir($0.address), .directory(mountTime, uid: $0.ownerUID)) }
        case .securityGroupsDir:
            return api.securityGroups().map { ($0.name, .securityGroupDir($0.name), .directory(mountTime, uid: $0.ownerUID)) }
        case .networkDir(let n):
            guard api.network(n) != nil else { return nil }
            return fixed(NetworkFile.allCases.map(\.rawValue))
        case .floatingIPDir(let a):
            guard api.floatingIP(a) != nil else { return nil }
            return fixed(FloatingIPFile.allCases.map(\.rawValue))
        case .securityGroupDir(let g):
            guard api.securityGroup(g) != nil else { return nil }
            return fixed(SecurityGroupFile.allCases.map(\.rawValue))
        default: return nil
        }
    }

    func networkingContent(of node: Node) -> [UInt8]? {
        switch node {
        case .networkFile(let n, let f):
            guard let info = api.network(n) else { return nil }
            switch f {
            case .leases: return lines(info.leases)
            case .free: return text(String(info.free))
            default: return Array((info.fields[f.rawValue] ?? "").utf8)
            }
        case .floatingIPFile(let a, let f):
            guard let ip = api.floatingIP(a) else { return nil }
            switch f {
            case .pool: return text(ip.pool)
            case .instance: return text(ip.instance)
            case .project: return text(ip.project)
            }
        case .securityGroupFile(let g, .rules):
            return api.securityGroup(g).map { Array($0.rules.utf8) }
        default: return nil
        }
    }
}
