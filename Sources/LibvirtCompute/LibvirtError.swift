import CLibvirt
import CloudCore
import Logging

/// A libvirt failure, captured on the thread that made the failing call.
///
/// libvirt keeps its last error in thread-local storage, so the call and the
/// `virGetLastError` that explains it must run on the same thread with nothing in between.
/// `Libvirt.call`/`Libvirt.check` are the only places that do that; everything above them
/// sees this value, and public methods translate it once into `CloudError`.
struct LibvirtError: Error, CustomStringConvertible {
    /// What we were doing, in plain English ("start domain cloudfs-…").
    var operation: String
    /// libvirt's `virErrorNumber` (`VIR_ERR_*`), 0 when libvirt set no error.
    var code: Int32
    /// libvirt's message, verbatim.
    var message: String

    /// True when libvirt says the domain does not exist (`VIR_ERR_NO_DOMAIN`).
    var isNoDomain: Bool { code == Int32(VIR_ERR_NO_DOMAIN.rawValue) }
    /// True when the operation does not apply in the domain's state (`VIR_ERR_OPERATION_INVALID`,
    /// e.g. destroying a domain that is not running).
    var isOperationInvalid: Bool { code == Int32(VIR_ERR_OPERATION_INVALID.rawValue) }

    /// Code for refusals cloudfs makes itself before calling libvirt ("a domain with that uuid
    /// already exists"): outside libvirt's `VIR_ERR_*` range.
    static let alreadyExists: Int32 = -17

    var description: String { "\(operation): \(message)" }

    /// The translation into cloudfs's error: a missing domain is `ENOENT`, cloudfs's own
    /// "already exists" refusal `EEXIST`, everything else `EIO` carrying libvirt's message.
    var cloudError: CloudError {
        if isNoDomain { return .notFound(description) }
        if code == Self.alreadyExists { return .exists(description) }
        return .io(description)
    }
}

/// The C boundary helpers: every libvirt call goes through one of these.
enum Libvirt {
    static let logger = Logger(label: "cloudfs.libvirt")

    /// Runs `body` (a libvirt call returning a pointer, nil on failure) and, on failure, reads
    /// the thread-local libvirt error right away.
    static func call<T>(_ operation: @autoclosure () -> String,
                        _ body: () -> T?) throws(LibvirtError) -> T {
        virResetLastError()
        if let value = body() { return value }
        throw lastError(operation())
    }

    /// Runs `body` (a libvirt call returning an int, negative on failure) and, on failure,
    /// reads the thread-local libvirt error right away. Returns the non-negative result.
    @discardableResult
    static func check(_ operation: @autoclosure () -> String,
                      _ body: () -> Int32) throws(LibvirtError) -> Int32 {
        virResetLastError()
        let rc = body()
        if rc >= 0 { return rc }
        throw lastError(operation())
    }

    /// This thread's last libvirt error message (right after a failed call).
    static func lastMessage() -> String {
        virGetLastError().flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown libvirt error"
    }

    /// Copies this thread's last libvirt error (must run right after the failed call).
    private static func lastError(_ operation: String) -> LibvirtError {
        defer { virResetLastError() }
        guard let err = virGetLastError() else {
            return LibvirtError(operation: operation, code: 0, message: "unknown libvirt error")
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "libvirt error \(err.pointee.code)"
        return LibvirtError(operation: operation, code: err.pointee.code, message: message)
    }

    /// Translates a libvirt failure into `CloudError` at the public boundary (the one place
    /// it happens), logging failures that are not a plain "no such domain".
    static func translating<T>(_ body: () throws(LibvirtError) -> T) throws(CloudError) -> T {
        do {
            return try body()
        } catch {
            // Not swallowed: the whole message travels up in the CloudError (and from there to
            // /events and the instance's fault), so the log line is only for debugging.
            logger.debug("\(error.description)")
            throw error.cloudError
        }
    }
}
