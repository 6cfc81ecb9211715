import CloudCore
import Dispatch
import FuseKit
import Synchronization

/// Turns the cloud's change notices into kernel cache invalidations
/// (`fuse_lowlevel_notify_inval_inode/entry`) on one dedicated serial queue: never inline
/// in a FUSE handler (the kernel may wait for a handler while it invalidates) and never on
/// the engine's thread. Notices for the same object coalesce while queued.
final class Invalidator: Sendable {
    private struct State {
        var queued: Set<String> = []
        var apply: (@Sendable (ChangeNotice) -> Void)?
    }
    private let queue = DispatchQueue(label: "cloudfs.invalidate")
    private let state = Mutex(State())

    /// What to do for a notice (set once by the file system).
    var apply: (@Sendable (ChangeNotice) -> Void)? {
        get { state.withLock { $0.apply } }
        set { state.withLock { $0.apply = newValue } }
    }

    /// Runs `work` on the invalidation queue.
    func run(_ work: @escaping @Sendable () -> Void) { queue.async(execute: work) }

    /// Schedules invalidation for `notice` unless the same one is already queued.
    func enqueue(_ notice: ChangeNotice) {
        let key = "\(notice.kind.rawValue)\u{0}\(notice.name)"
        let fresh = state.withLock { $0.queued.insert(key).inserted }
        guard fresh else { return }
        queue.async { [self] in
            let apply = state.withLock { s -> (@Sendable (ChangeNotice) -> Void)? in
                s.queued.remove(key)
                return s.apply
            }
            apply?(notice)
        }
    }
}

/// The invalidations one notice needs, for every collection it concerns: attributes of
/// every node showing the object, and the name itself when the object is gone or was
/// replaced by another with the same name.
struct Invalidation {
    let fs: CloudFileSystem
    let session: FuseSession

    func apply(_ notice: ChangeNotice) {
        for c in Collections.concerned(by: notice.kind) {
            switch c.members {
            case .files:
                if c.fixedMembers {
                    // Option files: one changed, or (a notice for the whole set) all of them.
                    let all = c.noticeTouchesAll || c.lookup(fs.systemContext, notice.name) == nil
                    let names = all ? c.list(fs.systemContext).map(\.name) : [notice.name]
                    for n in names { inode(.member(c.id, n)) }
                } else {
                    let gone = refresh(.member(c.id, notice.name), in: .collection(c.id),
                                       currentIdentity: c.lookup(fs.systemContext, notice.name)?.identity)
                    if gone { drop([.member(c.id, notice.name)]) }
                }
            case .directories(let fields, let keys):
                let name = notice.name
                let current = c.lookup(fs.systemContext, name)
                let gone = refresh(.member(c.id, name), in: .collection(c.id), currentIdentity: current?.identity)
                // A member that is gone or replaced takes every file with it; one that
                // changed keeps what `wait` and `tty` show.
                let fixed = gone ? [] : Set(fields.filter(\.hasFixedAttributes).compactMap {
                    fs.table.existingInode(.field(c.id, name, $0.name))
                })
                for ino in fs.table.fieldInodes(of: .member(c.id, name)) where !fixed.contains(ino) {
                    fs.invalidateFile(ino, session)
                }
                for kd in keys { refreshKeys(kd, of: c, name, current) }
                if gone {
                    drop([.member(c.id, name)] + (fields.map(\.name) + keys.map(\.name)).map { Node.field(c.id, name, $0) })
                }
            }
        }
    }

    /// The files of a key directory: their attributes, and the names of keys that went.
    private func refreshKeys(_ kd: KeyDirectory, of c: Collection, _ name: String, _ current: Member?) {
        let entries = current.map { kd.entries($0.object) } ?? [:]
        let known = fs.table.nodes(under: .field(c.id, name, kd.name))
        for (node, ino) in known {
            if case .entryField = node { fs.invalidateFile(ino, session); continue }
            guard case .key(_, _, _, let key) = node else { continue }
            fs.invalidateFile(ino, session)
            if entries[key] == nil, let dir = fs.table.existingInode(.field(c.id, name, kd.name)) {
                session.notifyInvalidateEntry(parent: dir, name: key)
            }
        }
    }

    /// Invalidates the attributes of `node`, if the kernel was ever told about it.
    private func inode(_ node: Node) {
        if let ino = fs.table.existingInode(node) { fs.invalidateFile(ino, session) }
    }

    /// Forgets the inode numbers of a gone object that the kernel does not hold.
    private func drop(_ nodes: [Node]) {
        for n in nodes { fs.table.dropIfUnreferenced(n) }
    }

    /// Invalidates a collection member: the collection's attributes, the member's
    /// attributes, and its name when the object is gone or is another object now.
    /// Returns true in that last case.
    private func refresh(_ node: Node, in collection: Node, currentIdentity: String?) -> Bool {
        guard let (_, name) = node.parentAndName else { return false }
        let dir = fs.table.existingInode(collection)
        if let dir { session.notifyInvalidate(inode: dir) }
        inode(node)
        let known = fs.table.identity(of: node)
        let replaced = currentIdentity == nil
            || (known.map { !$0.isEmpty && !currentIdentity!.isEmpty && $0 != currentIdentity! } ?? false)
        if replaced, let dir { session.notifyInvalidateEntry(parent: dir, name: name) }
        return replaced
    }
}
