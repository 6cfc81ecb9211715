import CloudCore
import Foundation
import FuseKit
import Synchronization

/// An open synthetic file: the content snapshot taken at OPEN (so a value that changes
/// size never truncates `cat`), and, for writable value files, the writer's state.
final class AttributeHandle: Sendable {
    let node: Node
    let snapshot: [UInt8]
    /// Opened by CREATE (a new image property): the value is set by the first write, or
    /// to "" at FLUSH when nothing was written.
    let created: Bool
    /// Opened with O_TRUNC on a file whose empty value means something (`: > floating_ip`
    /// disassociates): the empty value is applied when the descriptor is closed without a
    /// write (see `AttributeFiles.flushAttribute`).
    let truncated: Bool
    /// The inode whose page cache this read-only open fills (PageCacheLedger), if any.
    let cachedInode: Inode?
    private let written = Mutex(false)
    private let flushes = Mutex(0)
    /// The bytes written through this handle so far (a value may arrive in several
    /// WRITEs: bash's printf writes a multi-line rules file line by line).
    private let received = Mutex<[UInt8]>([])
    init(node: Node, snapshot: [UInt8], created: Bool, truncated: Bool = false, cachedInode: Inode? = nil) {
        self.node = node; self.snapshot = snapshot; self.created = created; self.truncated = truncated
        self.cachedInode = cachedInode
    }
    var wasWritten: Bool { written.withLock { $0 } }
    func markWritten() { written.withLock { $0 = true } }
    /// Counts a FLUSH (one per close of a descriptor of this open file); returns how many so far.
    func countFlush() -> Int { flushes.withLock { $0 += 1; return $0 } }
    private let held = Mutex(false)
    /// Marks what was received as waiting for the close (fields applied at close).
    func holdForClose() { held.withLock { $0 = true } }
    /// What waits for the close, once.
    func takeHeld() -> [UInt8]? {
        guard held.withLock({ h in defer { h = false }; return h }) else { return nil }
        return received.withLock { $0 }
    }
    /// Everything written so far with `data` at `offset` added: a write at 0 starts over,
    /// one at the end continues. Nil for any other offset.
    func accumulate(_ data: UnsafeRawBufferPointer, at offset: Int64) -> [UInt8]? {
        received.withLock { r in
            if offset == 0 { r = [] }
            guard offset == Int64(r.count) else { return nil }
            r += data
            return r
        }
    }
}

/// An open descriptor on a file outside the tree (image bytes, console log).
final class DescriptorHandle: Sendable {
    let path: String
    private let fd = Mutex<Int32>(-1)
    init(path: String, fd: Int32) { self.path = path; self.fd.withLock { $0 = fd } }
    /// The descriptor, opening `path` now if it could not be opened before (a console log
    /// that did not exist yet). -1 when it still does not exist.
    func descriptor() -> Int32 {
        fd.withLock { fd in
            if fd < 0, !path.isEmpty { fd = Glibc.open(path, O_RDONLY | O_CLOEXEC) }
            return fd
        }
    }
    func close() { fd.withLock { fd in if fd >= 0 { _ = Glibc.close(fd); fd = -1 } } }
}

/// One entry of a directory listing snapshot taken at OPENDIR.
struct DirectoryEntry: Sendable {
    var name: String
    var node: Node
    var meta: Meta
}

/// What a FUSE file handle (`fi->fh`) stands for.
enum OpenFile: Sendable {
    case attribute(AttributeHandle)
    case upload(UploadState)
    case descriptor(DescriptorHandle)
    case events(EventsReader)
    case wait(WaitState)
    case directory([DirectoryEntry])
    case launch(LaunchHandle)
    case console(String, any ConsoleStream)
}

/// The open-file table: handle numbers to open files.
final class OpenFiles: Sendable {
    private struct State {
        var next: UInt64 = 1
        var open: [UInt64: OpenFile] = [:]
    }
    private let state = Mutex(State())

    func add(_ file: OpenFile) -> UInt64 {
        state.withLock { s in
            let h = s.next
            s.next += 1
            s.open[h] = file
            return h
        }
    }
    subscript(_ handle: UInt64) -> OpenFile? { state.withLock { $0.open[handle] } }
    func remove(_ handle: UInt64) -> OpenFile? { state.withLock { $0.open.removeValue(forKey: handle) } }
    func upload(_ handle: UInt64) -> UploadState? {
        if case .upload(let u) = self[handle] { return u }
        return nil
    }
}

extension CloudFileSystem {
    // MARK: FuseHandler: open files

    public func open(_ r: Request, inode: Inode, flags: OpenFlags) throws(CloudError) -> OpenReply {
        let ctx = context(r)
        let (node, style) = try resolveFile(inode, ctx)
        if let name = imageName(node) { return try openImage(name, node: node, flags: flags, r) }
        let file: OpenFile
        // FLUSH applies a value only when the file was emptied by O_TRUNC or takes its
        // value at close; any other write applies at WRITE. A close that has nothing to
        // apply needs no round trip (`echo stop > ctl` was OPEN, GETXATTR, WRITE, FLUSH,
        // RELEASE).
        var flushes = false
        switch (node, style?.0.style) {
        case (.events, _):
            if flags.isWrite { throw refuse(.readOnly, "/events is read-only", node, r) }
            file = .events(EventsReader(log: api.events(for: r.caller)))
        case (.field(_, let name, _), .wait?):
            if flags.isWrite { throw refuse(.readOnly, "\(node.path) is read-only", node, r) }
            file = .wait(WaitState(instance: name))
        case (.field(_, let name, _), .console?):
            let stream = try attachConsole(name, r)
            return OpenReply(handle: files.add(.console(name, stream)), directIO: true, nonSeekable: true)
        case (_, .log(let path)?):
            if flags.isWrite { throw refuse(.readOnly, "\(node.path) is read-only", node, r) }
            file = .descriptor(DescriptorHandle(path: style.map { path($0.1.object) } ?? "", fd: -1))
        default:
            if flags.isWrite && !isWritable(node, ctx) {
                throw refuse(.readOnly, "\(node.path) is read-only", node, r)
            }
            // The field and its object were looked up above: read them, not the cloud again.
            guard let bytes = style.map({ f, m in f.read(m.object, ctx) }) ?? content(of: node, ctx) else {
                throw CloudError(.noEntry, "no such object")
            }
            if !flags.isWrite && options.cachePages && !isWritable(node, ctx) { return openCached(node, inode, bytes) }
            let field = writableField(node)   // nil for a key: never emptied, never held
            let truncated = flags.isWrite && flags.truncate && field?.emptiedByTruncate == true
            flushes = truncated || (flags.isWrite && field?.appliesAtClose == true)
            file = .attribute(AttributeHandle(node: node, snapshot: flags.isRead ? bytes : [], created: false,
                                              truncated: truncated))
        }
        return OpenReply(handle: files.add(file), directIO: true, noFlush: !flushes)
    }

    /// A read-only open of a value file through the kernel's page cache (PageCacheLedger):
    /// its reads serve `bytes`, the value at this open. When the value is not the one
    /// the pages were filled from, the old pages and attributes are invalidated before the
    /// reply; a notification with a negative offset or on pages no READ is filling never
    /// waits, so it is safe inside the handler. No FLUSH: there is nothing to apply.
    private func openCached(_ node: Node, _ inode: Inode, _ bytes: [UInt8]) -> OpenReply {
        let (decision, invalidateSize) = pages.open(inode, bytes)
        let cached = decision != .direct
        if decision == .replace || invalidateSize {
            session?.notifyInvalidate(inode: inode, attributesOnly: decision != .replace)
            pages.invalidated(inode)
        }
        let h = AttributeHandle(node: node, snapshot: bytes, created: false, cachedInode: cached ? inode : nil)
        return OpenReply(handle: files.add(.attribute(h)), directIO: !cached, keepCache: decision == .keep, noFlush: true)
    }

    /// The node behind `inode` and, for a field file, its field and object, looked up once
    /// (an OPEN of `status` is one instance lookup, not one for `resolve` and one more).
    private func resolveFile(_ inode: Inode, _ ctx: Context) throws(CloudError) -> (Node, (Field, Member)?) {
        if let slot = table.slot(inode), imageName(slot.node) == nil {
            try admit(slot.node, ctx)
            if let fm = field(of: slot.node, ctx) {
                guard slot.shows(fm.1.identity) else {
                    throw CloudError(.noEntry, "no such object (stale inode)")
                }
                return (slot.node, fm)
            }
        }
        let (node, _) = try resolve(inode, ctx)
        return (node, field(of: node, ctx))
    }

    public func read(_ r: Request, inode: Inode, file: FileInfo, offset: Int64,
                     size: Int) throws(CloudError) -> ReadReply {
        guard let open = files[file.handle] else { throw CloudError(.badFile, "unknown file handle") }
        switch open {
        case .attribute(let h):
            return .bytes(Self.slice(h.snapshot, offset, size))
        case .descriptor(let d):
            let fd = d.descriptor()
            return fd < 0 ? .bytes([]) : .file(descriptor: fd, offset: offset, count: size)
        case .events(let reader):
            return .bytes(readEvents(reader, offset: offset, size: size)[...])
        case .wait(let w):
            return readWait(w, offset: offset, size: size, r)
        case .upload(let u):
            throw refuse(.invalid, "image \(u.name) cannot be read back while it is uploaded", .member(Collections.images.id, u.name), r)
        case .directory:
            throw CloudError(.isDirectory, "is a directory")
        case .launch(let h):
            return .bytes(Self.slice(h.bytes, offset, size))
        case .console(_, let stream):
            return readConsole(stream, size: size, r)
        }
    }

    public func write(_ r: Request, inode: Inode, file: FileInfo, offset: Int64,
                      data: UnsafeRawBufferPointer) throws(CloudError) -> Int {
        switch files[file.handle] {
        case .upload(let u):
            try u.upload.write(data, at: offset)
            return data.count
        case .attribute(let h):
            return try writeAttribute(h, offset: offset, data: data, r)
        case .launch(let h):
            return try writeLaunch(h, offset: offset, data: data, r)
        case .console(_, let stream):
            try stream.write(Array(data))
            return data.count
        default:
            throw CloudError(.badFile, "not open for writing")
        }
    }

    public func flush(_ r: Request, inode: Inode, file: FileInfo) throws(CloudError) {
        switch files[file.handle] {
        case .upload(let u): try flushUpload(u, r)
        case .attribute(let h): try flushAttribute(h, r)
        case .launch(let h): try flushLaunch(h, r)
        default: break
        }
    }

    public func release(_ r: Request, inode: Inode, file: FileInfo) {
        switch files.remove(file.handle) {
        case .upload(let u): releaseUpload(u)
        case .descriptor(let d): d.close()
        case .launch(let h): releaseLaunch(h, r)
        case .console(let name, _): detachConsole(name)
        case .attribute(let h) where h.created:
            releaseAttribute(h, r)
            pendingKeys.withLock { p in
                if let n = p[h.node] { p[h.node] = n > 1 ? n - 1 : nil }
            }
        case .attribute(let h):
            if let ino = h.cachedInode, pages.released(ino) { invalidateLater(ino) }
            releaseAttribute(h, r)
        default: break
        }
    }

    public func poll(_ r: Request, inode: Inode, file: FileInfo,
                     handle: PollHandle?) throws(CloudError) -> PollEvents {
        if case .events(let reader) = files[file.handle] { return pollEvents(reader, handle) }
        return [.readable]
    }

    /// `bytes[offset ..< offset+size]`, clamped.
    static func slice(_ bytes: [UInt8], _ offset: Int64, _ size: Int) -> ArraySlice<UInt8> {
        guard offset >= 0, offset < Int64(bytes.count) else { return [] }
        let start = Int(offset)
        return bytes[start..<min(bytes.count, start + size)]
    }
}
