import FuseKit
import Synchronization

/// What the kernel's page cache may hold of each synthetic file (FUSE `FOPEN_KEEP_CACHE`),
/// so a warm `cat status` is one OPEN and no READ, and no reader ever gets a stale or torn
/// value: every OPEN compares the value it snapshots with what the cache was filled from.
///
/// The rules, per inode (writable files are never cached: the kernel moves `st_size`
/// itself on `O_TRUNC` and writes):
/// - Pages are only filled by READs of *cached* opens, and every cached open of an inode
///   serves the same bytes (`hash`), so whatever the pages hold is that value.
/// - An OPEN whose value is `hash` joins them (`keep`: the kernel keeps the pages).
/// - An OPEN with another value when no cached open is left takes the inode over
///   (`replace`): it invalidates the kernel's pages and attributes before it answers
///   (the notification waits for any READ still filling a page).
/// - Otherwise (another value while old cached opens remain, or while another open is
///   still invalidating the kernel's copy) the open is `direct` (`FOPEN_DIRECT_IO`, served
///   from its own snapshot): correct, just not cached.
/// - The page cache is bounded by `st_size`, so the kernel's size must be the value's.
///   While cached opens are open, attribute replies give the size of their value (a reader
///   never sees a newer size with older pages). `sizes` is every size an attribute reply
///   gave since the kernel's attributes were last invalidated (a superset of what it may
///   hold); when that is not exactly the value's size the OPEN invalidates the attributes
///   (a notification with a negative offset, which never waits) before it answers.
/// - No invalidation is sent while cached opens are open: the kernel drops a GETATTR
///   reply that crosses a notification, and the reader waiting for it would read the pages
///   with the size it had. A change notice's invalidation waits for the last release.
///
/// Found by `PageCacheMountTests`, which races readers against changes: each of the last
/// three rules closed a torn read it caught.
final class PageCacheLedger: Sendable {
    /// Sizes the kernel may hold for an inode's attributes.
    enum Sizes: Equatable, Sendable {
        /// Nothing known: the kernel may hold anything.
        case unknown
        /// Invalidated, and no attribute reply since.
        case none
        /// Every reply since the invalidation said this size.
        case one(Int)
        /// Replies since the invalidation disagreed.
        case mixed
    }

    struct Entry: Sendable {
        var hash: Int?
        /// The byte count of the value `hash` names.
        var size = 0
        var cachedOpens = 0
        var sizes = Sizes.unknown
        /// An open is invalidating the kernel's pages or attributes and has not answered.
        var invalidating = false
        /// A change notice's invalidation waits for the cached opens to be released.
        var deferred = false
    }

    /// How an OPEN uses the page cache.
    enum Decision: Equatable, Sendable {
        case keep, replace, direct
    }

    private let entries = Mutex<[UInt64: Entry]>([:])

    /// Decides an OPEN of `inode` whose value is `bytes`; `invalidateSize` says the kernel's
    /// attributes must be invalidated before the OPEN is answered.
    func open(_ inode: Inode, _ bytes: [UInt8]) -> (decision: Decision, invalidateSize: Bool) {
        let hash = Self.hash(bytes)
        return entries.withLock { all in
            var e = all[inode.rawValue] ?? Entry()
            defer { all[inode.rawValue] = e }
            // Another open is invalidating the kernel's copy: until it has, the pages and
            // size the kernel holds are not what the ledger says.
            if e.invalidating { return (.direct, false) }
            let sizeKnown = e.sizes == .none || e.sizes == .one(bytes.count)
            // Invalidating attributes under open readers could void their size refresh.
            if !sizeKnown && e.cachedOpens > 0 { return (.direct, false) }
            let decision: Decision
            if e.hash == hash {
                decision = .keep
            } else if e.cachedOpens == 0 {
                e.hash = hash
                e.size = bytes.count
                decision = .replace
            } else {
                return (.direct, false)
            }
            e.cachedOpens += 1
            if !sizeKnown { e.sizes = .none }
            e.invalidating = decision == .replace || !sizeKnown
            return (decision, !sizeKnown)
        }
    }

    /// The invalidation an `open` or `beginInvalidation` announced has been sent: the
    /// kernel holds no other value's pages or size now.
    func invalidated(_ inode: Inode) {
        entries.withLock { all in
            if all[inode.rawValue] != nil { all[inode.rawValue]!.invalidating = false }
        }
    }

    /// Asks to invalidate the kernel's copy of `inode` after a change notice. Refused
    /// while cached opens are open or another invalidation is under way: a notification
    /// makes the kernel drop the GETATTR reply a reader is waiting for, and that reader
    /// would then read the pages with the old size. The refused invalidation is done when
    /// the last cached open is released (`released` returns true). On true, send it and
    /// call `invalidated`.
    func beginInvalidation(_ inode: Inode) -> Bool {
        entries.withLock { all in
            var e = all[inode.rawValue] ?? Entry()
            defer { all[inode.rawValue] = e }
            if e.cachedOpens > 0 || e.invalidating {
                e.deferred = true
                return false
            }
            e.invalidating = true
            e.deferred = false
            e.sizes = .none
            return true
        }
    }

    /// RELEASE of a cached open; true when an invalidation waited for it.
    func released(_ inode: Inode) -> Bool {
        entries.withLock { all in
            guard var e = all[inode.rawValue], e.cachedOpens > 0 else { return false }
            e.cachedOpens -= 1
            let due = e.cachedOpens == 0 && e.deferred
            all[inode.rawValue] = e
            return due
        }
    }

    /// The size an attribute reply (GETATTR, LOOKUP, READDIRPLUS) tells the kernel when
    /// the value is `size` now: the cached value's while cached opens are open. Records it.
    /// Only inodes that were opened cached are tracked: the first cached open of any other
    /// inode invalidates its attributes.
    func reporting(_ inode: Inode, size: Int64) -> Int64 {
        entries.withLock { all in
            guard var e = all[inode.rawValue] else { return size }
            let told = e.cachedOpens > 0 ? e.size : Int(size)
            switch e.sizes {
            case .none: e.sizes = .one(told)
            case .one(let s) where s != told: e.sizes = .mixed
            default: return Int64(told)
            }
            all[inode.rawValue] = e
            return Int64(told)
        }
    }

    /// Forgets an inode the kernel no longer holds (its pages and attributes went with it).
    func forget(_ inode: Inode) {
        _ = entries.withLock { $0.removeValue(forKey: inode.rawValue) }
    }

    /// Inodes tracked (for tests and the benchmark's memory figure).
    var count: Int { entries.withLock { $0.count } }

    static func hash(_ bytes: [UInt8]) -> Int {
        var h = Hasher()
        h.combine(bytes.count)
        bytes.withUnsafeBytes { h.combine(bytes: $0) }
        return h.finalize()
    }
}
