import CloudCore

/// Guest MAC addresses with Nova's `fa:16:3e` prefix (nova/utils.py `generate_mac_address`),
/// as lower-case colon-separated text.
public enum MACAddress {
    public static let novaPrefix = "fa:16:3e"
    /// How many distinct MACs the prefix leaves (the three random octets).
    public static let space = 1 << 24

    /// A random MAC with Nova's prefix.
    public static func random<G: RandomNumberGenerator>(using rng: inout G) -> String {
        format(UInt32.random(in: 0..<UInt32(space), using: &rng))
    }

    public static func random() -> String {
        var rng = SystemRandomNumberGenerator()
        return random(using: &rng)
    }

    /// A random MAC with Nova's prefix that is not in `used`, like nova-network's retry on a
    /// duplicate `virtual_interfaces.address`. `used` holds MACs as this type writes them (lower
    /// case; an all-upper-case spelling is recognised too). Costs O(1) per probe, so it stays
    /// cheap however many MACs exist. Throws `ENOSPC` when every address of the prefix is used.
    public static func unique<G: RandomNumberGenerator>(avoiding used: Set<String>, using rng: inout G) throws(CloudError) -> String {
        func free(_ s: UInt32) -> Bool { let m = format(s); return !used.contains(m) && !used.contains(m.uppercased()) }
        // Random probes first (the usual case: a sparse set), then a walk so it always ends.
        for _ in 0..<64 {
            let s = UInt32.random(in: 0..<UInt32(space), using: &rng)
            if free(s) { return format(s) }
        }
        let start = UInt32.random(in: 0..<UInt32(space), using: &rng)
        for i in 0..<UInt32(space) where free((start &+ i) % UInt32(space)) {
            return format((start &+ i) % UInt32(space))
        }
        throw CloudError.noSpace("every MAC address with prefix \(novaPrefix) is in use")
    }

    public static func unique(avoiding used: Set<String>) throws(CloudError) -> String {
        var rng = SystemRandomNumberGenerator()
        return try unique(avoiding: used, using: &rng)
    }

    /// True for `xx:xx:xx:xx:xx:xx` with hex digits (either case).
    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isHexDigit) && $0.allSatisfy(\.isASCII) }
    }

    static func format(_ suffix: UInt32) -> String {
        novaPrefix + [suffix >> 16, suffix >> 8, suffix].map { ":" + hex2(UInt8(truncatingIfNeeded: $0)) }.joined()
    }

    static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xf)]])
    }
}
