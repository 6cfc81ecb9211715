import CloudCore
import Foundation
import FuseKit

/// The operations that change the cloud's collections: mkdir/rmdir of a member directory,
/// CREATE of an image or a key file, unlink of an image or a key file, and rename of
/// images, each by the collection's descriptor. Names are validated (ObjectName) before
/// the cloud is asked; refusals made here are recorded in `/events`.
extension CloudFileSystem {
    public func mkdir(_ r: Request, parent: Inode, name: String, mode: UInt32) throws(CloudError) -> Entry {
        let ctx = context(r)
        let (dir, _) = try resolve(parent, ctx)
        if case .field(let id, let member, let d) = dir, let c = Collections[id], let kd = c.keyDirectory(d), kd.entryFields != nil {
            return try makeEntry(kd, c, member, name, in: dir, r, ctx)
        }
        guard case .collection(let id) = dir, let c = Collections[id], case .directories(_, let keys) = c.members,
              let create = c.create else {
            throw refuse(.notPermitted, "directories cannot be created in \(dir.path)", dir, r)
        }
        try validate(name, kind: c.noun, in: dir, r)
        try create(WriteContext(api: api, caller: r.caller, path: dir.path + "/" + name), name)
        changed(c.notice, name)
        let node = Node.member(id, name)
        let meta = c.lookup(ctx, name).map { directoryMeta($0, keys: keys.count) } ?? .directory(mountTime, uid: r.caller.uid)
        return entry(node, meta, lookups: 1)
    }

    public func rmdir(_ r: Request, parent: Inode, name: String) throws(CloudError) {
        let (dir, _) = try resolve(parent, context(r))
        if case .field(let id, let member, let d) = dir, let c = Collections[id], let kd = c.keyDirectory(d), kd.entryFields != nil {
            try kd.set(WriteContext(api: api, caller: r.caller, path: dir.path + "/" + name), member, name, nil)
            return changed(c.notice, member)
        }
        guard case .collection(let id) = dir, let c = Collections[id], case .directories = c.members, let remove = c.remove else {
            throw refuse(.notPermitted, "\(child(of: dir, name)?.path ?? name) cannot be removed", dir, r)
        }
        try remove(WriteContext(api: api, caller: r.caller, path: dir.path + "/" + name), name)
        changed(c.notice, name)
    }

    public func create(_ r: Request, parent: Inode, name: String, mode: UInt32,
                       flags: OpenFlags) throws(CloudError) -> (Entry, OpenReply) {
        let ctx = context(r)
        let (dir, _) = try resolve(parent, ctx)
        switch dir {
        case .collection(let id) where Collections[id]?.memberFile(name).map({ if case .imageBytes = $0.style { true } else { false } }) == true:
            return try createImage(name, parent: dir, flags: flags, r)
        case .collection(let id) where id == Collections.instances.id:
            return try createLaunch(name, in: dir, r)
        case .collection(let id) where id == Collections.keypairs.id:
            // A new member file whose content makes the object (`cp key.pub keypairs/me`):
            // pending until the first write applies it.
            let c = Collections[id]!
            try validate(name, kind: c.noun, in: dir, r)
            let node = Node.member(id, name)
            if c.lookup(ctx, name) != nil { throw refuse(.exists, "\(c.noun) \(name) exists", node, r) }
            pendingKeys.withLock { $0[node, default: 0] += 1 }
            let meta = Meta.file(0, .readWrite, time: Date().timeIntervalSince1970, uid: r.caller.uid)
            let h = AttributeHandle(node: node, snapshot: [], created: true)
            return (entry(node, meta, lookups: 1), OpenReply(handle: files.add(.attribute(h)), directIO: true))
        case .field(let id, let member, let d) where Collections[id]?.keyDirectory(d)?.isValues == true:
            let kd = Collections[id]!.keyDirectory(d)!
            let node = Node.key(id, member, d, name)
            guard kd.isKey(name) else {
                throw refuse(.invalid, "invalid property key '\(name.prefix(80))'", node, r)
            }
            guard let m = Collections[id]?.lookup(ctx, member) else { throw CloudError(.noEntry, "no such object") }
            pendingKeys.withLock { $0[node, default: 0] += 1 }
            let meta = Meta.file(0, .readWrite, time: time(m), uid: m.owner, identity: m.identity)
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
        let (dir, _) = try resolve(parent, context(r))
        let w = WriteContext(api: api, caller: r.caller, path: (dir.path == "/" ? "" : dir.path) + "/" + name)
        switch dir {
        case .collection(let id):
            guard let c = Collections[id], case .files = c.members, let remove = c.remove else { break }
            try remove(w, name)
            return changed(c.notice, name)
        case .field(let id, let member, let d):
            guard let c = Collections[id], let kd = c.keyDirectory(d) else { break }
            try kd.set(w, member, name, nil)
            return changed(c.notice, member)
        default: break
        }
        let node = child(of: dir, name) ?? dir
        throw refuse(.notPermitted, "\(node.path) cannot be removed", node, r)
    }

    /// mkdir of an entry of a key directory whose entries are directories
    /// (`mkdir volumes/data/snapshots/s1`).
    private func makeEntry(_ kd: KeyDirectory, _ c: Collection, _ member: String, _ name: String, in dir: Node,
                           _ r: Request, _ ctx: Context) throws(CloudError) -> Entry {
        let node = Node.key(c.id, member, kd.name, name)
        guard kd.isKey(name) else { throw refuse(.invalid, "invalid name '\(name.prefix(80))'", node, r) }
        try kd.set(WriteContext(api: api, caller: r.caller, path: node.path), member, name, "")
        changed(c.notice, member)
        guard let meta = meta(of: node, ctx) else { throw CloudError(.noEntry, "\(node.path) is gone") }
        return entry(node, meta, lookups: 1)
    }

    /// `ln -s TARGET DIR/NAME` in a key directory of links (`ln -s ../../../volumes/data
    /// instances/web1/volumes/`): the cloud names the entry (the device), so the reply is
    /// the entry that now points at the target.
    public func symlink(_ r: Request, target: String, parent: Inode, name: String) throws(CloudError) -> Entry {
        let ctx = context(r)
        let (dir, _) = try resolve(parent, ctx)
        guard case .field(let id, let member, let d) = dir, let c = Collections[id], let kd = c.keyDirectory(d), kd.isLinks else {
            let path = (dir.path == "/" ? "" : dir.path) + "/" + name
            let e = CloudError(.notPermitted, "symbolic links cannot be made in \(dir.path)")
            api.recordRefusal(e, object: path, caller: r.caller)
            throw e
        }
        try kd.set(WriteContext(api: api, caller: r.caller, path: dir.path + "/" + name), member, name, target)
        changed(c.notice, member)
        let wanted = target.split(separator: "/").last.map(String.init) ?? target
        guard let m = c.lookup(ctx, member),
              let key = kd.entries(m.object).first(where: { $0.value.split(separator: "/").last.map(String.init) == wanted })?.key,
              let meta = meta(of: .key(id, member, d, key), ctx) else {
            throw CloudError(.noEntry, "\(dir.path)/\(name) is gone")
        }
        return entry(.key(id, member, d, key), meta, lookups: 1)
    }

    public func readlink(_ r: Request, inode: Inode) throws(CloudError) -> String {
        let ctx = context(r)
        let (node, _) = try resolve(inode, ctx)
        guard case .key(let id, let member, let d, let key) = node, let c = Collections[id], let kd = c.keyDirectory(d), kd.isLinks,
              let m = c.lookup(ctx, member), let target = kd.entries(m.object)[key] else {
            throw CloudError(.invalid, "\(node.path) is not a symbolic link")
        }
        return target
    }

    public func rename(_ r: Request, parent: Inode, name: String, newParent: Inode, newName: String,
                       flags: RenameFlags) throws(CloudError) {
        let ctx = context(r)
        let (from, _) = try resolve(parent, ctx)
        let (to, _) = try resolve(newParent, ctx)
        let node = Node.member(Collections.images.id, name)
        guard from == .collection(Collections.images.id) else {
            throw refuse(.invalid, "only images can be renamed", child(of: from, name) ?? from, r)
        }
        guard to == from else {
            throw refuse(.crossDevice, "images can only be renamed within /images", node, r)
        }
        if flags.exchange { throw refuse(.invalid, "images cannot be exchanged", node, r) }
        if name == newName { return }
        try validate(newName, kind: "image", in: to, r)
        if flags.noReplace, api.images.get(newName, r.caller) != nil {
            throw refuse(.exists, "image \(newName) exists", Node.member(Collections.images.id, newName), r)
        }
        try api.images.rename(name, to: newName, r.caller)
        table.renameMember(in: [Collections.images.id, Collections.imageRecords.id], name, to: newName)
        changed(.image, name)
        changed(.image, newName)
    }
}
