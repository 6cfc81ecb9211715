import CloudCore
import FuseKit

/// The operations that change the cloud: mkdir/rmdir of instances and flavors, CREATE of
/// images and image properties, unlink, and rename of images. Names are validated
/// (ObjectName) before the cloud is asked; refusals made here are recorded in `/events`.
extension CloudFileSystem {
    public func mkdir(_ r: Request, parent: Inode, name: String, mode: UInt32) throws(CloudError) -> Entry {
        let (dir, _) = try resolve(parent)
        switch dir {
        case .instancesDir:
            try validate(name, kind: "instance", in: dir, r)
            let info = try api.createInstance(name, caller: r.caller)
            changed(.instance, name)
            return entry(.instanceDir(name), instanceDirMeta(info), lookups: 1)
        case .flavorsDir:
            try validate(name, kind: "flavor", in: dir, r)
            try api.createFlavor(name, caller: r.caller)
            changed(.flavor, name)
            return entry(.flavorDir(name), .directory(mountTime), lookups: 1)
        case .groupsDir:
            try validate(name, kind: "group", in: dir, r)
            try api.createGroup(name, caller: r.caller)
            changed(.group, name)
            return entry(.groupDir(name), .directory(mountTime, uid: r.caller.uid), lookups: 1)
        case .hostsDir:
            try validate(name, kind: "host", in: dir, r)
            try api.createHost(name, caller: r.caller)
            changed(.host, name)
            return entry(.hostDir(name), .directory(mountTime), lookups: 1)
        case .networksDir:
            try validate(name, kind: "network", in: dir, r)
            try api.createNetwork(name, caller: r.caller)
            changed(.network, name)
            return entry(.networkDir(name), .directory(mountTime), lookups: 1)
        case .floatingIPsDir:
            try validate(name, kind: "floating IP", in: dir, r)
            try api.createFloatingIP(name, caller: r.caller)
            changed(.floatingIP, name)
            return entry(.floatingIPDir(name), .directory(mountTime, uid: r.caller.uid), lookups: 1)
        case .securityGroupsDir:
            try validate(name, kind: "security group", in: dir, r)
            try api.createSecurityGroup(name, caller: r.caller)
            changed(.securityGroup, name)
            return entry(.securityGroupDir(name), .directory(mountTime, uid: r.caller.uid), lookups: 1)
        default:
            throw refuse(.notPermitted, "directories cannot be created in \(dir.path)", dir, r)
        }
    }

    public func rmdir(_ r: Request, parent: Inode, name: String) throws(CloudError) {
        let (dir, _) = try resolve(parent)
        switch dir {
        case .instancesDir:
            // Accepted in every state; the directory stays (DELETING) until the engine is done.
            try api.deleteInstance(name, caller: r.caller)
            changed(.instance, name)
        case .flavorsDir:
            try api.deleteFlavor(name, caller: r.caller)
            changed(.flavor, name)
        case .hostsDir:
            try api.deleteHost(name, caller: r.caller)
            changed(.host, name)
        case .groupsDir:
            try api.deleteGroup(name, caller: r.caller)
            changed(.group, name)
        case .networksDir:
            try api.deleteNetwork(name, caller: r.caller)
            changed(.network, name)
        case .floatingIPsDir:
            try api.deleteFloatingIP(name, caller: r.caller)
            changed(.floatingIP, name)
        case .securityGroupsDir:
            try api.deleteSecurityGroup(name, caller: r.caller)
            changed(.securityGroup, name)
        default:
            throw refuse(.notPermitted, "\(dir.child(name)?.path ?? name) cannot be removed", dir, r)
        }
    }

    public func create(_ r: Request, parent: Inode, name: String, mode: UInt32,
                       flags: OpenFlags) throws(CloudError) -> (Entry, OpenReply) {
        let (dir, _) = try resolve(parent)
        switch dir {
        case .imagesDir:
            return try createImage(name, parent: dir, flags: flags, r)
        case .imagePropertiesDir(let image):
            let node = Node.imageProperty(image, name)
            guard Node.isPropertyKey(name) else {
                throw refuse(.invalid, "invalid property key '\(name.prefix(80))'", node, r)
            }
            guard let info = api.image(image) else { throw CloudError(.noEntry, "no such image") }
            pendingProperties.withLock { $0[node, default: 0] += 1 }
            let meta = Meta.file(0, writable: true, time: created(info.created), uid: info.ownerUID, identity: info.id)
            let h = AttributeHandle(node: node, snapshot: [], created: true)
            return (entry(node, meta, lookups: 1), OpenReply(handle: files.add(.attribute(h)), directIO: true))
        default:
            let path = (dir.path == "/" ? "" : dir.path) + "/" + name
            let e = CloudError(.notPermitted, "files cannot be created in \(dir.path)")
            api.recordRefusal(e, object: path, caller: r.caller)
            throw e
        }
    }

    public func unlink(_ r: Request, parent: Inode, name: String) throws(CloudError) {
        let (dir, _) = try resolve(parent)
        switch dir {
        case .imagesDir:
            try api.deleteImage(name, caller: r.caller)
            changed(.image, name)
        case .imagePropertiesDir(let image):
            try api.setImageProperty(image, key: name, value: nil, caller: r.caller)
            changed(.image, image)
        default:
            let node = dir.child(name) ?? dir
            throw refuse(.notPermitted, "\(node.path) cannot be removed", node, r)
        }
    }

    public func rename(_ r: Request, parent: Inode, name: String, newParent: Inode, newName: String,
                       flags: RenameFlags) throws(CloudError) {
        let (from, _) = try resolve(parent)
        let (to, _) = try resolve(newParent)
        guard case .imagesDir = from else {
            throw refuse(.invalid, "only images can be renamed", from.child(name) ?? from, r)
        }
        let node = Node.image(name)
        guard case .imagesDir = to else {
            throw refuse(.crossDevice, "images can only be renamed within /images", node, r)
        }
        if flags.exchange { throw refuse(.invalid, "images cannot be exchanged", node, r) }
        if name == newName { return }
        try validate(newName, kind: "image", in: to, r)
        if flags.noReplace, api.image(newName) != nil {
            throw refuse(.exists, "image \(newName) exists", Node.image(newName), r)
        }
        try api.renameImage(name, to: newName, caller: r.caller)
        table.renameImage(name, to: newName)
        changed(.image, name)
        changed(.image, newName)
    }
}
