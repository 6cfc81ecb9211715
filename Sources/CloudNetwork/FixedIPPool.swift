import CloudCore
import Synchronization

/// One network's fixed IPs held in memory behind a lock: nova-network's
/// `allocate_fixed_ip` / `deallocate_fixed_ip` for callers that keep the pool in memory (the
/// store does the same in a transaction). Safe to use from many threads at once.
public final class FixedIPPool: Sendable {
    public let spec: NetworkSpec
    private let used: Mutex<Set<IPv4Address>>

    /// A pool for `spec` with `used` addresses already held (e.g. loaded from the store).
    public init(spec: NetworkSpec, used: Set<IPv4Address> = []) {
        self.spec = spec
        self.used = Mutex(used)
    }

    /// Takes the lowest free address. Throws `ENOSPC` when the network is full.
    public func allocate() throws(CloudError) -> IPv4Address {
        let spec = self.spec
        let result: Result<IPv4Address, CloudError> = used.withLock { set in
            do throws(CloudError) {
                let a = try FixedIPAllocator.allocate(in: spec, used: set)
                set.insert(a)
                return .success(a)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Gives `address` back; releasing an address that is not held does nothing (idempotent,
    /// like nova's deallocate of an already released IP).
    public func release(_ address: IPv4Address) {
        _ = used.withLock { $0.remove(address) }
    }

    /// The addresses currently held.
    public var allocated: Set<IPv4Address> { used.withLock { $0 } }

    /// How many allocatable addresses are free.
    public var freeCount: Int { let s = spec; return used.withLock { s.freeCount(used: $0) } }
}
