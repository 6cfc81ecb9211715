/// Guest MAC addresses with Nova's `fa:16:3e` prefix (nova/utils.py `generate_mac_address`).
public enum MACAddress {
    public static let novaPrefix = "fa:16:3e"

    /// A random MAC with Nova's prefix. Uniqueness is enforced by the store's UNIQUE
    /// constraint; callers retry on collision.
    public static func random<G: RandomNumberGenerator>(using rng: inout G) -> String {
        let b = (0..<3).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return novaPrefix + b.map { ":" + hex2($0) }.joined()
    }

    public static func random() -> String {
        var rng = SystemRandomNumberGenerator()
        return random(using: &rng)
    }

    static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 0xf)]])
    }
}
