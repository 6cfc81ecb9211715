import CloudCore
import Foundation

/// One connection per embedded-driver URI for the whole test process. Every open of a
/// `qemu:///embed` URI registers libvirt's QEMU driver again, and libvirt's driver table
/// is small: after a few dozen opens in one process the next fails with "Too many drivers,
/// cannot register QEMU". Tests that use the embedded root share its one connection.
public enum SharedConnections {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var byURI: [String: any ComputeConnection] = [:]

    /// The process's connection to `uri`, opened with `open` the first time.
    public static func connection(_ uri: String,
                                  open: () throws(CloudError) -> any ComputeConnection) throws(CloudError) -> any ComputeConnection {
        lock.lock()
        defer { lock.unlock() }
        if let c = byURI[uri] { return c }
        let c = try open()
        byURI[uri] = c
        return c
    }
}

/// A driver handing out the shared connection for embedded-driver URIs (and fresh ones
/// for any other), so engines made by several tests share the process's one.
public final class SharingDriver: ComputeDriver, Sendable {
    let inner: any ComputeDriver
    public init(_ inner: any ComputeDriver) { self.inner = inner }
    public func connect(uri: String) throws(CloudError) -> any ComputeConnection {
        guard uri.hasPrefix("qemu:///embed") else { return try inner.connect(uri: uri) }
        return try SharedConnections.connection(uri) { () throws(CloudError) in try inner.connect(uri: uri) }
    }
}
