import CloudCore
import Foundation
import FuseKit

/// What `stat` shows for a node, before it has an inode number.
struct Meta: Sendable {
    var type: FileType
    var permissions: UInt32
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    /// The project of the object shown (its group, and the caller's role there decides the
    /// permission bits); nil for the cloud's own.
    var project: String? = nil
    var size: Int64 = 0
    var links: UInt32 = 1
    var modified: Double
    var blockSize: UInt32 = 4096
    /// The identity of the object shown (instance or image uuid; "" when none).
    var identity: String = ""
    /// The object is being deleted (Member.leaving): its name is never cached.
    var leaving = false

    static func directory(_ time: Double, mode: UInt32 = 0o755, uid: UInt32 = 0, links: UInt32 = 2, identity: String = "",
                          project: String? = nil) -> Meta {
        Meta(type: .directory, permissions: mode, uid: uid, project: project, links: links, modified: time, identity: identity)
    }

    static func file(_ bytes: Int, _ access: FileAccess, time: Double, uid: UInt32 = 0, identity: String = "",
                     project: String? = nil) -> Meta {
        Meta(type: .regular, permissions: access.permissions, uid: uid, project: project, size: Int64(bytes), modified: time,
             identity: identity)
    }

    func attributes(_ inode: Inode) -> FileAttributes {
        FileAttributes(inode: inode, type: type, permissions: permissions, linkCount: links, uid: uid,
                       gid: gid, size: size, blockSize: blockSize, modified: modified)
    }
}

/// `stat` and listings of every node, from the collection descriptors (Collections/).
extension CloudFileSystem {
    /// `stat` of `node` as the caller sees it, or nil when the object behind it does not
    /// exist (ENOENT).
    func meta(of node: Node, _ ctx: Context) -> Meta? {
        storedMeta(of: node, ctx).map { presented($0, node, ctx) }
    }

    /// `stat` of `node` with the owner's permission bits.
    private func storedMeta(of node: Node, _ ctx: Context) -> Meta? {
        let t = mountTime
        switch node {
        case .root: return .directory(t, links: 2 + UInt32(Collections.all.count))
        case .readme: return .file(Text.value(ctx.api.readme).count, .readOnly, time: t)
        case .events: return .file(ctx.api.events(for: ctx.caller).size, .readOnly, time: t)
        case .collection(let id): return Collections[id].map { .directory(t, mode: $0.mode) }
        case .member(let id, let name):
            guard let c = Collections[id] else { return nil }
            switch c.members {
            case .directories(_, let keys):
                return c.lookup(ctx, name).map { directoryMeta($0, keys: keys.count) }
            case .files(let file):
                guard let f = file(name) else { return nil }
                if case .imageBytes = f.style { return imageFileMeta(name, ctx) }
                if let m = c.lookup(ctx, name) { return fileMeta(f, m, ctx) }
                // Made by CREATE, its content not written yet (`cp key.pub keypairs/me`).
                guard pendingKeys.withLock({ $0[node] ?? 0 }) > 0 else { return nil }
                return .file(0, .readWrite, time: mountTime, uid: ctx.caller.uid)
            }
        case .field(let id, let name, let file):
            guard let c = Collections[id], let m = c.lookup(ctx, name) else { return nil }
            if c.keyDirectory(file) != nil { return directoryMeta(m, keys: 0) }
            return c.field(file, member: name).map { fileMeta($0, m, ctx) }
        case .key(let id, let name, let dir, let key):
            guard let c = Collections[id], let kd = c.keyDirectory(dir), let m = c.lookup(ctx, name) else { return nil }
            if let v = kd.entries(m.object)[key] { return keyMeta(kd, v, m) }
            let pending = kd.isValues && pendingKeys.withLock { $0[node] ?? 0 } > 0
            return pending ? keyMeta(kd, "", m) : nil
        case .entryField:
            return field(of: node, ctx).map { f, m in fileMeta(f, m, ctx) }
        case .launch(let name):
            guard let h = launches.withLock({ $0[name] }) else { return nil }
            return .file(h.size, .readWrite, time: h.created, uid: h.owner)
        }
    }

    func time(_ m: Member) -> Double { m.created ?? mountTime }

    func directoryMeta(_ m: Member, keys: Int) -> Meta {
        var d = Meta.directory(time(m), uid: m.owner, links: 2 + UInt32(keys), identity: m.identity, project: m.project)
        d.leaving = m.leaving
        return d
    }

    /// An entry of a key directory with value `value`: a file, a link to it, or a directory.
    func keyMeta(_ kd: KeyDirectory, _ value: String, _ m: Member) -> Meta {
        switch kd.kind {
        case .values:
            return .file(Text.value(value).count, kd.access, time: time(m), uid: m.owner, identity: m.identity, project: m.project)
        case .links:
            return Meta(type: .symlink, permissions: 0o777, uid: m.owner, project: m.project, size: Int64(value.utf8.count),
                        modified: time(m), identity: m.identity)
        case .directories:
            return .directory(time(m), uid: m.owner, identity: m.identity, project: m.project)
        }
    }

    func fileMeta(_ f: Field, _ m: Member, _ ctx: Context) -> Meta {
        let size: Int
        switch f.style {
        case .wait, .console: size = 0
        case .log(let path): size = Int(fileSize(path(m.object)))
        case .value, .imageBytes: size = f.read(m.object, ctx).count
        }
        return .file(size, f.access, time: time(m), uid: m.owner, identity: m.identity, project: m.project)
    }

    /// What `stat` shows this caller (SPEC "Ownership and access"): the group is the
    /// project's gid, and the permission bits are what the caller may do, so the kernel's
    /// own checks (`default_permissions`) agree with the cloud's. uid 0 sees the owner's
    /// bits. Others: writable where their role allows (member of the object's project, or
    /// an admin; a user's own `/users` entry), read-only elsewhere; collections they may
    /// create in are 0777, admin-only ones (hosts, scheduler, config) 0700.
    func presented(_ stored: Meta, _ node: Node, _ ctx: Context) -> Meta {
        var m = stored
        if let p = m.project { m.gid = ctx.api.projectGID(p) ?? 0 }
        guard ctx.caller.uid != 0 else { return m }
        let who = ctx.identity
        switch node {
        case .root:
            m.permissions = 0o555
        case .readme, .events:
            m.permissions = 0o444
        case .collection(let id):
            if Collections.adminOnly.contains(id) && !who.isAdmin {
                m.permissions = 0o700
            } else if who.isAdmin || (m.permissions == 0o1777 && who.roles.values.contains { $0 >= .member }) {
                m.permissions = 0o777
            } else {
                m.permissions = 0o555
            }
        default:
            let role = m.project.flatMap { who.roles[$0] }
            let write = who.isAdmin || (role.map { $0 >= .member } ?? false) || (m.project == nil && m.uid == ctx.caller.uid && m.uid != 0)
            if m.type == .directory {
                let keyDirectory = if case .field = node { true } else { false }
                m.permissions = write && keyDirectory ? 0o777 : 0o555
            } else {
                let readable = m.permissions & 0o444 != 0
                let writable = m.permissions & 0o222 != 0 && write
                m.permissions = (readable ? 0o444 : 0) | (writable ? 0o222 : 0)
            }
        }
        return m
    }

    /// The entries of directory `node` (without `.` and `..`) as the caller sees them, nil
    /// when it does not exist.
    func children(of node: Node, _ ctx: Context) -> [(String, Node, Meta)]? {
        storedChildren(of: node, ctx)?.map { ($0.0, $0.1, presented($0.2, $0.1, ctx)) }
    }

    private func storedChildren(of node: Node, _ ctx: Context) -> [(String, Node, Meta)]? {
        switch node {
        case .root:
            // A caller the cloud does not know sees only what the cloud is.
            let top: [(String, Node)] = ctx.identity.isRegistered ? [("README", .readme), ("events", .events)] : [("README", .readme)]
            let files = top.compactMap { name, n in storedMeta(of: n, ctx).map { (name, n, $0) } }
            guard ctx.identity.isRegistered else { return files }
            return files + Collections.all.map { ($0.id.rawValue, .collection($0.id), .directory(mountTime, mode: $0.mode)) }
        case .collection(let id):
            guard let c = Collections[id] else { return nil }
            switch c.members {
            case .directories(_, let keys):
                return (c.entries ?? c.list)(ctx).map { ($0.name, .member(id, $0.name), directoryMeta($0, keys: keys.count)) }
            case .files(let file):
                let open = uploads.withLock { $0.mapValues { $0.upload.size } }
                return c.list(ctx).compactMap { m in
                    guard let f = file(m.name) else { return nil }
                    if case .imageBytes = f.style, let info = m.object as? ImageInfo {
                        return (m.name, .member(id, m.name), imageMeta(info, uploadSize: open[m.name]))
                    }
                    return (m.name, .member(id, m.name), fileMeta(f, m, ctx))
                }
            }
        case .member(let id, let name):
            guard let c = Collections[id], case .directories(let fields, let keys) = c.members,
                  let m = c.lookup(ctx, name) else { return nil }
            return fields.map { ($0.name, .field(id, name, $0.name), fileMeta($0, m, ctx)) }
                + keys.map { ($0.name, .field(id, name, $0.name), directoryMeta(m, keys: 0)) }
        case .field(let id, let name, let dir):
            guard let c = Collections[id], let kd = c.keyDirectory(dir), let m = c.lookup(ctx, name) else { return nil }
            return kd.entries(m.object).sorted { $0.key < $1.key }.map { key, value in
                (key, .key(id, name, dir, key), keyMeta(kd, value, m))
            }
        case .key(let id, let name, let dir, let key):
            guard let c = Collections[id], let kd = c.keyDirectory(dir), case .directories(let fields, let entry) = kd.kind,
                  let m = c.lookup(ctx, name), let obj = entry(m.object, key) else { return nil }
            var sub = m
            sub.object = obj
            return fields.map { ($0.name, .entryField(id, name, dir, key, $0.name), fileMeta($0, sub, ctx)) }
        default:
            return nil
        }
    }

    /// The node called `name` under `node`, when such a child can exist there (its object
    /// is checked separately).
    func child(of node: Node, _ name: String) -> Node? {
        switch node {
        case .root:
            if name == "README" { return .readme }
            if name == "events" { return .events }
            return Collections[CollectionID(name)].map { .collection($0.id) }
        case .collection(let id):
            guard let c = Collections[id], c.fixedMembers || ObjectName.problem(name) == nil else { return nil }
            return .member(id, name)
        case .member(let id, let m):
            guard let c = Collections[id], case .directories(let fields, let keys) = c.members,
                  fields.contains(where: { $0.name == name }) || keys.contains(where: { $0.name == name }) else { return nil }
            return .field(id, m, name)
        case .field(let id, let m, let dir):
            guard let kd = Collections[id]?.keyDirectory(dir), kd.isKey(name) else { return nil }
            return .key(id, m, dir, name)
        case .key(let id, let m, let dir, let key):
            guard let fields = Collections[id]?.keyDirectory(dir)?.entryFields, fields.contains(where: { $0.name == name }) else { return nil }
            return .entryField(id, m, dir, key, name)
        default: return nil
        }
    }

    /// True for directories whose children are a fixed set of names: a missing name there
    /// can never appear, so the kernel may cache the miss (negative entry).
    func hasFixedChildren(_ node: Node) -> Bool {
        switch node {
        case .root, .member: true
        case .collection(let id): Collections[id]?.fixedMembers ?? false
        default: false
        }
    }

    /// The field a file node shows, with its member (nil for directories, README, events).
    func field(of node: Node, _ ctx: Context) -> (Field, Member)? {
        switch node {
        case .member(let id, let name):
            guard let c = Collections[id], let f = c.memberFile(name), let m = c.lookup(ctx, name) else { return nil }
            return (f, m)
        case .field(let id, let name, let file):
            guard let c = Collections[id], let f = c.field(file, member: name), let m = c.lookup(ctx, name) else { return nil }
            return (f, m)
        case .entryField(let id, let name, let dir, let key, let file):
            guard let c = Collections[id], let kd = c.keyDirectory(dir), case .directories(let fields, let entry) = kd.kind,
                  let f = fields.first(where: { $0.name == file }), var m = c.lookup(ctx, name),
                  let obj = entry(m.object, key) else { return nil }
            m.object = obj
            return (f, m)
        default: return nil
        }
    }

    /// Size of a file outside the tree (the console log), 0 when missing.
    func fileSize(_ path: String) -> Int64 {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0 else { return 0 }
        return Int64(st.st_size)
    }
}
