import CFuse
#if canImport(Glibc)
import Glibc
#endif

/// The reply buffer of one READDIR or READDIRPLUS request (`fuse_add_direntry` /
/// `fuse_add_direntry_plus`). A handler adds entries in order; each carries the offset of
/// the entry after it, which the kernel sends back to continue the listing.
public struct DirectoryBuffer: ~Copyable {
    private let request: OpaquePointer
    private let storage: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var used = 0
    /// True for READDIRPLUS: entries carry full attributes and count as lookups.
    public let isPlus: Bool

    init(request: OpaquePointer, capacity: Int, plus: Bool) {
        self.request = request
        self.capacity = capacity
        self.storage = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
        self.isPlus = plus
    }

    deinit { storage.deallocate() }

    /// Adds one entry; `nextOffset` is the offset the kernel passes to continue after it.
    /// Returns false (adding nothing) when the buffer is full: stop and return.
    /// For READDIR only the inode number and file type of `entry` are used.
    public mutating func add(name: String, entry: Entry, nextOffset: Int64) -> Bool {
        let remaining = capacity - used
        let needed: Int = name.withCString { cname in
            let dest = (storage + used).assumingMemoryBound(to: CChar.self)
            if isPlus {
                var p = entry.param
                return fuse_add_direntry_plus(request, dest, remaining, cname, &p, off_t(nextOffset))
            } else {
                var st = Glibc.stat()
                st.st_ino = ino_t(entry.attributes.inode.rawValue)
                st.st_mode = mode_t(entry.attributes.type.modeBits)
                return fuse_add_direntry(request, dest, remaining, cname, &st, off_t(nextOffset))
            }
        }
        if needed > remaining { return false }
        used += needed
        return true
    }

    func withBytes<T>(_ body: (UnsafeRawPointer, Int) -> T) -> T { body(UnsafeRawPointer(storage), used) }
}
