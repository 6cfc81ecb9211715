import CloudCore
import Foundation
import FuseKit
import Synchronization

/// The cloud as a mounted tree (SPEC "The tree"): a `FuseHandler` that answers every FUSE
/// request from `CloudAPI` alone (it never touches the store or libvirt).
///
/// ```swift
/// let fs = CloudFileSystem(api: engine)
/// try fs.start(mountpoint: "/cloud", mountOptions: .init(allowOther: true))
/// Thread { try? fs.run() }.start()     // or run() on the main thread
/// ...
/// fs.stop()                            // from any thread (e.g. on SIGTERM)
/// ```
/// Kernel caches are used (entry and attribute timeouts, stable inode numbers) and kept
/// honest by invalidating from the cloud's change notices on a dedicated serial queue.
public final class CloudFileSystem: FuseHandler {
    /// Cache settings of the tree.
    public struct Options: Sendable {
        /// How long the kernel may trust a name (FUSE entry timeout), in seconds. Every
        /// change notice invalidates the names it concerns (Invalidator), so this is only
        /// the backstop: long enough that a scan of 10,000 instances finds its names
        /// still cached from the last one (no LOOKUP per file).
        public var entryTimeout: Double
        /// How long the kernel may trust attributes (FUSE attribute timeout), in seconds:
        /// a backstop too, as change notices invalidate attributes. `/events` and
        /// `console` always use 0: they grow without notice.
        public var attributeTimeout: Double
        /// The attribute timeout of files that count objects of other collections (a
        /// host's `instances` and `*_used`, a project's `usage/`): a build or a delete
        /// announces the instance, not its host or project, so only this short timeout
        /// bounds how long `stat` may show their old size (a read is always current:
        /// every OPEN checks the value).
        public var countedAttributeTimeout: Double
        /// Let the kernel keep value files in its page cache (PageCacheLedger): a warm
        /// `cat` is one OPEN. Off where a value may depend on who reads it.
        public var cachePages: Bool
        public init(entryTimeout: Double = 60, attributeTimeout: Double = 60, countedAttributeTimeout: Double = 1,
                    cachePages: Bool = true) {
            self.entryTimeout = entryTimeout
            self.attributeTimeout = attributeTimeout
            self.countedAttributeTimeout = min(countedAttributeTimeout, attributeTimeout)
            self.cachePages = cachePages
        }

        /// A tree several users reach (`allow_other`): what `stat` shows depends on the
        /// caller (permission bits, visibility), so the kernel may cache neither names nor
        /// attributes across requests: a dentry or mode cached for one user must never
        /// answer for another (with `default_permissions` the kernel then asks us, with
        /// the caller's credentials, before every permission check).
        public static let sharedByUsers = Options(entryTimeout: 0, attributeTimeout: 0, countedAttributeTimeout: 0,
                                                  cachePages: false)
    }

    let api: any CloudAPI
    let options: Options
    let table = NodeTable()
    let files = OpenFiles()
    /// Uploads open for writing, by image name (their size is the image file's size).
    let uploads = Mutex<[String: UploadState]>([:])
    /// Key files (image properties) created by O_CREAT but not yet written: node -> open count.
    let pendingKeys = Mutex<[Node: Int]>([:])
    /// Launch files being written into `/instances`, by name (LaunchFiles.swift).
    let launches = Mutex<[String: LaunchHandle]>([:])
    /// Open serial consoles, by instance, with how many open files share each (ConsoleFiles.swift).
    let consoles = Mutex<[String: (stream: any ConsoleStream, opens: Int)]>([:])
    /// When the tree was made: the times of nodes that have none of their own.
    let mountTime = Date().timeIntervalSince1970
    private let sessionBox = Mutex<FuseSession?>(nil)
    let invalidator = Invalidator()
    /// What the kernel's page cache may hold of each value file (PageCache.swift).
    let pages = PageCacheLedger()

    /// Creates the tree over `api` and subscribes to its change notices.
    public init(api: any CloudAPI, options: Options = Options()) {
        self.api = api
        self.options = options
        invalidator.apply = { [weak self] notice in self?.invalidate(for: notice) }
        api.subscribe { [weak self] notice in self?.invalidator.enqueue(notice) }
    }

    /// The session the tree is mounted with (set by `start` or `attach`).
    public var session: FuseSession? { sessionBox.withLock { $0 } }

    /// Uses a session made elsewhere for invalidations (when the caller builds the
    /// `FuseSession` with this object as its handler instead of calling `start`).
    public func attach(_ session: FuseSession) { sessionBox.withLock { $0 = session } }

    /// Creates a `FuseSession` for the tree and mounts it on `mountpoint`. Throws the
    /// mount's `CloudError` (e.g. `ENOENT` for a missing directory, `EPERM`).
    public func start(mountpoint: String, mountOptions: FuseSession.Options = .init()) throws(CloudError) {
        let s = FuseSession(mountpoint: mountpoint, options: mountOptions, handler: self)
        try s.mount()
        attach(s)
    }

    /// Serves requests until `stop()` or an external unmount (blocks; libfuse's
    /// multi-threaded loop), then releases the session.
    public func run() throws(CloudError) {
        guard let s = session else { throw CloudError(.invalid, "not mounted: call start(mountpoint:) first") }
        defer { sessionBox.withLock { $0 = nil } }
        try s.run()
    }

    /// Ends `run()` and unmounts. Safe from any thread; returns at once.
    public func stop() { session?.exit() }

    // MARK: helpers shared by the operation files

    /// The context of a FUSE request: the cloud and the caller the kernel named.
    func context(_ r: Request) -> Context { Context(api: api, caller: r.caller) }

    /// The context of work no caller asked for (invalidation, FORGET): the cloud's own view.
    var systemContext: Context { Context(api: api, caller: .system) }

    /// The kernel's attribute cache time for `node`: files that grow (`/events`, a
    /// console log) are never cached; files counting other collections' objects briefly.
    func attrTimeout(_ node: Node) -> Double {
        switch node {
        case .events, .launch: return 0
        case .field(let id, let m, let f):
            guard let field = Collections[id]?.field(f, member: m) else { return options.attributeTimeout }
            if field.isVolatile { return 0 }
            return field.countsOthers ? options.countedAttributeTimeout : options.attributeTimeout
        case .key(let id, _, let d, _):
            return Collections[id]?.keyDirectory(d)?.countsOthers == true ? options.countedAttributeTimeout : options.attributeTimeout
        default: return options.attributeTimeout
        }
    }

    /// Records a refusal made by the tree itself in `/events` and returns it to throw.
    func refuse(_ errno: Errno, _ reason: String, _ node: Node, _ r: Request) -> CloudError {
        let e = CloudError(errno, reason)
        api.recordRefusal(e, object: node.path, caller: r.caller)
        return e
    }

    /// Validates a name for a create (ObjectName rules), recording the refusal.
    func validate(_ name: String, kind: String, in parent: Node, _ r: Request) throws(CloudError) {
        if let p = ObjectName.problem(name) {
            let path = (parent.path == "/" ? "" : parent.path) + "/" + name
            let e = CloudError(.invalid, "invalid \(kind) name '\(name.prefix(80))': \(p)")
            api.recordRefusal(e, object: path, caller: r.caller)
            throw e
        }
    }

    /// `EACCES` for a caller the cloud does not know, anywhere but the root and /README.
    func admit(_ node: Node, _ ctx: Context) throws(CloudError) {
        switch node {
        case .root, .readme: return
        default:
            guard ctx.identity.isRegistered else {
                throw CloudError(.accessDenied, "uid \(ctx.caller.uid) is not a user of this cloud (an admin registers it with mkdir /users/NAME)")
            }
        }
    }

    /// The node behind `inode`, checked against the object it showed when it was looked up.
    func resolve(_ inode: Inode, _ ctx: Context) throws(CloudError) -> (Node, Meta) {
        if let slot = table.slot(inode) { try admit(slot.node, ctx) }
        guard let slot = table.slot(inode), let meta = meta(of: slot.node, ctx), slot.shows(meta.identity)
        else { throw CloudError(.noEntry, "no such object (stale inode)") }
        return (slot.node, meta)
    }

    /// The FUSE entry for `node`, counting `lookups` kernel references.
    func entry(_ node: Node, _ meta: Meta, lookups: UInt64) -> Entry {
        let ino = table.inode(for: node, identity: meta.identity, lookups: lookups)
        return Entry(attributes: attributes(meta, ino), attributeTimeout: attrTimeout(node),
                     entryTimeout: entryTimeout(node, meta))
    }

    /// How long the kernel may trust the name of `node`: not at all for a launch file (its
    /// name becomes the instance's directory when it is closed) or an object being deleted
    /// (its name goes with the commit that removes it, before any invalidation lands).
    func entryTimeout(_ node: Node, _ meta: Meta) -> Double {
        if meta.leaving { return 0 }
        if case .launch = node { return 0 }
        return options.entryTimeout
    }

    /// Invalidates the kernel's view of `notice`'s object soon, from the invalidation queue.
    func changed(_ kind: ChangeNotice.Kind, _ name: String) {
        invalidator.enqueue(ChangeNotice(kind, name))
    }

    // MARK: FuseHandler: names and attributes

    public func lookup(_ r: Request, parent: Inode, name: String) throws(CloudError) -> Entry {
        guard let p = table.slot(parent) else { throw CloudError(.noEntry, "stale directory") }
        let ctx = context(r)
        if let child = child(of: p.node, name) { try admit(child, ctx) } else { try admit(p.node, ctx) }
        if p.node == .collection(Collections.instances.id), api.instances.get(name, r.caller) == nil,
           let meta = meta(of: .launch(name), ctx) {
            return entry(.launch(name), meta, lookups: 1)
        }
        guard let child = child(of: p.node, name), let meta = meta(of: child, ctx) else {
            // Fixed sets of names may cache the miss; collections may gain the name any time.
            if hasFixedChildren(p.node) { return .negative(timeout: options.entryTimeout) }
            throw CloudError(.noEntry, "no such object")
        }
        return entry(child, meta, lookups: 1)
    }

    public func forget(_ inode: Inode, lookups: UInt64) {
        table.forget(inode, count: lookups) { node, identity in
            guard let m = meta(of: node, systemContext) else { return true }
            return !identity.isEmpty && !m.identity.isEmpty && identity != m.identity
        }
        // The kernel dropped the inode, and its pages and attributes with it.
        if table.slot(inode) == nil { pages.forget(inode) }
    }

    public func getattr(_ r: Request, inode: Inode, file: FileInfo?) throws(CloudError) -> AttributeReply {
        let (node, meta) = try resolve(inode, context(r))
        return AttributeReply(attributes(meta, inode), timeout: attrTimeout(node))
    }

    /// The attributes the kernel is told for `inode`: a value file's size is the one its
    /// cached pages hold while they are being read (PageCacheLedger.reporting).
    func attributes(_ meta: Meta, _ inode: Inode) -> FileAttributes {
        var a = meta.attributes(inode)
        if case .regular = meta.type { a.size = pages.reporting(inode, size: a.size) }
        return a
    }

    public func setattr(_ r: Request, inode: Inode, changes: AttributeChanges,
                        file: FileInfo?) throws(CloudError) -> AttributeReply {
        let (node, _) = try resolve(inode, context(r))
        if let name = imageName(node) {
            if let size = changes.size {
                let upload = file.flatMap { files.upload($0.handle) } ?? uploads.withLock { $0[name] }
                guard let upload else {
                    throw refuse(.notPermitted, "image \(name) is immutable once uploaded", node, r)
                }
                try upload.upload.truncate(to: size)
            }
            // chmod/chown/utimes of an image (cp -p, cp -a) are accepted and ignored.
        } else {
            if changes.mode != nil || changes.uid != nil || changes.gid != nil {
                throw refuse(.notPermitted, "modes and owners come from the cloud", node, r)
            }
            if changes.size != nil && !isWritable(node, context(r)) {
                throw refuse(.readOnly, "\(node.path) is read-only", node, r)
            }
            // O_TRUNC / truncate to 0 of a writable value file and utimes: nothing to do.
        }
        return try getattr(r, inode: inode, file: file)
    }

    public func statfs(_ r: Request, inode: Inode) throws(CloudError) -> FileSystemStatistics {
        var s = FileSystemStatistics()
        s.nameMax = 255
        s.files = UInt64(table.count)
        return s
    }

    // MARK: xattrs: user.cloud.* on /images/NAME

    public func getxattr(_ r: Request, inode: Inode, name: String) throws(CloudError) -> [UInt8] {
        // Only the user namespace exists here. EOPNOTSUPP (not ENODATA) for security.* and
        // system.* lets `ls -l` stop asking for SELinux labels and ACLs after one file.
        guard name.hasPrefix("user.") else { throw CloudError(.notSupported, "no such namespace") }
        let (node, _) = try resolve(inode, context(r))
        guard let image = imageName(node), name.hasPrefix("user.cloud."),
              let value = Collections.imageValues.first(where: { $0.0 == name.dropFirst("user.cloud.".count) })?.1,
              let info = api.images.get(image, r.caller)
        else { throw CloudError(.noData, "no such attribute") }
        return Array(value(info).utf8)
    }

    public func listxattr(_ r: Request, inode: Inode) throws(CloudError) -> [String] {
        let (node, _) = try resolve(inode, context(r))
        guard imageName(node) != nil else { return [] }
        return Collections.imageValues.map { "user.cloud.\($0.0)" }
    }

    // MARK: invalidation (runs on the invalidator's serial queue, never in a handler)

    /// Invalidates a node's kernel attributes and pages after a change, unless cached opens
    /// are reading it (PageCacheLedger.beginInvalidation: then it happens at their release).
    func invalidateFile(_ ino: Inode, _ session: FuseSession) {
        guard options.cachePages else { session.notifyInvalidate(inode: ino); return }
        guard pages.beginInvalidation(ino) else { return }
        session.notifyInvalidate(inode: ino)
        pages.invalidated(ino)
    }

    /// The invalidation a released cached open let through, from the invalidation queue.
    func invalidateLater(_ ino: Inode) {
        invalidator.run { [weak self] in
            guard let self, let session = self.session else { return }
            self.invalidateFile(ino, session)
        }
    }

    private func invalidate(for notice: ChangeNotice) {
        guard let session else { return }
        Invalidation(fs: self, session: session).apply(notice)
    }
}
