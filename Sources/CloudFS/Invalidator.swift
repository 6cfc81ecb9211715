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

/// The invalidations one notice needs: attributes of every node showing the object, and
/// the name itself when the object is gone or was replaced by another with the same name.
struct Invalidation {
    let fs: CloudFileSystem
    let session: FuseSession

    func apply(_ notice: ChangeNotice) {
        let name = notice.name
        switch notice.kind {
        case .instance:
            let current = fs.api.instance(name)
            let gone = refresh(.instanceDir(name), in: .instancesDir, currentIdentity: current?.id)
            for f in InstanceField.allCases { inode(.instanceFile(name, f)) }
            if gone { drop([.instanceDir(name)] + InstanceField.allCases.map { .instanceFile(name, $0) }) }
        case .image:
            let current = fs.api.image(name)
            let gone = refresh(.image(name), in: .imagesDir, currentIdentity: current?.id)
            _ = refresh(.imageInfoDir(name), in: .imagesDDir, currentIdentity: current?.id)
            for f in ImageField.allCases { inode(.imageInfoFile(name, f)) }
            inode(.imagePropertiesDir(name))
            if gone {
                drop([.image(name), .imageInfoDir(name), .imagePropertiesDir(name)]
                     + ImageField.allCases.map { .imageInfoFile(name, $0) })
            }
            let keys = current?.properties ?? [:]
            let known = fs.table.nodes { if case .imageProperty(name, _) = $0 { true } else { false } }
            for (node, ino) in known {
                guard case .imageProperty(_, let key) = node else { continue }
                session.notifyInvalidate(inode: ino)
                if keys[key] == nil, let dir = fs.table.existingInode(.imagePropertiesDir(name)) {
                    session.notifyInvalidateEntry(parent: dir, name: key)
                }
            }
        case .flavor:
            _ = refresh(.flavorDir(name), in: .flavorsDir, currentIdentity: fs.api.flavor(name).map { _ in "" })
            for f in FlavorField.allCases { inode(.flavorFile(name, f)) }
        case .host:
            _ = refresh(.hostDir(name), in: .hostsDir, currentIdentity: fs.api.host(name).map { _ in "" })
            for f in HostField.allCases { inode(.hostFile(name, f)) }
        case .group:
            _ = refresh(.groupDir(name), in: .groupsDir, currentIdentity: fs.api.group(name).map { _ in "" })
            for f in GroupField.allCases { inode(.groupFile(name, f)) }
        case .network:
            _ = refresh(.networkDir(name), in: .networksDir, currentIdentity: fs.api.network(name).map { _ in "" })
            for f in NetworkFile.allCases { inode(.networkFile(name, f)) }
        case .floatingIP:
            _ = refresh(.floatingIPDir(name), in: .floatingIPsDir, currentIdentity: fs.api.floatingIP(name).map { _ in "" })
            for f in FloatingIPFile.allCases { inode(.floatingIPFile(name, f)) }
        case .securityGroup:
            _ = refresh(.securityGroupDir(name), in: .securityGroupsDir, currentIdentity: fs.api.securityGroup(name).map { _ in "" })
            for f in SecurityGroupFile.allCases { inode(.securityGroupFile(name, f)) }
        case .scheduler:
            // One option can change others (weighers sets multipliers), and every decision changes `last`.
            for k in fs.api.schedulerKeys + [schedulerLastName] { inode(.schedulerFile(k)) }
        case .config:
            for key in ConfigKey.allCases where name.isEmpty || key.rawValue == name { inode(.configFile(key)) }
        case .defaults:
            if let key = DefaultKey(rawValue: name) {
                inode(.defaultFile(key))
            } else {
                for key in DefaultKey.allCases { inode(.defaultFile(key)) }
            }
        case .events:
            break  // attribute timeout 0 and poll wake-ups already cover /events
        }
    }

    /// Invalidates the attributes of `node`, if the kernel was ever told about it.
    private func inode(_ node: Node) {
        if let ino = fs.table.existingInode(node) { session.notifyInvalidate(inode: ino) }
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
