import CloudCore
import CloudStore
import Foundation

/// Nova's service heartbeat: every host is checked periodically; one that stops answering
/// goes down (its instances show power_state `nostate`) and is reconnected with
/// exponential backoff, then its instances' power states are read again.
extension HostService {
    /// Starts the periodic check (every `interval` seconds). Stops by itself once the
    /// service is gone.
    func startHealthChecks(interval: TimeInterval) {
        healthQueue.asyncAfter(deadline: .now() + interval) { [weak self] in
            guard let self else { return }
            checkHosts()
            startHealthChecks(interval: interval)
        }
    }

    /// One round: live hosts must answer `capacity()`; down hosts are retried when their
    /// backoff (1, 2, 4 … 60 s) has passed.
    func checkHosts() {
        let now = Date()
        let hosts = core.catalog.withLock { Array($0.hosts.values) }
        for h in hosts where !h.record.agent.isEmpty { checkAgent(h.record.name) }
        for h in hosts where !h.record.uri.isEmpty {
            if let conn = h.connection {
                var reason = ""
                if !conn.isAlive() { reason = "the connection is closed" } else {
                    do throws(CloudError) { _ = try conn.capacity() } catch { reason = error.reason }
                }
                if !reason.isEmpty { markDown(h.record.name, reason: reason) }
            } else if now >= h.nextRetry {
                connect(h.record)
                let up = core.catalog.withLock { $0.hosts[h.record.name]?.connection != nil }
                core.catalog.withLock { c in
                    guard var r = c.hosts[h.record.name] else { return }
                    r.failures = up ? 0 : r.failures + 1
                    r.nextRetry = now.addingTimeInterval(up ? 0 : min(60, pow(2, Double(r.failures - 1))))
                    c.hosts[h.record.name] = r
                }
                if up { instances?.hostCameBack(h.record.name) }
            }
        }
    }

    /// Drops a host's connection and shows its instances' power state as unknown.
    func markDown(_ name: String, reason: String) {
        core.catalog.withLock { c in
            c.hosts[name]?.connection = nil
            c.hosts[name]?.lastError = reason
            c.hosts[name]?.failures = 0
            c.hosts[name]?.nextRetry = Date().addingTimeInterval(1)
        }
        core.events.append(kind: "host.down", object: name, ["reason": reason])
        core.announce(.host, name)
        instances?.hostWentDown(name)
    }
}
