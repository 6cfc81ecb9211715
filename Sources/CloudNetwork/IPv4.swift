import CloudCore

/// An IPv4 address as a 32-bit number (nova-network stores them as text; we order them as numbers).
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    /// Parses dotted-quad notation; nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let octet = UInt32(p), octet <= 255 else { return nil }
            v = v << 8 | octet
        }
        value = v
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 subnet in CIDR notation (nova-network's `Network.cidr`), with nova-network's
/// reserved addresses: the network address, the gateway, the DHCP/metadata address right
/// after the gateway, and the broadcast address.
public struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefix: Int

    /// Parses `A.B.C.D/N`. Throws `EINVAL` with the reason when malformed, when host bits are
    /// set, or when the prefix leaves no room for instances (/31, /32).
    public init(cidr: String) throws(CloudError) {
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let addr = IPv4Address(String(parts[0])),
              let p = Int(parts[1]), (0...32).contains(p) else {
            throw CloudError.invalid("'\(cidr.prefix(64))' is not a CIDR like 10.0.0.0/24")
        }
        guard p <= 29 else { throw CloudError.invalid("\(cidr) is too small: a network needs at least a /29") }
        let mask: UInt32 = p == 0 ? 0 : ~UInt32(0) << (32 - p)
        guard addr.value & ~mask == 0 else {
            throw CloudError.invalid("\(cidr) has host bits set; did you mean \(IPv4Address(addr.value & mask))/\(p)?")
        }
        network = addr
        prefix = p
    }

    public var mask: UInt32 { prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The first host address, nova-network's default gateway.
    public var defaultGateway: IPv4Address { IPv4Address(network.value + 1) }
    public var size: UInt32 { ~mask &+ 1 }
    public var description: String { "\(network)/\(prefix)" }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == network.value }
    public func overlaps(_ other: IPv4Network) -> Bool {
        let m = prefix < other.prefix ? mask : other.mask
        return network.value & m == other.network.value & m
    }

    /// Addresses instances may get: all host addresses except the gateway and the one after
    /// it (reserved for the network's DHCP server), as index range into the subnet.
    public func allocatableRange(gateway: IPv4Address) -> ClosedRange<UInt32> {
        let first = max(network.value + 1, gateway.value + 2)
        return first...(broadcast.value - 1)
    }
}
