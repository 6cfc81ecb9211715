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

    /// A random MAC with Nova's prefix that is not in `used` (compared case-insensitively),
    /// like nova-network's retry on a duplicate `virtual_interfaces.address`. Throws `ENOSPC`
    /// when `used` already holds every address of the prefix.
    public static func unique<G: RandomNumberGenerator>(avoiding used: Set<String>, using rng: inout G) throws(CloudError) -> String {
        let taken = Set(used.compactMap(suffix))
        guard taken.count < space else { throw CloudError.noSpace("every MAC address with prefix \(novaPrefix) is in use") }
        // Random probes first (the usual case: a sparse set), then a walk so it always ends.
        for _ in 0..<64 {
            let s = UInt32.random(in: 0..<UInt32(space), using: &rng)
            if !taken.contains(s) { return format(s) }
        }
        let start = UInt32.random(in: 0..<UInt32(space), using: &rng)
        for i in 0..<UInt32(space) {
            let s = (start &+ i) % UInt32(space)
            if !taken.contains(s) { return format(s) }
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

    /// The low three octets of a MAC with Nova's prefix, nil for any other text.
    static func suffix(_ mac: String) -> UInt32? {
        let m = mac.lowercased()
        guard isValid(m), m.hasPrefix(novaPrefix + ":") else { return nil }
        return UInt32(String(m.dropFirst(novaPrefix.count + 1).filter { $0 != ":" }), radix: 16)
    }

    static func format(_ suffix: UInt32) -> String {
        novaPrefix + [suffix >> 16, suffix >> 8, suffix].map { ":" + hex2(UInt8(truncatingIfNeeded: $0)) }.joined()
    }

    static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xf)]])
    }
}
