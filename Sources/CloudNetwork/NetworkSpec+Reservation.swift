import CloudCore

/// nova-network's reserved fixed IPs (`_create_fixed_ips` marks them `reserved`): the network
/// address, the gateway, the broadcast address, and every address below `dhcp_start`. All
/// other addresses of the cidr are handed to instances, lowest first.
extension NetworkSpec {
    /// True when `address` is never handed to an instance.
    public func isReserved(_ address: IPv4Address) -> Bool {
        !cidr.contains(address) || address == cidr.network || address == cidr.broadcast
            || address == gateway || address < dhcpStart
    }

    /// The lowest and highest address an instance may get, as numbers (the gateway may lie
    /// inside: check `isReserved`). Nil when no address is left.
    public var allocatableBounds: ClosedRange<UInt32>? {
        guard cidr.prefix <= 30 else { return nil }
        let low = max(cidr.network.value + 1, dhcpStart.value)
        let high = cidr.broadcast.value - 1
        guard low <= high else { return nil }
        return low...high
    }

    /// How many addresses instances may get when none is used.
    public var allocatableCount: Int {
        guard let b = allocatableBounds else { return 0 }
        return b.count - (b.contains(gateway.value) ? 1 : 0)
    }

    /// How many allocatable addresses are not in `used` (reserved or foreign addresses in
    /// `used` are ignored): nova-network's free fixed IP count for the network.
    public func freeCount(used: Set<IPv4Address>) -> Int {
        allocatableCount - used.count { !isReserved($0) }
    }
}
