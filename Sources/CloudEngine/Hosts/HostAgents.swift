import CloudCore
import Foundation

/// Neutron's agent heartbeat: a host with an agent (`/hosts/NAME/agent`) is up only while
/// its agent answers `Status` over gRPC. When it stops answering the host goes down with
/// the reason in `/hosts/NAME/fault` and `/events` (its instances' power state becomes
/// unknown, as for a lost libvirt connection); when it answers again the host comes back
/// and its share of the network plan is sent again.
extension HostService {
    /// Asks one host's agent for its status and records the outcome.
    func checkAgent(_ name: String) {
        guard let agents = core.agents,
              let (address, wasUp) = core.catalog.withLock({ c in c.hosts[name].map { ($0.record.agent, $0.state == .up) } }),
              !address.isEmpty else { return }
        let outcome: Result<AgentStatus, CloudError>
        do throws(CloudError) { outcome = .success(try agents.status(host: name, address: address)) } catch { outcome = .failure(error) }
        let (isUp, changed) = core.catalog.withLock { c -> (Bool, Bool) in
            guard var h = c.hosts[name], h.record.agent == address else { return (false, false) }
            let before = h.agentStatus
            switch outcome {
            case .success(let s): h.agentStatus = s; h.agentError = ""
            case .failure(let e): h.agentStatus = nil; h.agentError = e.reason
            }
            c.hosts[name] = h
            return (h.state == .up, before != h.agentStatus)
        }
        switch outcome {
        case .failure(let e) where wasUp:
            core.events.append(kind: "host.down", object: name, ["reason": e.reason])
            instances?.hostWentDown(name)
        case .success(let s) where isUp && !wasUp:
            core.events.append(kind: "host.agent_up", object: name, ["agent": address, "tunnel_ip": s.tunnelIP])
            instances?.hostCameBack(name)
        default: break
        }
        if changed { core.announce(.host, name) }
        if case .success = outcome, isUp { agentAnswered(name) }
    }
}
