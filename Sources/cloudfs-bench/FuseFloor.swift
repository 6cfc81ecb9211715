import CloudCore
import Foundation
import FuseKit
import Synchronization

/// The floor of FUSE itself on this machine: a file system of the tree's shape
/// (`instances/NAME/{status,ctl,wait}`) that does no work — every answer is ready, `wait`
/// never waits, `ctl` accepts anything — served by FuseKit (libfuse's multi-threaded loop,
/// as the daemon) with the kernel caching the daemon asks for: names and attributes for
/// 60 s, `status` opened with `FOPEN_KEEP_CACHE`, `ctl` and `wait` with `FOPEN_DIRECT_IO`,
/// no FLUSH. What a command costs here is what the kernel's round trips cost for any FUSE
/// file system that must see every open, as the cloud must (see `FuseFloor.mount`).
final class FloorTree: FuseHandler {
    private struct Names {
        var index: [String: UInt64] = [:]   // name → slot
        var order: [String?] = []           // slot → name (nil once removed)
    }
    private let names = Mutex(Names())
    private static let timeout = 60.0
    private static let status = Array("ACTIVE\n".utf8)
    private static let files = ["status", "ctl", "wait"]

    // Inodes: 1 the root, 2 `instances`, then four per slot: the directory and its files.
    private static let instances = Inode(2)
    private static func directory(_ slot: UInt64) -> Inode { Inode(3 + 4 * slot) }
    private static func file(_ slot: UInt64, _ k: Int) -> Inode { Inode(4 + 4 * slot + UInt64(k)) }
    private static func decode(_ ino: Inode) -> (slot: UInt64, file: Int?)? {
        guard ino.rawValue >= 3 else { return nil }
        let v = ino.rawValue - 3
        return (v / 4, v % 4 == 0 ? nil : Int(v % 4) - 1)
    }

    /// Answer OPEN with `ENOSYS`: the kernel then opens every file of the connection
    /// without asking (`FUSE_NO_OPEN_SUPPORT`), with its page cache kept and no RELEASE;
    /// FLUSH is answered `ENOSYS` too, so a `close` costs nothing either.
    private let noOpen: Bool

    init(count: Int, noOpen: Bool = false) {
        self.noOpen = noOpen
        names.withLock { n in
            for i in 1...max(count, 1) { n.index["i\(i)"] = UInt64(n.order.count); n.order.append("i\(i)") }
        }
    }

    private func attributes(_ ino: Inode) -> FileAttributes {
        if ino == .root || ino == Self.instances { return FileAttributes(inode: ino, type: .directory, permissions: 0o755, linkCount: 2) }
        switch Self.decode(ino)?.file {
        case nil: return FileAttributes(inode: ino, type: .directory, permissions: 0o755, linkCount: 2)
        case 0: return FileAttributes(inode: ino, type: .regular, permissions: 0o444, size: Int64(Self.status.count))
        case 1: return FileAttributes(inode: ino, type: .regular, permissions: 0o200)
        default: return FileAttributes(inode: ino, type: .regular, permissions: 0o444)
        }
    }

    private func entry(_ ino: Inode) -> Entry {
        Entry(attributes: attributes(ino), attributeTimeout: Self.timeout, entryTimeout: Self.timeout)
    }

    private func exists(_ ino: Inode) -> Bool {
        if ino == .root || ino == Self.instances { return true }
        guard let slot = Self.decode(ino)?.slot else { return false }
        return names.withLock { slot < $0.order.count && $0.order[Int(slot)] != nil }
    }

    func lookup(_ request: Request, parent: Inode, name: String) throws(CloudError) -> Entry {
        if parent == .root, name == "instances" { return entry(Self.instances) }
        if parent == Self.instances, let slot = names.withLock({ $0.index[name] }) { return entry(Self.directory(slot)) }
        if case let (slot, nil)? = Self.decode(parent), exists(parent), let k = Self.files.firstIndex(of: name) {
            return entry(Self.file(slot, k))
        }
        throw CloudError(.noEntry, "no \(name)")
    }

    func getattr(_ request: Request, inode: Inode, file: FileInfo?) throws(CloudError) -> AttributeReply {
        guard exists(inode) else { throw CloudError(.noEntry, "gone") }
        return AttributeReply(attributes(inode), timeout: Self.timeout)
    }

    func readdir(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
                 into buffer: inout DirectoryBuffer) throws(CloudError) {
        var list: [(String, Inode)]
        if inode == .root {
            list = [("instances", Self.instances)]
        } else if inode == Self.instances {
            list = names.withLock { n in n.order.enumerated().compactMap { slot, name in name.map { ($0, Self.directory(UInt64(slot))) } } }
        } else if case let (slot, nil)? = Self.decode(inode) {
            list = Self.files.indices.map { (Self.files[$0], Self.file(slot, $0)) }
        } else {
            throw CloudError(.notDirectory, "not a directory")
        }
        var i = Int(offset)
        while i < list.count, buffer.add(name: list[i].0, entry: entry(list[i].1), nextOffset: Int64(i + 1)) { i += 1 }
    }

    func open(_ request: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply {
        guard case let (_, k?)? = Self.decode(inode) else { throw CloudError(.isDirectory, "a directory") }
        if noOpen { throw CloudError(.notImplemented, "opens need no round trip") }
        return k == 0 ? OpenReply(keepCache: true, noFlush: true) : OpenReply(directIO: true, noFlush: true)
    }

    func flush(_ request: Request, inode: Inode, file: FileInfo) throws(CloudError) {
        // Without OPEN there is no FOPEN_NOFLUSH: ENOSYS stops FLUSH connection-wide too.
        if noOpen { throw CloudError(.notImplemented, "nothing to flush") }
    }

    func read(_ request: Request, inode: Inode, file: FileInfo, offset: Int64, size: Int) throws(CloudError) -> ReadReply {
        let bytes = Self.status
        guard offset < bytes.count else { return .bytes([]) }
        return .bytes(bytes[Int(offset)..<min(bytes.count, Int(offset) + size)])
    }

    func write(_ request: Request, inode: Inode, file: FileInfo, offset: Int64,
               data: UnsafeRawBufferPointer) throws(CloudError) -> Int { data.count }

    func mkdir(_ request: Request, parent: Inode, name: String, mode: UInt32) throws(CloudError) -> Entry {
        guard parent == Self.instances else { throw CloudError(.notPermitted, "only in instances/") }
        let slot = try names.withLock { (n) throws(CloudError) -> UInt64 in
            guard n.index[name] == nil else { throw CloudError(.exists, "\(name) exists") }
            n.index[name] = UInt64(n.order.count); n.order.append(name)
            return UInt64(n.order.count - 1)
        }
        return entry(Self.directory(slot))
    }

    func rmdir(_ request: Request, parent: Inode, name: String) throws(CloudError) {
        try names.withLock { (n) throws(CloudError) in
            guard parent == Self.instances, let slot = n.index.removeValue(forKey: name) else { throw CloudError(.noEntry, "no \(name)") }
            n.order[Int(slot)] = nil
        }
    }
}

/// A `FloorTree` mounted on a directory of its own and served on a thread until `stop()`.
final class FuseFloor {
    let mountpoint: String
    private let session: FuseSession
    private let finished = DispatchSemaphore(value: 0)

    /// The instances directory of the floor, the counterpart of the cloud's `instances/`.
    var instances: String { mountpoint + "/instances" }

    /// Mounts a floor tree of `count` instances (`i1` ... `iN`) on `mountpoint`; `noOpen`:
    /// one that lets the kernel open files without a round trip (see `FloorTree.noOpen`).
    init(mountpoint: String, count: Int, noOpen: Bool = false) throws {
        self.mountpoint = mountpoint
        _ = try? timed("fusermount3 -uz '\(mountpoint)' 2>/dev/null; true")
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        session = FuseSession(mountpoint: mountpoint, options: FuseSession.Options(fsName: "fuse-floor", subtype: "floor"),
                              handler: FloorTree(count: count, noOpen: noOpen))
        try session.mount()
        let s = session, done = finished
        Thread { try? s.run(); done.signal() }.start()
    }

    /// Ends the loop and unmounts; returns once the session is gone.
    func stop() {
        session.exit()
        finished.wait()
    }
}
