import CloudCore
import CloudStore
import Foundation

/// Host registration through the tree and Nova's service heartbeat: every host is checked
/// periodically; one that stops answering goes down (its instances show power_state
/// `nostate`) and is reconnected with exponential backoff, then its instances' power
/// states are read again.
extension Engine {
    public func createHost(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("host", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "host")
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may register hosts") }
            try catalog.withLock { c throws(CloudError) in
                guard c.hosts[name] == nil else { throw CloudError.exists("host '\(name)' already exists") }
                // Not stored until its URI is written: a host without a URI holds nothing.
                c.hosts[name] = HostRuntime(record: HostRecord(name: name, uri: ""), lastError: "no uri yet")
            }
        }
        events.append(kind: "host.created", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.host, name))
    }

    public func deleteHost(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("host", name, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may remove hosts") }
            guard let h = catalog.withLock({ $0.hosts[name] }) else { throw CloudError.notFound("no host named '\(name)'") }
            let users = catalog.withLock { $0.usage(of: name).names }
            guard users.isEmpty else {
                throw CloudError.busy("host '\(name)' has instance(s) \(users.prefix(5).joined(separator: ", "))")
            }
            mutation.lock(); defer { mutation.unlock() }
            if !h.record.uri.isEmpty { try store.deleteHost(name) }
            catalog.withLock { $0.hosts[name] = nil }
        }
        events.append(kind: "host.deleted", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.host, name))
    }

    /// `echo URI > /hosts/NAME/uri`: stores the host and connects it (a URI that does not
    /// answer leaves it down, retried by the health check). `EBUSY` while it has instances.
    func registerURI(_ name: String, _ uri: String) throws(CloudError) {
        guard uri.contains(":"), uri.utf8.count <= 1024, !uri.contains(where: { $0.isWhitespace }) else {
            throw CloudError.invalid("'\(uri.prefix(80))' is not a libvirt URI (e.g. qemu:///system, test:///path/node.xml)")
        }
        guard catalog.withLock({ $0.usage(of: name).names.isEmpty }) else {
            throw CloudError.busy("host '\(name)' has instances; its URI cannot change")
        }
        if let other = catalog.withLock({ c in c.hosts.values.first { $0.record.uri == uri && $0.record.name != name } }) {
            throw CloudError.exists("URI \(uri) is already host '\(other.record.name)'")
        }
        guard var rec = catalog.withLock({ $0.hosts[name]?.record }) else { throw CloudError.notFound("no host named '\(name)'") }
        let wasStored = !rec.uri.isEmpty
        rec.uri = uri
        mutation.lock()
        do throws(CloudError) {
            if wasStored { try store.updateHost(rec) } else { _ = try store.registerHost(rec) }
        } catch { mutation.unlock(); throw error }
        let stored = HostRecord(name: rec.name, uri: rec.uri, enabled: rec.enabled,
                                created: Date(timeIntervalSince1970: rec.created), availabilityZone: rec.availabilityZone)
        catalog.withLock { $0.hosts[name] = HostRuntime(record: stored) }
        mutation.unlock()
        events.append(kind: "host.registered", object: name, ["uri": uri])
        connect(rec)
    }

    /// Starts the periodic check (Nova's service heartbeat; every `interval` seconds).
    /// Stops by itself once the engine is gone.
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
        let hosts = catalog.withLock { Array($0.hosts.values) }
        for h in hosts where !h.record.uri.isEmpty {
            if let conn = h.connection {
                var reason = ""
                if !conn.isAlive() { reason = "the connection is closed" } else {
                    do throws(CloudError) { _ = try conn.capacity() } catch { reason = error.reason }
                }
                if !reason.isEmpty { markDown(h.record.name, reason: reason) }
            } else if now >= h.nextRetry {
                connect(h.record)
                let up = catalog.withLock { $0.hosts[h.record.name]?.connection != nil }
                catalog.withLock { c in
                    guard var r = c.hosts[h.record.name] else { return }
                    r.failures = up ? 0 : r.failures + 1
                    r.nextRetry = now.addingTimeInterval(up ? 0 : min(60, pow(2, Double(r.failures - 1))))
                    c.hosts[h.record.name] = r
                }
                if up {
                    destroyEvacuatedDomains(on: h.record.name)
                    resyncInstances(on: h.record.name)
                }
            }
        }
    }

    /// Drops a host's connection and shows its instances' power state as unknown.
    func markDown(_ name: String, reason: String) {
        catalog.withLock { c in
            c.hosts[name]?.connection = nil
            c.hosts[name]?.lastError = reason
            c.hosts[name]?.failures = 0
            c.hosts[name]?.nextRetry = Date().addingTimeInterval(1)
        }
        events.append(kind: "host.down", object: name, ["reason": reason])
        announce(ChangeNotice(.host, name))
        let ids = catalog.withLock { c in c.instances.values.filter { $0.host == name }.map(\.id) }
        for id in ids {
            commitInstance { (e) throws(CloudError) in try e.store.update(instanceID: id) { $0.powerState = .nostate } }
        }
    }

    func resyncInstances(on host: String) {
        guard let conn = connection(forHost: host), let domains = try? conn.listDomains() else { return }
        syncHost(host, domains: domains)
    }
}
