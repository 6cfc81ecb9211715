import CloudCore
#if canImport(Glibc)
import Glibc
#endif

/// nova-network's `linux_net` driver: makes one host match the networks' plans. Bridges
/// (`LinuxBridgeInterfaceDriver.ensure_bridge`), VLAN interfaces (`ensure_vlan`), dnsmasq
/// (`restart_dhcp`, `kill_dhcp`) and the cloudfs nftables tables (`IptablesManager.apply`).
/// Every method is idempotent: calling it again with the same arguments changes nothing.
/// Failures throw `EIO` with the failing command and its stderr.
///
/// Commands run through `runner`, so tests point it at a network namespace. Files live in
/// `stateDirectory/networks/NAME/` (dnsmasq) and `stateDirectory/nftables.nft`.
public struct HostNetworking: Sendable {
    /// What `syncDHCP` did to the network's dnsmasq.
    public enum DHCPAction: String, Sendable { case started, restarted, reloaded, unchanged }

    public let stateDirectory: String
    public let runner: CommandRunner

    public init(stateDirectory: String, runner: CommandRunner = CommandRunner()) {
        self.stateDirectory = stateDirectory.hasSuffix("/") ? String(stateDirectory.dropLast()) : stateDirectory
        self.runner = runner
    }

    /// The directory of one network's files (dnsmasq's, a local port's metadata answers).
    func networkDirectory(_ name: String) -> String { "\(stateDirectory)/networks/\(name)" }

    /// The dnsmasq files of `spec` under the state directory.
    public func dnsmasqConfig(for spec: NetworkSpec) -> DnsmasqConfig {
        DnsmasqConfig(spec: spec, directory: networkDirectory(spec.name))
    }

    // MARK: links

    /// The network's bridge exists, is up and holds `gateway/prefix`; for VLAN networks the
    /// `vlan<N>` interface on `bridgeInterface` is enslaved to it, for flat networks the
    /// `bridgeInterface` (if any).
    /// A vxlan network's bridge holds no address: the host is not on the tenant segment
    /// (it would route between projects), and its VXLAN device is `ensureSegment`'s.
    public func ensureBridge(_ spec: NetworkSpec) throws(CloudError) {
        try ensureBridgeUp(spec.bridge)
        if spec.mode == .vxlan { return }
        try runner.check(["ip", "addr", "replace", "\(spec.gateway)/\(spec.cidr.prefix)", "dev", spec.bridge])
        if let vlanIf = spec.vlanInterface, let vlan = spec.vlan, let parent = spec.bridgeInterface {
            try ensureVLAN(name: vlanIf, id: vlan, parent: parent)
            try enslave(vlanIf, to: spec.bridge)
        } else if spec.mode != .vlan, let uplink = spec.bridgeInterface {
            try enslave(uplink, to: spec.bridge)
        }
    }

    /// The 802.1Q interface `name` with tag `id` exists on `parent` and is up.
    public func ensureVLAN(name: String, id: Int, parent: String) throws(CloudError) {
        if !linkExists(name) {
            try runner.check(["ip", "link", "add", "link", parent, "name", name, "type", "vlan", "id", "\(id)"])
        }
        try runner.check(["ip", "link", "set", "dev", name, "up"])
    }

    /// Removes the network's VLAN interface and bridge (absent ones are fine) and returns
    /// the ones it deleted. A flat network's bridge is the operator's, joined but never
    /// made: it stays.
    @discardableResult
    public func removeLinks(_ spec: NetworkSpec) throws(CloudError) -> [String] {
        try removeLinks(named: [spec.vlanInterface, spec.vxlanInterface, spec.mode == .flat ? nil : spec.bridge].compactMap { $0 })
    }

    /// Deletes these interfaces, in order, and returns the ones that existed.
    func removeLinks(named links: [String]) throws(CloudError) -> [String] {
        var removed: [String] = []
        for link in links where linkExists(link) {
            do throws(CloudError) { try runner.check(["ip", "link", "del", "dev", link]) } catch {
                // A veth end goes by itself once its peer's namespace is torn down, which
                // the kernel finishes asynchronously after `ip netns del`: gone is fine.
                if linkExists(link) { throw error }
                continue
            }
            removed.append(link)
        }
        return removed
    }

    /// The bridge exists and is up; true when it was just created.
    @discardableResult
    func ensureBridgeUp(_ bridge: String) throws(CloudError) -> Bool {
        let created = !linkExists(bridge)
        if created { try runner.check(["ip", "link", "add", bridge, "type", "bridge"]) }
        try runner.check(["ip", "link", "set", "dev", bridge, "up"])
        return created
    }

    /// The host reaches the network's floating addresses through its bridge (the nat
    /// OUTPUT hook runs after routing, see examples/netns-dhcp-demo.sh); nothing without a
    /// floating range.
    public func ensureFloatingRoute(_ spec: NetworkSpec) throws(CloudError) {
        guard let f = spec.floatingRange else { return }
        try runner.check(["ip", "route", "replace", f.description, "dev", spec.bridge])
    }

    /// Removes the floating range's route (an absent one is fine).
    public func removeFloatingRoute(_ spec: NetworkSpec) throws(CloudError) {
        guard let f = spec.floatingRange else { return }
        _ = try runner.run(["ip", "route", "del", f.description, "dev", spec.bridge])
    }

    /// True when the interface exists (in the runner's namespace).
    public func linkExists(_ name: String) -> Bool {
        (try? runner.run(["ip", "link", "show", "dev", name]).status) == 0
    }

    private func enslave(_ port: String, to bridge: String) throws(CloudError) {
        try runner.check(["ip", "link", "set", "dev", port, "master", bridge])
        try runner.check(["ip", "link", "set", "dev", port, "up"])
    }

    // MARK: dnsmasq

    /// Writes the network's dnsmasq files and makes dnsmasq serve them: starts it when not
    /// running, restarts it when its configuration changed, sends SIGHUP (dnsmasq re-reads
    /// `dhcp-hostsfile`) when only the hosts changed. The bridge must exist (`ensureBridge`).
    @discardableResult
    public func syncDHCP(_ spec: NetworkSpec, hosts: [DHCPHost]) throws(CloudError) -> DHCPAction {
        try syncDHCP(dnsmasqConfig(for: spec), hosts: hosts)
    }

    /// `syncDHCP` for a dnsmasq with these files, started inside the network namespace
    /// `namespace` when given (a segment's local port).
    func syncDHCP(_ cfg: DnsmasqConfig, hosts: [DHCPHost], namespace: String? = nil) throws(CloudError) -> DHCPAction {
        try Files.makeDirectory(networkDirectory(cfg.spec.name))
        let confChanged = try Files.replace(cfg.confFile, with: cfg.configText)
        let hostsChanged = try Files.replace(cfg.hostsFile, with: DnsmasqConfig.hostsText(hosts))
        if let pid = Self.dnsmasqPID(pidFile: cfg.pidFile, confFile: cfg.confFile) {
            if confChanged {
                try stop(pid: pid)
                try start(cfg, namespace: namespace)
                return .restarted
            }
            guard hostsChanged else { return .unchanged }
            guard kill(pid, SIGHUP) == 0 else { throw CloudError.io("cannot signal dnsmasq \(pid): \(String(cString: strerror(errno)))") }
            return .reloaded
        }
        try start(cfg, namespace: namespace)
        return .started
    }

    /// Stops the network's dnsmasq if it runs (waits for it to exit).
    public func stopDHCP(_ spec: NetworkSpec) throws(CloudError) {
        try stopDHCP(dnsmasqConfig(for: spec))
    }

    func stopDHCP(_ cfg: DnsmasqConfig) throws(CloudError) {
        if let pid = Self.dnsmasqPID(pidFile: cfg.pidFile, confFile: cfg.confFile) { try stop(pid: pid) }
    }

    /// The pid of the network's running dnsmasq: the pid file's process, if it is alive and
    /// is a dnsmasq reading this network's configuration (a stale pid file gives nil).
    public func dnsmasqPID(_ spec: NetworkSpec) -> pid_t? {
        let cfg = dnsmasqConfig(for: spec)
        return Self.dnsmasqPID(pidFile: cfg.pidFile, confFile: cfg.confFile)
    }

    /// The running dnsmasq of a network directory (its `dnsmasq.pid` and `dnsmasq.conf`).
    static func dnsmasqPID(directory d: String) -> pid_t? {
        dnsmasqPID(pidFile: d + "/dnsmasq.pid", confFile: d + "/dnsmasq.conf")
    }

    /// The running dnsmasq whose pid file and configuration are `pidFile` and `confFile`.
    static func dnsmasqPID(pidFile: String, confFile: String) -> pid_t? {
        guard let text = Files.read(pidFile), let pid = pid_t(text.trimmingTrailingNewlines), pid > 0,
              let cmdline = Files.read("/proc/\(pid)/cmdline") else { return nil }
        let args = cmdline.split(separator: "\0").map(String.init)
        guard args.first?.hasSuffix("dnsmasq") == true, args.contains("--conf-file=\(confFile)"),
              !Files.isZombie(pid) else { return nil }
        return pid
    }

    /// The networks whose directory under the state directory still has a dnsmasq
    /// running from it, by directory name (a network removed from the database while its
    /// dnsmasq survived, e.g. a crash between the two).
    public func runningDHCPDirectories() -> [String: pid_t] {
        var out: [String: pid_t] = [:]
        let root = "\(stateDirectory)/networks"
        for name in Files.list(root) {
            let d = "\(root)/\(name)"
            if let pid = Self.dnsmasqPID(directory: d) { out[name] = pid }
        }
        return out
    }

    private func start(_ cfg: DnsmasqConfig, namespace: String? = nil) throws(CloudError) {
        // dnsmasq forks into the background; it exits non-zero (with the reason on stderr)
        // when the configuration is bad or it cannot bind, and writes its pid file first.
        try runner.check((namespace.map { Self.enter($0) } ?? []) + ["dnsmasq", "--conf-file=\(cfg.confFile)"])
    }

    func stop(pid: pid_t, what: String = "dnsmasq") throws(CloudError) {
        guard kill(pid, SIGTERM) == 0 || errno == ESRCH else {
            throw CloudError.io("cannot stop \(what) \(pid): \(String(cString: strerror(errno)))")
        }
        for _ in 0..<500 where kill(pid, 0) == 0 && !Files.isZombie(pid) { usleep(10_000) }
        if kill(pid, 0) == 0, !Files.isZombie(pid) {
            _ = kill(pid, SIGKILL)
            for _ in 0..<100 where kill(pid, 0) == 0 && !Files.isZombie(pid) { usleep(10_000) }
        }
    }

    // MARK: nftables

    /// Replaces cloudfs's nftables tables with the rules for these floating IP associations
    /// and instance ports, in one `nft -f` transaction. Also turns on
    /// `net.bridge.bridge-nf-call-iptables` so bridged guest traffic meets the filter.
    public func applyRuleset(associations: [FloatingIPAssociation], ports: [InstancePort],
                             networks: [NetworkNAT] = [], metadataPort: Int? = nil) throws(CloudError) {
        let text = try NftablesRuleset.render(associations: associations, ports: ports, networks: networks, metadataPort: metadataPort)
        let r = try runner.run(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"])
        guard r.status == 0 else {
            throw CloudError.io("cannot enable bridge-nf-call-iptables (is br_netfilter loaded?): \(r.stderr.trimmingTrailingNewlines)")
        }
        try load(text, file: "nftables.nft")
    }

    /// Removes cloudfs's nftables tables (absent tables are fine).
    public func removeRuleset() throws(CloudError) {
        try load(NftablesRuleset.teardown, file: "nftables-teardown.nft")
    }

    func load(_ text: String, file: String) throws(CloudError) {
        try Files.makeDirectory(stateDirectory)
        let path = "\(stateDirectory)/\(file)"
        _ = try Files.replace(path, with: text)
        try runner.check(["nft", "-f", path])
    }

    // MARK: namespace

    /// The network namespace the commands run in, as the kernel names it (`net:[4026531840]`).
    public func namespaceID() throws(CloudError) -> String {
        try runner.check(["readlink", "/proc/self/ns/net"]).trimmingTrailingNewlines
    }

    /// Notes the namespace the host networking is made in (`STATE/namespace`), so a
    /// teardown run from another one is refused instead of removing nothing.
    public func recordNamespace() throws(CloudError) {
        try Files.makeDirectory(stateDirectory)
        _ = try Files.replace("\(stateDirectory)/namespace", with: try namespaceID() + "\n")
    }

    /// `EINVAL` when the networking was recorded in another namespace than the one the
    /// commands run in now, naming it (and its `ip netns` name when it has one).
    public func checkNamespace() throws(CloudError) {
        guard let recorded = Files.read("\(stateDirectory)/namespace")?.trimmingTrailingNewlines, !recorded.isEmpty else { return }
        let here = try namespaceID()
        guard recorded != here else { return }
        var hint = ""
        if let inode = UInt64(recorded.filter(\.isNumber)) {
            for name in Files.list("/var/run/netns") {
                var st = stat()
                if stat("/var/run/netns/\(name)", &st) == 0, UInt64(st.st_ino) == inode {
                    hint = " (nsenter --net=/var/run/netns/\(name) ...)"
                }
            }
        }
        throw CloudError.invalid("the host networking of this cloud was made in network namespace \(recorded), but this runs in \(here): run it there\(hint)")
    }

    // MARK: everything

    /// What `teardown` removed.
    public struct Teardown: Sendable, Equatable {
        /// Networks whose dnsmasq was stopped, with its pid.
        public var stoppedDHCP: [String: pid_t] = [:]
        /// Bridges and VLAN interfaces deleted.
        public var removedLinks: [String] = []
    }

    /// Removes everything cloudfs made on the host for `networks`: floating routes,
    /// dnsmasq processes and files, VLAN interfaces, bridges (not a flat network's, which
    /// the operator made), the nftables tables, and any dnsmasq still running from a
    /// network directory of a network no longer listed.
    @discardableResult
    public func teardown(networks: [NetworkSpec]) throws(CloudError) -> Teardown {
        var done = Teardown()
        for spec in networks {
            try removeFloatingRoute(spec)
            if let pid = dnsmasqPID(spec) {
                try stop(pid: pid)
                done.stoppedDHCP[spec.name] = pid
            }
            done.removedLinks += try removeLinks(spec)
            Files.removeTree(networkDirectory(spec.name))
        }
        for (name, pid) in runningDHCPDirectories() {
            try stop(pid: pid)
            done.stoppedDHCP[name] = pid
            Files.removeTree(networkDirectory(name))
        }
        try removeRuleset()
        return done
    }
}
