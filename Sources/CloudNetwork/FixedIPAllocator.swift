import CloudCore

/// nova-network's `FixedIP.associate_pool`: the lowest allocatable address of a network that
/// no instance holds. Pure; the store serialises allocations (see `FixedIPPool` for an
/// in-memory, lock-protected pool).
public enum FixedIPAllocator {
    /// The lowest free allocatable address, or nil when the network is full. Sorts the used
    /// addresses and walks them once: O(u log u) for u used, whatever the subnet size.
    public static func lowestFree(in spec: NetworkSpec, used: some Sequence<IPv4Address>) -> IPv4Address? {
        guard let bounds = spec.allocatableBounds else { return nil }
        var taken = used.lazy.map(\.value).filter { bounds.contains($0) }.sorted()
        if bounds.contains(spec.gateway.value) {
            let i = taken.firstIndex { $0 >= spec.gateway.value } ?? taken.endIndex
            taken.insert(spec.gateway.value, at: i)
        }
        var candidate = bounds.lowerBound
        for u in taken {
            if u > candidate { break }
            if u == candidate {
                if candidate == bounds.upperBound { return nil }
                candidate += 1
            }
        }
        return IPv4Address(candidate)
    }

    /// Like `lowestFree`, but throws `ENOSPC` (nova's `NoMoreFixedIps`) when the network is full.
    public static func allocate(in spec: NetworkSpec, used: some Sequence<IPv4Address>) throws(CloudError) -> IPv4Address {
        guard let a = lowestFree(in: spec, used: used) else {
            throw CloudError.noSpace("no free fixed IP in network \(spec.name) (\(spec.cidr)): all \(spec.allocatableCount) addresses are in use")
        }
        return a
    }
}
