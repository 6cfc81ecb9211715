import Dispatch
import Synchronization

/// Runs two independent steps at once: one on the calling thread, the other on a
/// libdispatch worker (`dispatch_apply` over two iterations), as a build makes its
/// qcow2 overlay and its config drive (Nova's `_create_image` makes them one after the
/// other). Both always run to their end, so neither leaves a half-written file behind
/// the caller's back; when both fail, the first one's error is thrown.
public func bothAtOnce(_ first: @Sendable () throws(CloudError) -> Void,
                       _ second: @Sendable () throws(CloudError) -> Void) throws(CloudError) {
    let failures = Mutex<[CloudError?]>([nil, nil])
    DispatchQueue.concurrentPerform(iterations: 2) { i in
        do throws(CloudError) { if i == 0 { try first() } else { try second() } } catch {
            failures.withLock { $0[i] = error }
        }
    }
    if let failure = failures.withLock({ $0[0] ?? $0[1] }) { throw failure }
}
