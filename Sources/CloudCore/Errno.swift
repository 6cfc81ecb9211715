#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX error number as a typed value (after swift-system's `Errno`): the FUSE layer
/// replies with `rawValue`, nothing above the C boundaries handles a bare `Int32`.
public struct Errno: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// No such object. The corresponding C error is `ENOENT`.
    public static let noEntry = Errno(rawValue: ENOENT)
    /// Object exists already. The corresponding C error is `EEXIST`.
    public static let exists = Errno(rawValue: EEXIST)
    /// Bad name or value. The corresponding C error is `EINVAL`.
    public static let invalid = Errno(rawValue: EINVAL)
    /// Action not valid in this state, or object in use. The corresponding C error is `EBUSY`.
    public static let busy = Errno(rawValue: EBUSY)
    /// Quota exceeded. The corresponding C error is `EDQUOT`.
    public static let quota = Errno(rawValue: EDQUOT)
    /// No valid host, no free IP. The corresponding C error is `ENOSPC`.
    public static let noSpace = Errno(rawValue: ENOSPC)
    /// Not yours. The corresponding C error is `EACCES`.
    public static let accessDenied = Errno(rawValue: EACCES)
    /// Not permitted (locked, admin only). The corresponding C error is `EPERM`.
    public static let notPermitted = Errno(rawValue: EPERM)
    /// Read-only file. The corresponding C error is `EROFS`.
    public static let readOnly = Errno(rawValue: EROFS)
    /// Unexpected failure. The corresponding C error is `EIO`.
    public static let io = Errno(rawValue: EIO)
    /// Interrupted by a signal. The corresponding C error is `EINTR`.
    public static let interrupted = Errno(rawValue: EINTR)
    /// Operation not supported here. The corresponding C error is `ENOSYS`.
    public static let notImplemented = Errno(rawValue: ENOSYS)
    /// Is a directory. The corresponding C error is `EISDIR`.
    public static let isDirectory = Errno(rawValue: EISDIR)
    /// Not a directory. The corresponding C error is `ENOTDIR`.
    public static let notDirectory = Errno(rawValue: ENOTDIR)
    /// Directory not empty. The corresponding C error is `ENOTEMPTY`.
    public static let notEmpty = Errno(rawValue: ENOTEMPTY)
    /// Bad file handle. The corresponding C error is `EBADF`.
    public static let badFile = Errno(rawValue: EBADF)
    /// Value too large (e.g. a write beyond a limit). The corresponding C error is `EFBIG`.
    public static let tooBig = Errno(rawValue: EFBIG)
    /// Attribute not present. The corresponding C error is `ENODATA`.
    public static let noData = Errno(rawValue: ENODATA)
    /// Buffer too small for an xattr. The corresponding C error is `ERANGE`.
    public static let range = Errno(rawValue: ERANGE)
    /// Not supported. The corresponding C error is `EOPNOTSUPP`.
    public static let notSupported = Errno(rawValue: EOPNOTSUPP)
    /// Cross-device link/rename. The corresponding C error is `EXDEV`.
    public static let crossDevice = Errno(rawValue: EXDEV)

    /// The current thread's `errno`, read immediately after a failed call.
    public static var current: Errno { Errno(rawValue: errno) }

    /// The C name, e.g. `ENOENT`.
    public var name: String {
        switch rawValue {
        case ENOENT: "ENOENT"; case EEXIST: "EEXIST"; case EINVAL: "EINVAL"
        case EBUSY: "EBUSY"; case EDQUOT: "EDQUOT"; case ENOSPC: "ENOSPC"
        case EACCES: "EACCES"; case EPERM: "EPERM"; case EROFS: "EROFS"
        case EIO: "EIO"; case EINTR: "EINTR"; case ENOSYS: "ENOSYS"
        case EISDIR: "EISDIR"; case ENOTDIR: "ENOTDIR"; case ENOTEMPTY: "ENOTEMPTY"
        case EBADF: "EBADF"; case EFBIG: "EFBIG"; case ENODATA: "ENODATA"
        case ERANGE: "ERANGE"; case EOPNOTSUPP: "EOPNOTSUPP"; case EXDEV: "EXDEV"
        default: "E\(rawValue)"
        }
    }
    public var description: String { name }
}
