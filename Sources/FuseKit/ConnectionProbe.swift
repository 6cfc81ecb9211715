import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether a FUSE mount's daemon still answers, asked from outside the daemon.
public enum FuseConnection {
    /// True when `path` is a FUSE mount whose connection the kernel ended (its daemon died
    /// or the connection was aborted). Asked with `statvfs` (FUSE_STATFS), which the kernel
    /// always sends to the daemon: a `stat` may be answered from the attributes it still
    /// caches for the root.
    public static func ended(at path: String) -> Bool {
        var st = statvfs()
        return statvfs(path, &st) != 0 && (errno == ENOTCONN || errno == ECONNABORTED)
    }
}
