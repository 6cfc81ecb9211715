import CLibvirt
import CloudCore
import Foundation
import Synchronization

/// libvirt's default event loop, run by one dedicated thread for the whole process.
///
/// The embedded QEMU driver (`qemu:///embed`) needs an event loop in the application to
/// watch the QEMU monitor sockets; remote connections need it for keepalives. libvirt allows
/// exactly one registration per process, before the first `virConnectOpen`, so this is a
/// singleton and `start()` is idempotent. `LibvirtDriver` calls it before every open.
public final class LibvirtEventLoop: Sendable {
    /// The process-wide event loop.
    public static let shared = LibvirtEventLoop()

    /// nil: not started; .success: running; .failure: registration failed (sticky).
    private let state = Mutex<Result<Void, CloudError>?>(nil)

    private init() {}

    /// Initializes libvirt (`virInitialize`), silences its default stderr error printer
    /// (`virSetErrorFunc` with a no-op: errors are read with `virGetLastError` instead),
    /// registers the default event implementation (`virEventRegisterDefaultImpl`) and starts
    /// a thread looping `virEventRunDefaultImpl`. Safe to call many times from any thread.
    /// Throws `EIO` if libvirt cannot be initialized.
    public func start() throws(CloudError) {
        let result: Result<Void, CloudError> = state.withLock { state in
            if let done = state { return done }
            let outcome = Self.startOnce()
            state = outcome
            return outcome
        }
        try result.get()
    }

    private static func startOnce() -> Result<Void, CloudError> {
        if virInitialize() < 0 { return .failure(.io("libvirt: virInitialize failed")) }
        virSetErrorFunc(nil) { _, _ in }
        if virEventRegisterDefaultImpl() < 0 {
            return .failure(.io("libvirt: cannot register the default event loop"))
        }
        let thread = Thread {
            while true {
                if virEventRunDefaultImpl() < 0 { usleep(10_000) }
            }
        }
        thread.name = "libvirt-event-loop"
        thread.start()
        return .success(())
    }
}
