import CloudCore

/// One ingress rule of a Nova security group (`security_group_rules`: protocol,
/// from_port/to_port, cidr), written one per line in `/security-groups/NAME/rules` as
/// `PROTO PORTS CIDR`, e.g. `tcp 22 0.0.0.0/0`, `udp 1000-2000 10.0.0.0/8`, `icmp - 0.0.0.0/0`.
/// Traffic an instance receives is refused unless a rule of one of its groups allows it.
public struct SecurityGroupRule: Hashable, Sendable, CustomStringConvertible {
    /// The IP protocols a rule can name.
    public enum IPProtocol: String, CaseIterable, Sendable { case tcp, udp, icmp }

    public var ipProtocol: IPProtocol
    /// Destination ports 1-65535 (tcp/udp); nil for every port, and always nil for icmp.
    public var ports: ClosedRange<Int>?
    /// Where the traffic comes from.
    public var source: IPv4Network

    /// A rule; throws `EINVAL` when `ports` is given for icmp or lies outside 1-65535.
    public init(_ ipProtocol: IPProtocol, ports: ClosedRange<Int>? = nil, source: IPv4Network) throws(CloudError) {
        if ipProtocol == .icmp, ports != nil { throw CloudError.invalid("icmp has no ports: write '-'") }
        if let ports, ports.lowerBound < 1 || ports.upperBound > 65535 {
            throw CloudError.invalid("ports \(ports.lowerBound)-\(ports.upperBound) are outside 1-65535")
        }
        self.ipProtocol = ipProtocol
        self.ports = ports
        self.source = source
    }

    /// The canonical line: `tcp 22 0.0.0.0/0`, `tcp 80-90 ...`, `udp - ...`.
    public var description: String {
        let p: String
        if let ports { p = ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)" } else { p = "-" }
        return "\(ipProtocol.rawValue) \(p) \(source)"
    }

    /// Parses one rule line (without comment). Throws `EINVAL` with the reason.
    public static func parse(line: String) throws(CloudError) -> SecurityGroupRule {
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard words.count == 3 else {
            throw CloudError.invalid("expected 'PROTO PORTS CIDR' (like 'tcp 22 0.0.0.0/0'), got \(words.count) word\(words.count == 1 ? "" : "s")")
        }
        guard let proto = IPProtocol(rawValue: words[0].lowercased()) else {
            throw CloudError.invalid("protocol '\(words[0].prefix(20))' is not tcp, udp or icmp")
        }
        let ports = try parsePorts(words[1])
        return try SecurityGroupRule(proto, ports: ports, source: IPv4Network(cidr: words[2]))
    }

    /// Parses a whole rules file: one rule per line, `#` starts a comment, blank lines are
    /// ignored; duplicates are dropped. Throws `EINVAL` with `line N: reason`.
    public static func parseRules(_ text: String) throws(CloudError) -> [SecurityGroupRule] {
        var rules: [SecurityGroupRule] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let content = raw.prefix { $0 != "#" }
            guard !content.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) else { continue }
            do throws(CloudError) {
                let rule = try parse(line: FieldText.trimmed(String(content)))
                if !rules.contains(rule) { rules.append(rule) }
            } catch {
                throw CloudError.invalid("line \(i + 1): \(error.reason)")
            }
        }
        return rules
    }

    /// Parses the bytes written to a `rules` file (see `FieldText.decode`, `parseRules`).
    public static func parseRules(bytes: some Collection<UInt8>) throws(CloudError) -> [SecurityGroupRule] {
        try parseRules(FieldText.decode(bytes, field: "rules"))
    }

    /// The canonical text of a rules file: one canonical line per rule, newline-terminated.
    public static func render(_ rules: [SecurityGroupRule]) -> String {
        rules.map { $0.description + "\n" }.joined()
    }

    /// `-` (all ports), `N` or `N-M`, with 1 <= N <= M <= 65535.
    static func parsePorts(_ text: String) throws(CloudError) -> ClosedRange<Int>? {
        if text == "-" { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw CloudError.invalid("ports '\(text.prefix(20))' is not N, N-M or -") }
        var bounds: [Int] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 5, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) else {
                throw CloudError.invalid("ports '\(text.prefix(20))' is not N, N-M or -")
            }
            guard (1...65535).contains(n) else { throw CloudError.invalid("port \(n) is outside 1-65535") }
            bounds.append(n)
        }
        guard bounds.first! <= bounds.last! else {
            throw CloudError.invalid("port range \(text) runs backwards (\(bounds.first!) > \(bounds.last!))")
        }
        return bounds.first!...bounds.last!
    }
}
