/// Object names, shared by every collection of the tree (SPEC "Names"): 1–63 characters of
/// `[A-Za-z0-9._-]`, not starting with `.` or `-`.
public enum ObjectName {
    public static let maxLength = 63

    /// Returns nil when `name` is acceptable, otherwise the reason it is refused.
    public static func problem(_ name: String) -> String? {
        let bytes = Array(name.utf8)
        if bytes.isEmpty { return "name is empty" }
        if bytes.count > maxLength { return "name is longer than \(maxLength) characters" }
        if bytes[0] == UInt8(ascii: ".") || bytes[0] == UInt8(ascii: "-") {
            return "name may not start with '.' or '-'"
        }
        if !bytes.allSatisfy(isAllowed) { return "name may only contain A-Z a-z 0-9 . _ -" }
        return nil
    }

    /// The bytes a name may hold: ASCII letters, digits, `.`, `_` and `-` (also what Linux
    /// interface names may safely hold).
    public static func isAllowed(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
            || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    /// Throws `EINVAL` with the reason when `name` is not acceptable.
    public static func validate(_ name: String, kind: String) throws(CloudError) {
        if let p = problem(name) { throw CloudError.invalid("invalid \(kind) name '\(name.prefix(80))': \(p)") }
    }
}
