/// The one error type of cloudfs: an errno for the kernel and a sentence for the human
/// (written to `/events` and, for an object, to its `fault`). Unknown failures become
/// `EIO` through `CloudError.wrap`, never silently dropped.
public struct CloudError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The errno returned to the caller of the file operation.
    public var errno: Errno
    /// The human reason, in plain English.
    public var reason: String
    /// The state database failed (an `EIO` the store raised): work that meets it stops and
    /// is resumed later, instead of being handled as a refusal or a hypervisor failure.
    public var fromStore = false

    public init(_ errno: Errno, _ reason: String) {
        self.errno = errno
        self.reason = reason
    }

    /// A failure of the state database: `EIO` with SQLite's reason.
    public static func store(_ reason: String) -> CloudError {
        var e = CloudError(.io, reason)
        e.fromStore = true
        return e
    }

    public var description: String { "\(errno.name): \(reason)" }

    public static func invalid(_ reason: String) -> CloudError { .init(.invalid, reason) }
    public static func notFound(_ reason: String) -> CloudError { .init(.noEntry, reason) }
    public static func exists(_ reason: String) -> CloudError { .init(.exists, reason) }
    public static func busy(_ reason: String) -> CloudError { .init(.busy, reason) }
    public static func noSpace(_ reason: String) -> CloudError { .init(.noSpace, reason) }
    public static func readOnly(_ reason: String) -> CloudError { .init(.readOnly, reason) }
    public static func notPermitted(_ reason: String) -> CloudError { .init(.notPermitted, reason) }
    public static func io(_ reason: String) -> CloudError { .init(.io, reason) }

    /// Passes a `CloudError` through; any other error becomes `EIO` with its description.
    public static func wrap(_ error: any Error) -> CloudError {
        if let e = error as? CloudError { return e }
        return CloudError(.io, String(describing: error))
    }
}
