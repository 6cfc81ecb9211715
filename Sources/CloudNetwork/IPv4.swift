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

    /// Parses dotted-quad notation. Throws `EINVAL` naming the text when malformed.
    public init(parsing text: String) throws(CloudError) {
        guard let a = IPv4Address(text) else {
            throw CloudError.invalid("'\(text.prefix(64))' is not an IPv4 address like 10.0.0.1")
        }
        self = a
    }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.value < b.value }
}

/// An IPv4 subnet in CIDR notation: nova-network's `Network.cidr` and floating range, and a
/// security group rule's `cidr`. Any prefix 0...32 is accepted here; whether a subnet is big
/// enough for instances is `NetworkSpec.validate`'s business.
public struct IPv4Network: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefix: Int

    /// Parses `A.B.C.D/N`. Throws `EINVAL` with the reason: no `/`, a bad address, a bad
    /// prefix, or host bits set (with the network the caller probably meant).
    public init(cidr: String) throws(CloudError) {
        let shown = "'\(cidr.prefix(64))'"
        let parts = cidr.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw CloudError.invalid("\(shown) is not a CIDR like 10.0.0.0/24 (address/prefix)") }
        guard let addr = IPv4Address(String(parts[0])) else {
            throw CloudError.invalid("\(shown) is not a CIDR: '\(parts[0].prefix(32))' is not an IPv4 address")
        }
        guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(parts[1]), (0...32).contains(p) else {
            throw CloudError.invalid("\(shown) is not a CIDR: the prefix length must be a number from 0 to 32")
        }
        let mask: UInt32 = p == 0 ? 0 : ~UInt32(0) << (32 - p)
        guard addr.value & ~mask == 0 else {
            throw CloudError.invalid("\(cidr) has host bits set; did you mean \(IPv4Address(addr.value & mask))/\(p)?")
        }
        network = addr
        prefix = p
    }

    /// The subnet mask as a number, e.g. 0xffffff00 for a /24.
    public var mask: UInt32 { prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix) }
    /// The subnet mask in dotted-quad form, as dnsmasq's `dhcp-range` wants it.
    public var netmask: IPv4Address { IPv4Address(mask) }
    public var broadcast: IPv4Address { IPv4Address(network.value | ~mask) }
    /// The first host address, nova-network's default gateway.
    public var defaultGateway: IPv4Address { IPv4Address(network.value &+ 1) }
    /// The number of addresses in the subnet (0 stands for 2^32, the whole space).
    public var size: UInt32 { ~mask &+ 1 }
    public var description: String { "\(network)/\(prefix)" }

    public func contains(_ a: IPv4Address) -> Bool { a.value & mask == network.value }
    /// True when the two subnets share at least one address (one contains the other).
    public func overlaps(_ other: IPv4Network) -> Bool {
        let m = prefix < other.prefix ? mask : other.mask
        return network.value & m == other.network.value & m
    }

    /// The range the engine handed out before `NetworkSpec` existed: all host addresses
    /// except the gateway and the one after it. New code uses `NetworkSpec.allocatableRange`,
    /// which follows nova-network (addresses below `dhcp_start` are reserved).
    public func allocatableRange(gateway: IPv4Address) -> ClosedRange<UInt32> {
        let first = max(network.value + 1, gateway.value + 2)
        return first...(broadcast.value - 1)
    }
}
