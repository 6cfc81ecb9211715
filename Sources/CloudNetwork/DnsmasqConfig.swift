import CloudCore

/// One line of dnsmasq's `dhcp-hostsfile`: nova-network's `linux_net.get_dhcp_hosts`, the
/// fixed IP dnsmasq hands to the guest with this MAC (`MAC,IP,hostname`).
public struct DHCPHost: Hashable, Sendable, Comparable {
    public let mac: String
    public let ip: IPv4Address
    public let hostname: String

    /// An entry; the MAC is lower-cased and the hostname sanitised (`hostname(for:)`).
    /// Throws `EINVAL` for a malformed MAC.
    public init(mac: String, ip: IPv4Address, instanceName: String) throws(CloudError) {
        guard MACAddress.isValid(mac) else { throw CloudError.invalid("'\(mac.prefix(40))' is not a MAC address") }
        self.mac = mac.lowercased()
        self.ip = ip
        self.hostname = DHCPHost.hostname(for: instanceName)
    }

    /// Nova's `utils.sanitize_hostname`: lower case, `[a-z0-9-]` only (`.`, `_` and spaces
    /// become `-`), no leading or trailing `-`, at most 63 characters; `instance` if nothing is left.
    public static func hostname(for name: String) -> String {
        var out = ""
        for c in name.lowercased() {
            if c.isASCII, c.isLetter || c.isNumber { out.append(c) } else if c == "." || c == "_" || c == " " || c == "-" { out.append("-") }
        }
        let trimmed = String(out.drop { $0 == "-" }.prefix(63)).reversed().drop { $0 == "-" }.reversed()
        return trimmed.isEmpty ? "instance" : String(trimmed)
    }

    /// Ordered by address, then MAC: the hosts file is sorted.
    public static func < (a: DHCPHost, b: DHCPHost) -> Bool { (a.ip, a.mac, a.hostname) < (b.ip, b.mac, b.hostname) }

    public var line: String { "\(mac),\(ip),\(hostname)" }
}

/// The files of one network's dnsmasq, nova-network's `linux_net.restart_dhcp` command line
/// as a `--conf-file`: DHCP only for the MACs in the hosts file (static mode, so dnsmasq
/// invents no address), listening on the gateway of the network's bridge.
public struct DnsmasqConfig: Hashable, Sendable {
    public var spec: NetworkSpec
    /// Files under the network's state directory.
    public var confFile: String, hostsFile: String, pidFile: String, leaseFile: String, logFile: String
    /// DHCP lease time (nova's `dhcp_lease_time`, 86400 s by default).
    public var leaseSeconds: Int
    /// The user dnsmasq runs as once started (its `user=`): the hosts file is re-read after
    /// SIGHUP as this user, so it must be able to reach the state directory.
    public var user: String
    /// The interface dnsmasq serves: the network's bridge, or a segment's local port.
    public var interface: String
    /// The default route handed out (the gateway); nil: none (a vxlan segment has no router).
    public var router: IPv4Address?
    /// Where guests reach 169.254.169.254 (a classless static route, DHCP option 121, as
    /// Neutron's isolated metadata gives it); nil: no route.
    public var metadataRoute: IPv4Address?

    /// The files for `spec` under `directory` (`dnsmasq.conf`, `hosts`, `dnsmasq.pid`,
    /// `leases`, `dnsmasq.log`).
    public init(spec: NetworkSpec, directory: String, leaseSeconds: Int = 86400, user: String = "root") {
        self.spec = spec
        let d = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        confFile = d + "/dnsmasq.conf"
        hostsFile = d + "/hosts"
        pidFile = d + "/dnsmasq.pid"
        leaseFile = d + "/leases"
        logFile = d + "/dnsmasq.log"
        self.leaseSeconds = leaseSeconds
        self.user = user
        interface = spec.bridge
        router = spec.mode == .vxlan ? nil : spec.gateway
    }

    /// The `--conf-file` content. Deterministic: the same spec and paths give the same bytes.
    public var configText: String {
        let tag = "net-" + DHCPHost.hostname(for: spec.name)
        var lines = [
            "# dnsmasq for cloudfs network \(spec.name) (nova-network \(spec.mode.rawValue)); generated, do not edit",
            "interface=\(interface)",
            "bind-interfaces",
            "except-interface=lo",
            "listen-address=\(spec.dhcpServer)",
            "user=\(user)",
            "no-resolv",
            "no-hosts",
            "strict-order",
            "pid-file=\(pidFile)",
            "dhcp-leasefile=\(leaseFile)",
            "log-facility=\(logFile)",
            "dhcp-range=set:\(tag),\(spec.cidr.network),static,\(spec.cidr.netmask),\(leaseSeconds)s",
            "dhcp-lease-max=\(max(spec.allocatableCount, 1))",
            "dhcp-hostsfile=\(hostsFile)",
        ]
        // Without a router dnsmasq would still offer its own address as one.
        lines.append("dhcp-option=tag:\(tag),option:router" + (router.map { ",\($0)" } ?? ""))
        if let via = metadataRoute {
            lines.append("dhcp-option=tag:\(tag),option:classless-static-route,\(NftablesRuleset.metadataAddress)/32,\(via)")
        }
        if !spec.dns.isEmpty {
            lines.append("dhcp-option=tag:\(tag),option:dns-server,\(spec.dns.map(\.description).joined(separator: ","))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `dhcp-hostsfile` content: one `MAC,IP,hostname` line per host, sorted by address.
    public static func hostsText(_ hosts: [DHCPHost]) -> String {
        Set(hosts).sorted().map { $0.line + "\n" }.joined()
    }
}
