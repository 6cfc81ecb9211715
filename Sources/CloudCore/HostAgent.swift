/// The per-host agent's contract (`cloudfs agent`, Neutron's L2 agent + nova-network's
/// per-host part): what the controller sends to a compute host whose own network libvirt
/// cannot configure, and what the agent reports back. The wire (gRPC over mutual TLS) is
/// the HostAgent module's; the engine sees only `HostAgentDriver`.

/// One host's share of a vxlan network, Neutron's linuxbridge agent with l2population: a
/// bridge without address, a VXLAN device (`nolearning`: nothing is learnt from floods) on
/// it, one all-zero forwarding entry per other host carrying the network (unicast head-end
/// replication of broadcasts such as ARP) and one entry per guest MAC on another host, so
/// unicast goes straight to that host's tunnel address.
public struct VXLANSegment: Codable, Sendable, Equatable {
    public var network: String
    public var vni: Int
    public var bridge: String
    public var device: String
    /// Tunnel addresses of the other hosts with an instance on the network.
    public var peers: [String]
    /// Guest MAC → tunnel address of the host it runs on, for guests on other hosts.
    public var macs: [String: String]
    /// The segment's DHCP server on this host; nil: none (addresses are injected).
    public var dhcp: SegmentDHCP?

    public init(network: String, vni: Int, bridge: String, device: String, peers: [String], macs: [String: String],
                dhcp: SegmentDHCP? = nil) {
        self.network = network; self.vni = vni; self.bridge = bridge; self.device = device
        self.peers = peers.sorted(); self.macs = macs; self.dhcp = dhcp
    }

    /// The IANA VXLAN port (Linux's default is the older 8472).
    public static let udpPort = 4789
    /// The flood entry's MAC: `bridge fdb append 00:00:00:00:00:00 ... dst PEER`.
    public static let floodMAC = "00:00:00:00:00:00"
}

/// A segment's DHCP server on one host, as OVN's `localport` and Neutron's DHCP port
/// combined: a network namespace with one port on the segment's bridge, holding the
/// network's DHCP address, where dnsmasq answers for every guest of the network. Every
/// host carrying the segment has the same port (same address, same MAC); its frames never
/// cross the tunnel, so each guest talks to its own host's copy, also after it moved.
public struct SegmentDHCP: Codable, Sendable, Equatable {
    /// The server's address and the subnet's prefix length (`A.B.C.D`, `P`).
    public var server: String
    public var prefix: Int
    /// DNS servers handed out (empty: none).
    public var dns: [String]
    /// One `MAC,IP,hostname` line per guest of the network (dnsmasq's dhcp-hostsfile).
    public var hosts: [String]
    /// The metadata service's answers, by guest IP; nil: no metadata service on the port.
    /// With it the port also holds 169.254.169.254 and DHCP gives guests a route to it
    /// (option 121, Neutron's isolated metadata).
    public var metadata: [String: MetadataDocument]?

    public init(server: String, prefix: Int, dns: [String], hosts: [String], metadata: [String: MetadataDocument]? = nil) {
        self.server = server; self.prefix = prefix; self.dns = dns; self.hosts = hosts.sorted(); self.metadata = metadata
    }

    /// The local port's MAC for a VNI: locally administered, `0a:cf:` + the VNI's three
    /// bytes + `:01` (guest MACs are Nova's `fa:16:3e:...`).
    public static func portMAC(vni: Int) -> String {
        "0a:cf:" + [16, 8, 0].map { shift in
            let b = String((vni >> shift) & 0xff, radix: 16)
            return b.count == 1 ? "0" + b : b
        }.joined(separator: ":") + ":01"
    }
}

/// One forwarding entry of a VXLAN device: frames for `mac` go to the tunnel address `dst`.
public struct FDBEntry: Hashable, Sendable, Comparable, Codable {
    public var mac: String
    public var dst: String
    public init(mac: String, dst: String) { self.mac = mac; self.dst = dst }
    public static func < (a: FDBEntry, b: FDBEntry) -> Bool { (a.mac, a.dst) < (b.mac, b.dst) }
}

/// What an agent reports about its host (Neutron's agent state report).
public struct AgentStatus: Codable, Sendable, Equatable {
    /// The host name its certificate was issued for.
    public var host: String
    public var version: String
    /// Its VXLAN tunnel endpoint (Neutron's `local_ip`): other hosts' forwarding entries
    /// point here.
    public var tunnelIP: String
    /// Whether its kernel builds 802.1Q and VXLAN devices.
    public var vlan: Bool
    public var vxlan: Bool
    /// The networks whose segment it carries now.
    public var segments: [String]
    public init(host: String, version: String, tunnelIP: String, vlan: Bool, vxlan: Bool, segments: [String]) {
        self.host = host; self.version = version; self.tunnelIP = tunnelIP; self.vlan = vlan; self.vxlan = vxlan
        self.segments = segments
    }
}

/// A host's whole share of the network plan: every segment it must carry, and the
/// security-group filter of every guest port on it (nova-network's per-instance chains,
/// applied by the agent as one nftables transaction). Segments the agent made earlier and
/// the plan no longer names are removed; no ports means no filter tables.
public struct AgentPlan: Codable, Sendable, Equatable {
    public var segments: [VXLANSegment]
    public var ports: [AgentPort]
    /// Whether the agent owns its host's filter (`ports`). False on the controller's own
    /// machine, whose ruleset (floating IPs and every local port) the controller loads.
    public var filter: Bool
    public init(segments: [VXLANSegment], ports: [AgentPort] = [], filter: Bool = true) {
        self.segments = segments.sorted { $0.network < $1.network }
        self.ports = ports.sorted { $0.interface < $1.interface }
        self.filter = filter
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(segments: try c.decode([VXLANSegment].self, forKey: .segments), ports: try c.decode([AgentPort].self, forKey: .ports),
                  filter: try c.decodeIfPresent(Bool.self, forKey: .filter) ?? true)
    }
}

/// A guest's port on an agent host: its tap device, fixed IP and the union of its security
/// groups' rules, each in the canonical `PROTO PORTS CIDR` text of `/security-groups`.
public struct AgentPort: Codable, Sendable, Equatable {
    public var interface: String
    public var address: String
    public var rules: [String]
    /// The segment's DHCP server, whose answers the filter lets in.
    public var dhcpServer: String?
    public init(interface: String, address: String, rules: [String], dhcpServer: String? = nil) {
        self.interface = interface; self.address = address; self.rules = rules; self.dhcpServer = dhcpServer
    }
}

/// What applying a plan changed, one phrase per step (empty: nothing).
public struct AgentApplied: Codable, Sendable, Equatable {
    public var changes: [String]
    public init(changes: [String]) { self.changes = changes }
}

/// The controller's side of the agents: one call per RPC, bounded by a timeout, failures
/// as `CloudError` (`EHOSTDOWN`-like `EIO` with the reason: refused, TLS, timeout).
public protocol HostAgentDriver: Sendable {
    func status(host: String, address: String) throws(CloudError) -> AgentStatus
    func apply(_ plan: AgentPlan, host: String, address: String) throws(CloudError) -> AgentApplied
}

/// An agent's address in `/hosts/NAME/agent`: `A.B.C.D:PORT`.
public enum AgentAddress {
    /// The default port (cloudfs's own; Neutron's agents talk AMQP, nothing to reuse).
    public static let defaultPort = 7355

    /// (host, port); `EINVAL` for anything but an IPv4 address with an optional port.
    public static func split(_ text: String) throws(CloudError) -> (String, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count) else { throw CloudError.invalid("agent address '\(text.prefix(60))' is not A.B.C.D[:PORT]") }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4, octets.allSatisfy({ o in o.count <= 3 && !o.isEmpty && o.allSatisfy(\.isNumber) && Int(o)! <= 255 }) else {
            throw CloudError.invalid("agent address '\(text.prefix(60))': '\(parts[0].prefix(40))' is not an IPv4 address")
        }
        var port = defaultPort
        if parts.count == 2 {
            guard let p = Int(parts[1]), (1...65535).contains(p) else {
                throw CloudError.invalid("agent address '\(text.prefix(60))': the port must be 1-65535")
            }
            port = p
        }
        return (parts[0], port)
    }
}
