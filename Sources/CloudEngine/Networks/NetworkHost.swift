import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// What the network manager does on this host when `--manage-network` is on (nova-network's
/// `linux_net` driven from the catalog): per network, bridge + dnsmasq + floating route; for
/// the whole host, the nftables ruleset of floating IPs and security groups. Without
/// managed networking every call does nothing, so callers never ask.
final class NetworkHost: @unchecked Sendable {
    // @unchecked: immutable after init.
    let core: EngineCore
    /// The host's networking, when `config.manageNetwork`.
    let managed: ManagedNetworking?

    /// The agent hosts' shares of the plan (vxlan segments, their guests' filters).
    let segments: TenantSegments

    init(core: EngineCore) {
        self.core = core
        managed = core.config.manageNetwork ? ManagedNetworking(stateDir: core.config.stateDir) : nil
        segments = TenantSegments(core: core)
    }

    var isManaged: Bool { managed != nil }

    /// What this host's kernel can build, read once (only managed networking builds links).
    private let kernel = KernelFeatures.probe()

    /// The refusal for a network mode this host's kernel cannot carry ("this kernel has no
    /// 802.1Q; use vxlan"); nil when it can, or when the host's networking is not managed.
    func refusal(for mode: NetworkMode) -> CloudError? {
        isManaged ? kernel.refusal(for: mode) : nil
    }

    /// Sets up a network on the host (bridge, dnsmasq with its bindings, floating route).
    func apply(_ spec: NetworkSpec) throws(CloudError) {
        guard let managed else { return }
        try managed.apply(spec, hosts: core.catalog.withLock { $0.dhcpHosts(spec.name) })
    }

    /// `apply`, with a failure recorded in /events instead of thrown (a change that
    /// already committed; the next build that needs the network reports it again).
    func applyRecording(_ spec: NetworkSpec) {
        do throws(CloudError) { try apply(spec) } catch {
            core.events.append(kind: "network.error", object: spec.name, ["reason": error.reason])
        }
    }

    /// After fixed IPs were released: dnsmasq forgets them.
    func syncBindings(_ networks: [String]) throws(CloudError) {
        guard let managed else { return }
        for n in networks {
            guard let (spec, hosts) = core.catalog.withLock({ c in c.networkSpec(named: n).map { ($0, c.dhcpHosts(n)) } }) else { continue }
            try managed.syncHosts(spec, hosts: hosts)
        }
    }

    /// Stops a removed network's dnsmasq and removes its links.
    func remove(_ spec: NetworkSpec) throws(CloudError) { try managed?.remove(spec) }

    /// The whole nftables ruleset from the catalog: one DNAT/SNAT association per floating
    /// IP whose instance holds a fixed IP, one filtered port per instance with a fixed IP;
    /// then the agent hosts' plans, sent where they changed.
    func applyRuleset() throws(CloudError) {
        guard let managed else { return }
        let (assocs, ports, nats) = core.catalog.withLock { c -> ([FloatingIPAssociation], [InstancePort], [NetworkNAT]) in
            let specs = Dictionary(uniqueKeysWithValues: c.networkSpecs().map { ($0.name, $0) })
            var assocs: [FloatingIPAssociation] = []
            for f in c.floatingIPs.values {
                guard let id = f.instanceId, let ip = c.ips[id]?.first, let net = specs[ip.network] else { continue }
                assocs.append(FloatingIPAssociation(floating: IPv4Address(UInt32(f.address)), fixed: IPv4Address(UInt32(ip.address)),
                                                    fixedNetwork: net.cidr))
            }
            var ports: [InstancePort] = []
            for (id, ips) in c.ips {
                guard let ip = ips.first, let net = specs[ip.network] else { continue }
                ports.append(InstancePort(interface: ManagedNetworking.tapName(instanceID: id), address: IPv4Address(UInt32(ip.address)),
                                          dhcpServer: net.mode.usesDHCP || net.mode == .vxlan ? net.dhcpServer : nil,
                                          rules: c.securityRules(for: id)))
            }
            // A vxlan network has no gateway on the host: nothing to masquerade.
            let nats = c.networkSpecs().filter { $0.mode != .vxlan }.map { NetworkNAT(bridge: $0.bridge, cidr: $0.cidr, gateway: $0.gateway) }
            return (assocs, ports, nats)
        }
        try managed.applyRuleset(associations: assocs, ports: ports, networks: nats, metadataPort: core.config.metadataPort)
        // The agent hosts' filters (and segments) follow the same catalog.
        segments.syncRecording()
    }

    /// `applyRuleset`, with a failure recorded in /events against `object`.
    func applyRulesetRecording(_ object: String) {
        do throws(CloudError) { try applyRuleset() } catch {
            core.events.append(kind: "network.error", object: object, ["reason": error.reason])
        }
    }

    /// At start: every network in use, associated with a project or holding a floating
    /// range (and the default one unless it is a vlan network: those are created on
    /// demand, when a project first gets one), then the ruleset. Failures are recorded,
    /// not fatal: a build that needs the network tries again and fails with the reason.
    func applyAtStart(defaultNetwork wanted: String) {
        guard let managed else { return }
        do throws(CloudError) { try managed.host.recordNamespace() } catch {
            core.events.append(kind: "network.error", object: "-", ["reason": error.reason])
        }
        let specs = core.catalog.withLock { c in
            c.networkSpecs().filter { s in
                (s.name == wanted && !s.mode.isProjectSegment) || s.project != nil || c.networkInUse(s.name) || s.floatingRange != nil
            }
        }
        for s in specs { applyRecording(s) }
        applyRulesetRecording("-")
    }
}

extension Catalog {
    /// The rules that apply to an instance: the union of its groups' rules (no group: no
    /// ingress at all but replies and DHCP). Rules are stored canonical, so they parse.
    func securityRules(for instanceID: String) -> [SecurityGroupRule] {
        guard let r = instance(id: instanceID) else { return [] }
        var out: [SecurityGroupRule] = []
        for g in r.securityGroupNames {
            let rules: [SecurityGroupRule]
            do throws(CloudError) { rules = try SecurityGroupRule.parseRules(securityGroups[g]?.rules ?? "") } catch { continue }
            for rule in rules where !out.contains(rule) { out.append(rule) }
        }
        return out
    }
}
