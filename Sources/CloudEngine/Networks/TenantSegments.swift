import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Neutron's l2population mechanism driver for vxlan networks on hosts with an agent:
/// from the catalog it derives each agent host's share of the plan (one `VXLANSegment` per
/// vxlan network with an instance there: flood entries to the other hosts carrying it,
/// one unicast entry per guest MAC on another host, and the DHCP hosts of the segment's
/// local DHCP port; and each guest port's security-group rules, the firewall driver's
/// part) and sends it over gRPC. A plan is sent
/// again only when it changed since the agent last took it, or when the agent reports
/// segments the plan does not have (an agent that restarted without its state).
final class TenantSegments: @unchecked Sendable {
    // @unchecked: `pushed` is guarded by `lock`; the rest is immutable.
    let core: EngineCore
    private let lock = NSLock()
    private var pushed: [String: AgentPlan] = [:]
    /// The metadata service's answer for a guest, when the cloud runs one (set once by the
    /// engine): each segment's local port then serves it on 169.254.169.254.
    var documents: (@Sendable (InstanceRecord) -> MetadataDocument?)?

    init(core: EngineCore) { self.core = core }

    /// `plans` with each segment's metadata answers, one per guest of the network (read
    /// outside the catalog's lock: a document reads the catalog itself).
    private func withMetadata(_ plans: [String: AgentPlan], _ guests: [String: [String: InstanceRecord]]) -> [String: AgentPlan] {
        guard let documents else { return plans }
        var made: [String: MetadataDocument] = [:]   // by instance id: each guest's once
        var out = plans
        for (host, plan) in plans {
            for (i, seg) in plan.segments.enumerated() where seg.dhcp != nil {
                var answers: [String: MetadataDocument] = [:]
                for (ip, r) in guests[seg.network] ?? [:] {
                    if made[r.id] == nil { made[r.id] = documents(r) }
                    answers[ip] = made[r.id]
                }
                out[host]?.segments[i].dhcp?.metadata = answers
            }
        }
        return out
    }

    /// Nova's `plug_vifs` before a spawn (or a live migration's destination): when the
    /// instance is on a vxlan network and `host` has an agent, that host must carry the
    /// segment before libvirt plugs the tap into its bridge. Throws the agent's failure.
    func plug(_ r: InstanceRecord, on host: String) throws(CloudError) {
        guard let agents = core.agents else { return }
        let (planned, address, guests) = core.catalog.withLock { c -> (AgentPlan?, String, [String: [String: InstanceRecord]]) in
            guard let h = c.hosts[host], !h.record.agent.isEmpty,
                  let ip = c.ips[r.id]?.first, c.networkSpec(named: ip.network)?.mode == .vxlan else { return (nil, "", [:]) }
            return (c.vxlanPlans(including: (r.id, host))[host] ?? AgentPlan(segments: []), h.record.agent, c.vxlanGuests())
        }
        guard let planned, let plan = withMetadata([host: planned], guests)[host] else { return }
        _ = try agents.apply(plan, host: host, address: address)
        took(plan, host)
        core.events.append(kind: "network.plugged", object: r.name, ["host": host, "segments": "\(plan.segments.count)"])
        syncRecording()
    }

    /// Sends every agent host whose plan changed its new plan (`only`: just those hosts);
    /// failures are recorded in /events (the next health check tries again).
    func syncRecording(only: Set<String>? = nil) {
        guard let agents = core.agents else { return }
        let (planned, targets, guests) = core.catalog.withLock { c -> ([String: AgentPlan], [(String, String, [String])], [String: [String: InstanceRecord]]) in
            let targets = c.hosts.values.filter { h in !h.record.agent.isEmpty && h.agentStatus != nil && (only?.contains(h.record.name) ?? true) }
                .map { ($0.record.name, $0.record.agent, $0.agentStatus?.segments ?? []) }
            return (c.vxlanPlans(including: nil).filter { p in targets.contains { $0.0 == p.key } }, targets, c.vxlanGuests())
        }
        let plans = withMetadata(planned, guests)
        for (host, address, reported) in targets {
            let plan = plans[host] ?? AgentPlan(segments: [])
            let stale = lock.withLock { pushed[host] != plan } || Set(reported) != Set(plan.segments.map(\.network))
            guard stale else { continue }
            do throws(CloudError) {
                let applied = try agents.apply(plan, host: host, address: address)
                took(plan, host)
                if !applied.changes.isEmpty {
                    core.events.append(kind: "network.segments", object: host,
                                       ["segments": plan.segments.map(\.network).joined(separator: ","),
                                        "changes": "\(applied.changes.count)"])
                }
            } catch {
                lock.withLock { pushed[host] = nil }
                core.events.append(kind: "network.error", object: host, ["reason": error.reason])
            }
        }
    }

    /// The agent took `plan`: remembered, and shown in `hosts/NAME/segments` at once.
    private func took(_ plan: AgentPlan, _ host: String) {
        lock.withLock { pushed[host] = plan }
        core.catalog.withLock { $0.hosts[host]?.agentStatus?.segments = plan.segments.map(\.network) }
        core.announce(.host, host)
    }
}

extension Catalog {
    /// The guests of every vxlan network by fixed IP (the metadata service's key).
    func vxlanGuests() -> [String: [String: InstanceRecord]] {
        let vxlan = Set(networkSpecs().filter { $0.mode == .vxlan }.map(\.name))
        var out: [String: [String: InstanceRecord]] = [:]
        for (id, held) in ips {
            guard let r = instance(id: id) else { continue }
            for ip in held where vxlan.contains(ip.network) { out[ip.network, default: [:]][IPv4Address(UInt32(ip.address)).description] = r }
        }
        return out
    }

    /// Every agent host's vxlan segments. A host carries a network while one of the
    /// network's instances is on it (`host`, or `old_host` during a move, so a live
    /// migration's destination and source both have the bridge); a guest's MAC is where it
    /// runs (the source until a move commits). `extra` counts an instance as being on a
    /// host before the catalog says so (the spawn that is about to happen).
    func vxlanPlans(including extra: (id: String, host: String)?) -> [String: AgentPlan] {
        let agentHosts = hosts.values.filter { !$0.record.agent.isEmpty }
        let tunnel = Dictionary(uniqueKeysWithValues: agentHosts.map { ($0.record.name, $0.agentStatus?.tunnelIP ?? "") })
        // This machine's own guests are filtered by the controller's ruleset (one nftables
        // table per host): an agent here builds segments and local ports only.
        let filtered = Set(agentHosts.filter(\.isRemote).map(\.record.name))
        var segments: [String: [VXLANSegment]] = [:]
        var ports: [String: [AgentPort]] = [:]   // host → its guests' filtered ports
        for spec in networkSpecs() where spec.mode == .vxlan {
            guard let vni = spec.vni, let device = spec.vxlanInterface else { continue }
            var carrying: Set<String> = []
            var macAt: [String: String] = [:]   // MAC → host it runs on
            var leases: [String] = []            // the segment's DHCP hosts: every guest on it
            for (id, held) in ips {
                guard let ip = held.first(where: { $0.network == spec.name }),
                      let r = instance(id: id) else { continue }
                var on = [r.host, r.oldHost].compactMap { $0 }
                var runsOn = r.taskState == .migrating ? (r.oldHost ?? r.host) : r.host
                if let extra, extra.id == id { on.append(extra.host); if runsOn == nil { runsOn = extra.host } }
                carrying.formUnion(on.filter { tunnel[$0] != nil })
                if let runsOn, tunnel[runsOn] != nil { macAt[ip.mac.lowercased()] = runsOn }
                let address = IPv4Address(UInt32(ip.address))
                if let lease = try? DHCPHost(mac: ip.mac, ip: address, instanceName: r.name) { leases.append(lease.line) }
                let port = AgentPort(interface: ManagedNetworking.tapName(instanceID: id), address: address.description,
                                     rules: securityRules(for: id).map(\.description), dhcpServer: spec.dhcpServer.description)
                for h in Set(on) where filtered.contains(h) { ports[h, default: []].append(port) }
            }
            let dhcp = SegmentDHCP(server: spec.dhcpServer.description, prefix: spec.cidr.prefix,
                                   dns: spec.dns.map(\.description), hosts: leases)
            for host in carrying {
                let peers = carrying.subtracting([host]).compactMap { tunnel[$0] }.filter { !$0.isEmpty }
                var macs: [String: String] = [:]
                for (mac, at) in macAt where at != host { if let t = tunnel[at], !t.isEmpty { macs[mac] = t } }
                segments[host, default: []].append(VXLANSegment(network: spec.name, vni: vni, bridge: spec.bridge, device: device,
                                                                peers: peers, macs: macs, dhcp: dhcp))
            }
        }
        var plans: [String: AgentPlan] = [:]
        for h in agentHosts {
            plans[h.record.name] = AgentPlan(segments: segments[h.record.name] ?? [], ports: ports[h.record.name] ?? [],
                                             filter: filtered.contains(h.record.name))
        }
        return plans
    }
}
