import CloudCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A vxlan segment's DHCP server on one host (`SegmentDHCP`): OVN's `localport` with
/// Neutron's DHCP agent behind it. A network namespace `cfsdhcp-VNI` holds one end of a
/// veth pair (`dhnVNI`, with the network's DHCP address and the segment's local-port MAC);
/// the other end (`dhpVNI`) is a port of the segment's bridge; dnsmasq runs in the
/// namespace. The namespace does not forward, so the host still has no address on the
/// tenant segment. Every host carrying the segment has the same port, and the
/// `cloudfs_localport` bridge table keeps its frames off the VXLAN devices.
extension HostNetworking {
    public static func localPortNamespace(vni: Int) -> String { "cfsdhcp-\(vni)" }
    static func localPortLinks(vni: Int) -> (bridgeSide: String, namespaceSide: String) { ("dhp\(vni)", "dhn\(vni)") }

    /// The command prefix that runs a tool inside the named network namespace (keeping the
    /// mount namespace, so the state directory's paths stay the same).
    static func enter(_ namespace: String) -> [String] { ["nsenter", "--net=/run/netns/\(namespace)"] }

    /// The segment's local port exists with its address and MAC, is on the bridge (which
    /// must exist: `ensureSegment`), and its dnsmasq serves `dhcp.hosts`. Idempotent;
    /// returns what it changed.
    ///
    /// With `dhcp.metadata` the port also holds 169.254.169.254, DHCP routes guests to it,
    /// and `metadataServer` (the words that run `cloudfs metadata-serve`) answers there
    /// from the documents written under `networks/NETWORK/metadata/`.
    public func ensureLocalPort(_ segment: VXLANSegment, metadataServer: [String]? = nil) throws(CloudError) -> [String] {
        guard let dhcp = segment.dhcp else { return [] }
        guard let server = IPv4Address(dhcp.server), (1...30).contains(dhcp.prefix) else {
            throw CloudError.invalid("segment \(segment.network): DHCP server '\(dhcp.server)/\(dhcp.prefix)' is not an address and prefix")
        }
        let ns = Self.localPortNamespace(vni: segment.vni)
        let (outer, inner) = Self.localPortLinks(vni: segment.vni)
        let mac = SegmentDHCP.portMAC(vni: segment.vni)
        var changed: [String] = []
        if access("/run/netns/\(ns)", F_OK) != 0 {
            try runner.check(["ip", "netns", "add", ns])
            changed.append("namespace \(ns) created")
        }
        let inside = CommandRunner(prefix: runner.prefix + Self.enter(ns))
        if !linkExists(outer) {
            _ = try? inside.run(["ip", "link", "del", "dev", inner])   // a half-made pair
            try runner.check(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
            changed.append("local port \(outer) created")
        }
        try inside.check(["ip", "link", "set", "dev", "lo", "up"])
        try inside.check(["ip", "link", "set", "dev", inner, "address", mac])
        try inside.check(["ip", "addr", "replace", "\(server)/\(dhcp.prefix)", "dev", inner])
        try inside.check(["ip", "link", "set", "dev", inner, "up"])
        try runner.check(["ip", "link", "set", "dev", outer, "master", segment.bridge])
        try runner.check(["ip", "link", "set", "dev", outer, "up"])
        let hosts = try dhcp.hosts.map { line throws(CloudError) -> DHCPHost in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count == 3, let ip = IPv4Address(f[1]) else { throw CloudError.invalid("segment \(segment.network): bad DHCP host '\(line.prefix(80))'") }
            return try DHCPHost(mac: f[0], ip: ip, instanceName: f[2])
        }
        let serving = dhcp.metadata != nil && metadataServer != nil
        if serving {
            try inside.check(["ip", "addr", "replace", "\(NftablesRuleset.metadataAddress)/32", "dev", inner])
        } else {
            _ = try inside.run(["ip", "addr", "del", "\(NftablesRuleset.metadataAddress)/32", "dev", inner])
        }
        var cfg = try localPortDHCP(segment, server: server, prefix: dhcp.prefix, dns: dhcp.dns)
        cfg.metadataRoute = serving ? server : nil
        let action = try syncDHCP(cfg, hosts: hosts, namespace: ns)
        if action != .unchanged { changed.append("dnsmasq \(action.rawValue)") }
        if serving, let documents = dhcp.metadata, let server = metadataServer {
            changed += try syncMetadata(segment.network, documents, namespace: ns, command: server)
        } else {
            changed += try stopMetadata(segment.network)
        }
        return changed
    }

    // MARK: the metadata service on a local port

    /// The directory of a network's metadata answers (`IP.json`) and its server's pid file.
    func metadataFiles(_ network: String) -> (documents: String, pidFile: String, log: String) {
        let d = networkDirectory(network)
        return (d + "/metadata", d + "/metadata.pid", d + "/metadata.log")
    }

    /// Writes the answers (one `IP.json` per guest, stale ones removed) and starts the
    /// server in the namespace unless it runs.
    private func syncMetadata(_ network: String, _ documents: [String: MetadataDocument], namespace: String,
                              command: [String]) throws(CloudError) -> [String] {
        let files = metadataFiles(network)
        try Files.makeDirectory(files.documents)
        var changed = 0
        for (ip, doc) in documents {
            guard IPv4Address(ip) != nil else { throw CloudError.invalid("metadata for '\(ip.prefix(40))': not an IPv4 address") }
            let json: String
            do { json = String(decoding: try JSONEncoder().encode(doc), as: UTF8.self) } catch {
                throw CloudError.io("cannot encode the metadata of \(ip): \(error)")
            }
            if try Files.replace("\(files.documents)/\(ip).json", with: json) { changed += 1 }
        }
        for name in Files.list(files.documents) where name.hasSuffix(".json") && documents[String(name.dropLast(5))] == nil {
            unlink("\(files.documents)/\(name)")
            changed += 1
        }
        var out = changed == 0 ? [] : ["metadata: \(changed) answer(s) written"]
        if Self.metadataPID(files) == nil {
            // setsid -f: the server detaches and outlives this call; it writes its pid file.
            try runner.check(["setsid", "-f"] + Self.enter(namespace) + command
                             + ["--documents", files.documents, "--pid-file", files.pidFile, "--log", files.log])
            for _ in 0..<200 where Self.metadataPID(files) == nil { usleep(10_000) }
            guard Self.metadataPID(files) != nil else {
                throw CloudError.io("the metadata server of \(network) did not start: \(Files.read(files.log)?.suffix(300) ?? "no log")")
            }
            out.append("metadata server started")
        }
        return out
    }

    /// Stops the network's metadata server if it runs.
    func stopMetadata(_ network: String) throws(CloudError) -> [String] {
        guard let pid = Self.metadataPID(metadataFiles(network)) else { return [] }
        try stop(pid: pid, what: "the metadata server")
        return ["metadata server stopped"]
    }

    /// The running metadata server of these files: the pid file's process, alive and
    /// serving this directory.
    static func metadataPID(_ files: (documents: String, pidFile: String, log: String)) -> pid_t? {
        guard let text = Files.read(files.pidFile), let pid = pid_t(text.trimmingTrailingNewlines), pid > 0,
              let cmdline = Files.read("/proc/\(pid)/cmdline"), !Files.isZombie(pid) else { return nil }
        let args = cmdline.split(separator: "\0").map(String.init)
        guard args.contains("metadata-serve"), let i = args.firstIndex(of: "--documents"), i + 1 < args.count,
              args[i + 1] == files.documents else { return nil }
        return pid
    }

    /// The dnsmasq files of a segment's local port (under `networks/NETWORK/`).
    func localPortDHCP(_ segment: VXLANSegment, server: IPv4Address, prefix: Int, dns: [String]) throws(CloudError) -> DnsmasqConfig {
        let mask: UInt32 = ~UInt32(0) << (32 - prefix)
        let spec = NetworkSpec(name: segment.network, mode: .vxlan, cidr: try IPv4Network(cidr: "\(IPv4Address(server.value & mask))/\(prefix)"),
                               gateway: server, dns: dns.compactMap(IPv4Address.init), vni: segment.vni)
        var cfg = dnsmasqConfig(for: spec)
        cfg.interface = Self.localPortLinks(vni: segment.vni).namespaceSide
        return cfg
    }

    /// Stops the segment's dnsmasq, deletes the veth pair (its bridge side; the other end
    /// goes with it at once), then the namespace. In that order the pair is gone when this
    /// returns: a namespace's own teardown of its devices finishes later, in the kernel.
    public func removeLocalPort(network: String, vni: Int) throws(CloudError) -> [String] {
        var removed = try stopMetadata(network)
        let dir = networkDirectory(network)
        if let pid = Self.dnsmasqPID(directory: dir) {
            try stop(pid: pid)
            removed.append("dnsmasq")
        }
        Files.removeTree(dir)
        removed += try removeLinks(named: [Self.localPortLinks(vni: vni).bridgeSide])
        let ns = Self.localPortNamespace(vni: vni)
        if access("/run/netns/\(ns)", F_OK) == 0 {
            try runner.check(["ip", "netns", "del", ns])
            removed.append("namespace \(ns)")
        }
        return removed
    }

    /// The bridge table that keeps every local port's frames on its host: nothing from a
    /// local-port MAC leaves through a VXLAN device, nothing for one comes in through one.
    /// Replaced as a whole; no MACs: the table goes.
    public func isolateLocalPorts(macs: [String]) throws(CloudError) {
        for m in macs where !MACAddress.isValid(m) { throw CloudError.invalid("'\(m.prefix(40))' is not a MAC address") }
        var text = "table bridge cloudfs_localport\ndelete table bridge cloudfs_localport\n"
        if !macs.isEmpty {
            let set = Set(macs.map { $0.lowercased() }).sorted().joined(separator: ", ")
            text += """
            table bridge cloudfs_localport {
              chain forward {
                type filter hook forward priority 0; policy accept;
                oifname "vxlan*" ether saddr { \(set) } drop
                iifname "vxlan*" ether daddr { \(set) } drop
              }
              chain output {
                type filter hook output priority 0; policy accept;
                oifname "vxlan*" ether saddr { \(set) } drop
              }
            }

            """
        }
        try load(text, file: "localport.nft")
    }
}
