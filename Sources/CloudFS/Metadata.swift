import CloudCore
import Foundation
import FuseKit

/// What `stat` shows for a node, before it has an inode number.
struct Meta: Sendable {
    var type: FileType
    var permissions: UInt32
    var uid: UInt32 = 0
    var size: Int64 = 0
    var links: UInt32 = 1
    var modified: Double
    var blockSize: UInt32 = 4096
    /// The identity of the object shown (instance or image uuid; "" when none).
    var identity: String = ""

    static func directory(_ time: Double, uid: UInt32 = 0, links: UInt32 = 2, identity: String = "") -> Meta {
        Meta(type: .directory, permissions: 0o755, uid: uid, links: links, modified: time, identity: identity)
    }

    static func file(_ bytes: Int, writable: Bool, time: Double, uid: UInt32 = 0, identity: String = "") -> Meta {
        Meta(type: .regular, permissions: writable ? 0o644 : 0o444, uid: uid, size: Int64(bytes),
             modified: time, identity: identity)
    }

    func attributes(_ inode: Inode) -> FileAttributes {
        FileAttributes(inode: inode, type: type, permissions: permissions, linkCount: links, uid: uid,
                       gid: 0, size: size, blockSize: blockSize, modified: modified)
    }
}

extension CloudFileSystem {
    /// `stat` of `node`, or nil when the object behind it does not exist (ENOENT).
    func meta(of node: Node) -> Meta? {
        let t = mountTime
        switch node {
        case .root: return .directory(t, links: 2 + 11)
        case .readme: return .file(text(api.readme).count, writable: false, time: t)
        case .events: return .file(api.events.size, writable: false, time: t)
        // Collections report 2 links: counting members would list them on every stat.
        case .defaultsDir, .configDir, .imagesDDir, .flavorsDir, .hostsDir, .schedulerDir, .networksDir: return .directory(t)
        case .networkDir, .networkFile, .floatingIPsDir, .floatingIPDir, .floatingIPFile,
             .securityGroupsDir, .securityGroupDir, .securityGroupFile:
            return networkingMeta(of: node)
        // Every user may create server groups for their own instances.
        case .groupsDir:
            var m = Meta.directory(t)
            m.permissions = 0o1777
            return m
        case .groupDir(let name):
            return api.group(name).map { .directory(t, uid: $0.ownerUID) }
        case .groupFile(let name, let f):
            guard let g = api.group(name), let bytes = content(of: node) else { return nil }
            return .file(bytes.count, writable: f == .policy, time: t, uid: g.ownerUID)
        // Every user may create instances and upload images (SPEC "Ownership and access");
        // sticky, like /tmp: under default_permissions only the owner (or root) removes one.
        case .imagesDir, .instancesDir:
            var m = Meta.directory(t)
            m.permissions = 0o1777
            return m
        case .defaultFile(let k): return .file(text(api.defaultValue(k)).count, writable: true, time: t)
        case .configFile(let k): return .file(text(api.configValue(k)).count, writable: true, time: t)
        case .image(let name):
            let upload = uploads.withLock { $0[name] }
            guard let info = api.image(name) else {
                guard let upload else { return nil }
                var m = Meta.file(Int(upload.upload.size), writable: true, time: t)
                m.blockSize = 1 << 20
                return m
            }
            return imageMeta(info, uploadSize: upload?.upload.size)
        case .imageInfoDir(let name):
            return api.image(name).map { .directory(created($0.created), uid: $0.ownerUID, links: 3, identity: $0.id) }
        case .imageInfoFile(let name, let f):
            return api.image(name).map {
                .file(text(imageValue($0, f)).count, writable: false, time: created($0.created), uid: $0.ownerUID, identity: $0.id)
            }
        case .imagePropertiesDir(let name):
            return api.image(name).map { .directory(created($0.created), uid: $0.ownerUID, identity: $0.id) }
        case .imageProperty(let name, let key):
            guard let info = api.image(name) else { return nil }
            if let v = info.properties[key] {
                return .file(text(v).count, writable: true, time: created(info.created), uid: info.ownerUID, identity: info.id)
            }
            let pending = pendingProperties.withLock { $0[node] ?? 0 } > 0
            return pending ? .file(0, writable: true, time: created(info.created), uid: info.ownerUID, identity: info.id) : nil
        case .instanceDir(let name):
            return api.instance(name).map(instanceDirMeta)
        case .instanceFile(let name, let f):
            return api.instance(name).map { instanceFileMeta($0, f) }
        case .flavorDir(let name):
            return api.flavor(name).map { _ in .directory(t) }
        case .flavorFile(let name, let f):
            return api.flavor(name).map { .file(text(flavorValue($0, f)).count, writable: true, time: t) }
        case .hostDir(let name):
            return api.host(name).map { _ in .directory(t) }
        case .hostFile(let name, let f):
            return api.host(name).map {
                var m = Meta.file(hostContent($0, f).count, writable: f.isWritable, time: t)
                if f == .ctl { m.permissions = 0o200 }   // write-only, like Nova's actions
                return m
            }
        case .schedulerFile(let k):
            guard let bytes = content(of: node) else { return nil }
            return .file(bytes.count, writable: k != schedulerLastName, time: t)
        }
    }

    func created(_ d: Date) -> Double { d.timeIntervalSince1970 }

    func imageMeta(_ info: ImageInfo, uploadSize: Int64?) -> Meta {
        var m = Meta.file(Int(max(info.size, uploadSize ?? 0)), writable: true, time: created(info.created),
                          uid: info.ownerUID, identity: info.id)
        m.blockSize = 1 << 20  // cp sizes its buffer from st_blksize: 1 MiB WRITEs
        return m
    }

    func instanceDirMeta(_ info: InstanceInfo) -> Meta {
        .directory(created(info.created), uid: info.ownerUID, identity: info.id)
    }

    func instanceFileMeta(_ info: InstanceInfo, _ f: InstanceField) -> Meta {
        let size: Int
        switch f {
        case .wait: size = 0
        case .console: size = Int(fileSize(info.consolePath))
        default: size = instanceContent(info, f).count
        }
        var m = Meta.file(size, writable: f.isWritable, time: created(info.created), uid: info.ownerUID, identity: info.id)
        if f == .ctl { m.permissions = 0o200 }   // write-only: one action per write
        return m
    }

    /// The entries of directory `node` (without `.` and `..`), nil when it does not exist.
    func children(of node: Node) -> [(String, Node, Meta)]? {
        func fixed(_ names: [String]) -> [(String, Node, Meta)] {
            names.compactMap { n in node.child(n).flatMap { c in meta(of: c).map { (n, c, $0) } } }
        }
        switch node {
        case .root: return fixed(Node.rootNames)
        case .defaultsDir: return fixed(DefaultKey.allCases.map(\.rawValue))
        case .configDir: return fixed(ConfigKey.allCases.map(\.rawValue))
        case .imagesDir:
            let open = uploads.withLock { $0.mapValues { $0.upload.size } }
            return api.images().map { ($0.name, .image($0.name), imageMeta($0, uploadSize: open[$0.name])) }
        case .imagesDDir:
            return api.images().map {
                ($0.name, .imageInfoDir($0.name), .directory(created($0.created), uid: $0.ownerUID, links: 3, identity: $0.id))
            }
        case .imageInfoDir(let name):
            guard api.image(name) != nil else { return nil }
            return fixed(ImageField.allCases.map(\.rawValue) + ["properties"])
        case .imagePropertiesDir(let name):
            guard let info = api.image(name) else { return nil }
            return info.properties.keys.sorted().map { key in
                (key, .imageProperty(name, key),
                 .file(text(info.properties[key]!).count, writable: true, time: created(info.created),
                       uid: info.ownerUID, identity: info.id))
            }
        case .instancesDir:
            return api.instances().map { ($0.name, .instanceDir($0.name), instanceDirMeta($0)) }
        case .instanceDir(let name):
            guard let info = api.instance(name) else { return nil }
            return InstanceField.allCases.map { ($0.rawValue, .instanceFile(name, $0), instanceFileMeta(info, $0)) }
        case .flavorsDir:
            return api.flavors().map { ($0.name, .flavorDir($0.name), .directory(mountTime)) }
        case .flavorDir(let name):
            guard api.flavor(name) != nil else { return nil }
            return fixed(FlavorField.allCases.map(\.rawValue))
        case .hostsDir:
            return api.hosts().map { ($0.name, .hostDir($0.name), .directory(mountTime)) }
        case .hostDir(let name):
            guard api.host(name) != nil else { return nil }
            return fixed(HostField.allCases.map(\.rawValue))
        case .schedulerDir:
            return fixed(api.schedulerKeys + [schedulerLastName])
        case .groupsDir:
            return api.groups().map { ($0.name, .groupDir($0.name), .directory(mountTime, uid: $0.ownerUID)) }
        case .networksDir, .networkDir, .floatingIPsDir, .floatingIPDir, .securityGroupsDir, .securityGroupDir:
            return networkingChildren(of: node)
        case .groupDir(let name):
            guard api.group(name) != nil else { return nil }
            return fixed(GroupField.allCases.map(\.rawValue))
        default:
            return nil
        }
    }

    /// Size of a file outside the tree (the console log), 0 when missing.
    func fileSize(_ path: String) -> Int64 {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0 else { return 0 }
        return Int64(st.st_size)
    }
}
