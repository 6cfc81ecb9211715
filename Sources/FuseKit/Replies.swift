import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// A FUSE node id (`fuse_ino_t`): the number the kernel uses to name an inode of this
/// file system in every request after LOOKUP. `1` is the root (`FUSE_ROOT_ID`).
public struct Inode: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ value: UInt64) { self.rawValue = value }
    /// The root directory (`FUSE_ROOT_ID`).
    public static let root = Inode(1)
    public static func < (a: Inode, b: Inode) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "ino:\(rawValue)" }
}

/// The file type bits of `st_mode` (`S_IFDIR`, `S_IFREG`, `S_IFLNK`).
public enum FileType: Sendable {
    case directory, regular, symlink
    var modeBits: UInt32 {
        switch self {
        case .directory: 0o040000  // S_IFDIR
        case .regular: 0o100000    // S_IFREG
        case .symlink: 0o120000    // S_IFLNK
        }
    }
}

/// `struct stat` as FUSE replies carry it (FUSE_GETATTR, FUSE_LOOKUP, READDIRPLUS).
/// Times are seconds since the epoch.
public struct FileAttributes: Sendable, Equatable {
    public var inode: Inode
    public var type: FileType
    /// Permission bits (e.g. `0o644`).
    public var permissions: UInt32
    public var linkCount: UInt32
    public var uid: UInt32
    public var gid: UInt32
    public var size: Int64
    /// `st_blksize`: the preferred I/O size; `cp` sizes its buffer from it.
    public var blockSize: UInt32
    public var accessed: Double
    public var modified: Double
    public var changed: Double

    public init(inode: Inode, type: FileType, permissions: UInt32, linkCount: UInt32 = 1,
                uid: UInt32 = 0, gid: UInt32 = 0, size: Int64 = 0, blockSize: UInt32 = 4096,
                modified: Double = 0, changed: Double? = nil, accessed: Double? = nil) {
        self.inode = inode; self.type = type; self.permissions = permissions
        self.linkCount = linkCount; self.uid = uid; self.gid = gid; self.size = size
        self.blockSize = blockSize; self.modified = modified
        self.changed = changed ?? modified; self.accessed = accessed ?? modified
    }

    /// The C `struct stat`.
    var stat: stat {
        var st = Glibc.stat()
        st.st_ino = ino_t(inode.rawValue)
        st.st_mode = mode_t(type.modeBits | (permissions & 0o7777))
        st.st_nlink = nlink_t(linkCount)
        st.st_uid = uid
        st.st_gid = gid
        st.st_size = off_t(size)
        st.st_blksize = blksize_t(blockSize)
        st.st_blocks = blkcnt_t((size + 511) / 512)
        st.st_atim = Self.timespec(accessed)
        st.st_mtim = Self.timespec(modified)
        st.st_ctim = Self.timespec(changed)
        return st
    }

    private static func timespec(_ t: Double) -> Glibc.timespec {
        let s = t.rounded(.down)
        return Glibc.timespec(tv_sec: Int(s), tv_nsec: Int((t - s) * 1_000_000_000))
    }
}

/// The reply to LOOKUP, MKDIR, MKNOD and CREATE (`struct fuse_entry_param`): the node, its
/// attributes, and how long the kernel may cache the name (entry timeout) and the
/// attributes (attribute timeout) without asking again.
public struct Entry: Sendable {
    public var attributes: FileAttributes
    public var generation: UInt64
    public var attributeTimeout: Double
    public var entryTimeout: Double
    /// True for a negative entry (node id 0): "no such name", cached for `entryTimeout`.
    public var isNegative: Bool

    public init(attributes: FileAttributes, generation: UInt64 = 0, attributeTimeout: Double,
                entryTimeout: Double) {
        self.attributes = attributes; self.generation = generation
        self.attributeTimeout = attributeTimeout; self.entryTimeout = entryTimeout
        self.isNegative = false
    }

    /// A negative entry: the kernel remembers for `timeout` seconds that the name does not
    /// exist (go-fuse's negative entry caching). Use `ENOENT` instead for names that may
    /// be created at any moment by someone else.
    public static func negative(timeout: Double) -> Entry {
        var e = Entry(attributes: FileAttributes(inode: Inode(0), type: .regular, permissions: 0),
                      attributeTimeout: 0, entryTimeout: timeout)
        e.isNegative = true
        return e
    }

    var param: fuse_entry_param {
        var p = fuse_entry_param()
        p.ino = isNegative ? 0 : attributes.inode.rawValue
        p.generation = generation
        p.attr = isNegative ? Glibc.stat() : attributes.stat
        p.attr_timeout = attributeTimeout
        p.entry_timeout = entryTimeout
        return p
    }
}

/// The reply to GETATTR and SETATTR: attributes plus how long the kernel may cache them.
public struct AttributeReply: Sendable {
    public var attributes: FileAttributes
    public var timeout: Double
    public init(_ attributes: FileAttributes, timeout: Double) {
        self.attributes = attributes; self.timeout = timeout
    }
}

/// The reply to OPEN, OPENDIR and CREATE: the file handle (`fi->fh`) later requests carry,
/// and the `FOPEN_*` flags for the kernel.
public struct OpenReply: Sendable {
    /// The handle passed back in `FileInfo.handle` with every request on this open file.
    public var handle: UInt64
    /// `FOPEN_DIRECT_IO`: bypass the page cache; reads are not clamped to `st_size`.
    public var directIO: Bool
    /// `FOPEN_KEEP_CACHE`: keep cached pages from an earlier open (immutable files).
    public var keepCache: Bool
    /// `FOPEN_NONSEEKABLE`.
    public var nonSeekable: Bool
    /// `FOPEN_CACHE_DIR` (opendir only): the kernel may cache the listing.
    public var cacheDirectory: Bool
    /// `FOPEN_NOFLUSH`: `close` sends no FLUSH (a read-only open with nothing to apply).
    public var noFlush: Bool

    public init(handle: UInt64 = 0, directIO: Bool = false, keepCache: Bool = false,
                nonSeekable: Bool = false, cacheDirectory: Bool = false, noFlush: Bool = false) {
        self.handle = handle; self.directIO = directIO; self.keepCache = keepCache
        self.nonSeekable = nonSeekable; self.cacheDirectory = cacheDirectory; self.noFlush = noFlush
    }

    func fill(_ fi: UnsafeMutablePointer<fuse_file_info>) {
        fi.pointee.fh = handle
        cfuse_fi_set_open_flags(fi, directIO ? 1 : 0, keepCache ? 1 : 0, nonSeekable ? 1 : 0,
                                cacheDirectory ? 1 : 0, noFlush ? 1 : 0)
    }
}

/// The reply to READ.
public enum ReadReply: Sendable {
    /// These bytes (at most the requested size).
    case bytes(ArraySlice<UInt8>)
    /// Up to `count` bytes read with `pread(2)` from a descriptor the handler owns
    /// (FuseKit reads, retrying `EINTR`, and replies; a read error becomes its errno).
    case file(descriptor: Int32, offset: Int64, count: Int)
    /// The handler keeps the `Request` and replies later, from any thread, with
    /// `Request.reply(bytes:)` or `Request.reply(error:)` (e.g. a blocking `wait` read).
    case deferred
}

/// `fuse_file_info` as a request carries it.
public struct FileInfo: Sendable {
    /// The handle returned by OPEN/CREATE/OPENDIR (`fi->fh`).
    public var handle: UInt64
    /// The `open(2)` flags (OPEN, CREATE, RELEASE).
    public var flags: OpenFlags
    /// The lock owner (FLUSH, RELEASE).
    public var lockOwner: UInt64
    /// True when a WRITE comes from the page cache (writeback), not from a caller.
    public var isWritepage: Bool

    init(_ fi: UnsafeMutablePointer<fuse_file_info>) {
        handle = fi.pointee.fh
        flags = OpenFlags(rawValue: fi.pointee.flags)
        lockOwner = fi.pointee.lock_owner
        isWritepage = cfuse_fi_writepage(fi) != 0
    }
}

/// `open(2)` flags.
public struct OpenFlags: RawRepresentable, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// `O_WRONLY` or `O_RDWR`.
    public var isWrite: Bool { (rawValue & O_ACCMODE) != O_RDONLY }
    /// `O_RDONLY` or `O_RDWR`.
    public var isRead: Bool { (rawValue & O_ACCMODE) != O_WRONLY }
    /// `O_TRUNC` (sent inside OPEN with `FUSE_CAP_ATOMIC_O_TRUNC`).
    public var truncate: Bool { rawValue & O_TRUNC != 0 }
    /// `O_APPEND`.
    public var append: Bool { rawValue & O_APPEND != 0 }
    /// `O_EXCL`.
    public var exclusive: Bool { rawValue & O_EXCL != 0 }
}

/// RENAME2 flags (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`).
public struct RenameFlags: RawRepresentable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public var noReplace: Bool { rawValue & 1 != 0 }
    public var exchange: Bool { rawValue & 2 != 0 }
}

/// The changes a SETATTR asks for (`FUSE_SET_ATTR_*`): nil means "leave alone".
public struct AttributeChanges: Sendable {
    public var mode: UInt32?
    public var uid: UInt32?
    public var gid: UInt32?
    /// `truncate(2)` / `ftruncate(2)` / `O_TRUNC` without atomic-trunc.
    public var size: Int64?
    public var accessed: Double?
    public var modified: Double?

    init(_ st: UnsafeMutablePointer<stat>, valid: Int32) {
        func has(_ bit: Int32) -> Bool { valid & bit != 0 }
        func seconds(_ t: timespec) -> Double { Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
        let now = Double(time(nil))
        if has(1 << 0) { mode = UInt32(st.pointee.st_mode) }
        if has(1 << 1) { uid = st.pointee.st_uid }
        if has(1 << 2) { gid = st.pointee.st_gid }
        if has(1 << 3) { size = Int64(st.pointee.st_size) }
        if has(1 << 7) { accessed = now } else if has(1 << 4) { accessed = seconds(st.pointee.st_atim) }
        if has(1 << 8) { modified = now } else if has(1 << 5) { modified = seconds(st.pointee.st_mtim) }
    }
}

/// Poll readiness (`POLLIN`, `POLLOUT`, ...), the reply to FUSE_POLL.
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: UInt32(POLLIN))
    public static let writable = PollEvents(rawValue: UInt32(POLLOUT))
    public static let error = PollEvents(rawValue: UInt32(POLLERR))
    public static let hangUp = PollEvents(rawValue: UInt32(POLLHUP))
}

/// The reply to STATFS (`struct statvfs`).
public struct FileSystemStatistics: Sendable {
    public var blockSize: UInt64 = 4096
    public var blocks: UInt64 = 0
    public var blocksFree: UInt64 = 0
    public var blocksAvailable: UInt64 = 0
    public var files: UInt64 = 0
    public var filesFree: UInt64 = 0
    public var nameMax: UInt64 = 255
    public init() {}

    var statvfs: statvfs {
        var s = Glibc.statvfs()
        s.f_bsize = UInt(blockSize); s.f_frsize = UInt(blockSize)
        s.f_blocks = fsblkcnt_t(blocks); s.f_bfree = fsblkcnt_t(blocksFree)
        s.f_bavail = fsblkcnt_t(blocksAvailable)
        s.f_files = fsfilcnt_t(files); s.f_ffree = fsfilcnt_t(filesFree); s.f_favail = fsfilcnt_t(filesFree)
        s.f_namemax = UInt(nameMax)
        return s
    }
}
