import CloudCore

/// A floating IP associated with an instance's fixed IP: nova-network's
/// `linux_net.floating_forward_rules` (DNAT in PREROUTING and OUTPUT, SNAT in POSTROUTING).
public struct FloatingIPAssociation: Hashable, Sendable, Comparable {
    public var floating: IPv4Address
    public var fixed: IPv4Address
    /// The fixed IP's network: traffic to it keeps its source (nova's `dmz` exception).
    public var fixedNetwork: IPv4Network

    public init(floating: IPv4Address, fixed: IPv4Address, fixedNetwork: IPv4Network) {
        self.floating = floating
        self.fixed = fixed
        self.fixedNetwork = fixedNetwork
    }
    public static func < (a: Self, b: Self) -> Bool { (a.floating, a.fixed) < (b.floating, b.fixed) }
}

/// A managed network as the host's NAT sees it: nova-network's SNAT of its fixed range to
/// the outside, and the redirect of the metadata address to the service (its
/// `metadata_forward` rule: 169.254.169.254:80 → the host, here the network's gateway).
public struct NetworkNAT: Hashable, Sendable, Comparable {
    public var bridge: String
    public var cidr: IPv4Network
    public var gateway: IPv4Address
    public init(bridge: String, cidr: IPv4Network, gateway: IPv4Address) {
        self.bridge = bridge; self.cidr = cidr; self.gateway = gateway
    }
    public static func < (a: Self, b: Self) -> Bool { a.bridge < b.bridge }
}

/// An instance's port on a bridge and the security group rules that apply to it: the
/// per-instance chain of nova-network's `IptablesFirewallDriver` (`inst-ID`).
public struct InstancePort: Hashable, Sendable {
    /// The tap device (names the chain).
    public var interface: String
    /// The fixed IP: traffic to it is filtered.
    public var address: IPv4Address
    /// The network's DHCP server, whose replies are always let in (nova does the same).
    public var dhcpServer: IPv4Address?
    /// The union of the rules of the instance's security groups.
    public var rules: [SecurityGroupRule]

    public init(interface: String, address: IPv4Address, dhcpServer: IPv4Address?, rules: [SecurityGroupRule]) {
        self.interface = interface
        self.address = address
        self.dhcpServer = dhcpServer
        self.rules = rules
    }
}

/// The whole nftables state cloudfs owns, rendered as one `nft -f` script that replaces it
/// atomically: `table ip cloudfs_nat` (floating IPs) and `table inet cloudfs_filter`
/// (security groups). Each table is declared, deleted and re-created in the same
/// transaction, so applying twice is the same as once and nothing else is touched
/// (`destroy table` needs nftables 1.0.8; Debian 12 ships 1.0.6).
///
/// Security groups filter in the `inet` family, by destination fixed IP, as nova-network's
/// iptables driver did: bridged guest traffic reaches those hooks through br_netfilter
/// (`net.bridge.bridge-nf-call-iptables=1`), and connection tracking (`ct state`) is only
/// available there: the `bridge` family needs `nf_conntrack_bridge`, which many kernels lack.
/// Ingress is denied unless established/related, DHCP from the network's server, or allowed
/// by a rule; egress is allowed.
public enum NftablesRuleset {
    public static let natTable = "ip cloudfs_nat"
    public static let filterTable = "inet cloudfs_filter"

    /// The script for these associations and ports. Throws `EINVAL` when two ports share a
    /// fixed IP or an interface, or an interface name is unusable.
    public static func render(associations: [FloatingIPAssociation], ports: [InstancePort],
                              networks: [NetworkNAT] = [], metadataPort: Int? = nil) throws(CloudError) -> String {
        for n in networks { try InterfaceName.validate(n.bridge, field: "bridge") }
        var out = "#!/usr/sbin/nft -f\n# cloudfs: floating IPs and security groups; generated, do not edit\n"
        out += replace(natTable) + natBody(Set(associations).sorted(), Set(networks).sorted(), metadataPort)
        out += replace(filterTable) + (try filterBody(ports.sorted { $0.interface < $1.interface }))
        return out
    }

    /// The script that removes everything cloudfs owns (idempotent, like `render`).
    public static var teardown: String {
        "table \(natTable)\ndelete table \(natTable)\ntable \(filterTable)\ndelete table \(filterTable)\n"
    }

    /// The chain name of a port's security group rules.
    public static func chain(for port: InstancePort) -> String { "sg_" + port.interface }

    private static func replace(_ table: String) -> String { "table \(table)\ndelete table \(table)\n" }

    /// The metadata address guests ask (Nova's and EC2's).
    public static let metadataAddress = "169.254.169.254"

    private static func natBody(_ assocs: [FloatingIPAssociation], _ networks: [NetworkNAT], _ metadataPort: Int?) -> String {
        var s = "table \(natTable) {\n"
        let metadata = metadataPort.map { port in
            networks.map { "iifname \"\($0.bridge)\" ip daddr \(metadataAddress) tcp dport 80 dnat to \($0.gateway):\(port)" }
        } ?? []
        s += chain("prerouting", hook: "type nat hook prerouting priority dstnat; policy accept;",
                   metadata + assocs.map { "ip daddr \($0.floating) dnat to \($0.fixed)" })
        // The host's own connections to a floating IP never pass prerouting.
        s += chain("output", hook: "type nat hook output priority -100; policy accept;",
                   assocs.map { "ip daddr \($0.floating) dnat to \($0.fixed)" })
        // A floating IP's own SNAT first; the rest of a fixed range leaves masqueraded
        // behind the host's address (nova-network's SNAT to routing_source_ip).
        s += chain("postrouting", hook: "type nat hook postrouting priority srcnat; policy accept;",
                   assocs.map { "ip saddr \($0.fixed) ip daddr != \($0.fixedNetwork) snat to \($0.floating)" }
                   + networks.map { "ip saddr \($0.cidr) ip daddr != \($0.cidr) oifname != \"\($0.bridge)\" masquerade" })
        return s + "}\n"
    }

    private static func filterBody(_ ports: [InstancePort]) throws(CloudError) -> String {
        var seenAddr = Set<IPv4Address>(), seenIf = Set<String>()
        for p in ports {
            try InterfaceName.validate(p.interface, field: "instance interface")
            guard seenIf.insert(p.interface).inserted else { throw CloudError.invalid("two ports use interface \(p.interface)") }
            guard seenAddr.insert(p.address).inserted else { throw CloudError.invalid("two ports have fixed IP \(p.address)") }
        }
        let dispatch = ports.isEmpty ? [] : ["ip daddr vmap { " + ports.map { "\($0.address) : jump \(chain(for: $0))" }.joined(separator: ", ") + " }"]
        var s = "table \(filterTable) {\n"
        // Guest to guest and outside to guest (routed or bridged through br_netfilter)...
        s += chain("forward", hook: "type filter hook forward priority filter; policy accept;", dispatch)
        // ... and the host itself (including DNATed floating IP traffic and DHCP replies).
        s += chain("output", hook: "type filter hook output priority filter; policy accept;", dispatch)
        for p in ports {
            var rules = ["ct state established,related accept", "ct state invalid drop"]
            if let d = p.dhcpServer { rules.append("ip saddr \(d) udp sport 67 udp dport 68 accept") }
            rules += p.rules.map(statement)
            rules.append("drop")
            s += chain(chain(for: p), hook: nil, rules)
        }
        return s + "}\n"
    }

    /// One security group rule as an nft statement (new connections only reach it).
    static func statement(_ r: SecurityGroupRule) -> String {
        var parts: [String] = []
        if r.source.prefix > 0 { parts.append("ip saddr \(r.source)") }
        if let ports = r.ports {
            let p = ports.count == 1 ? "\(ports.lowerBound)" : "\(ports.lowerBound)-\(ports.upperBound)"
            parts.append("\(r.ipProtocol.rawValue) dport \(p)")
        } else {
            parts.append("meta l4proto \(r.ipProtocol.rawValue)")
        }
        return (parts + ["accept"]).joined(separator: " ")
    }

    private static func chain(_ name: String, hook: String?, _ rules: [String]) -> String {
        var s = "\tchain \(name) {\n"
        if let hook { s += "\t\t\(hook)\n" }
        for r in rules { s += "\t\t\(r)\n" }
        return s + "\t}\n"
    }
}
