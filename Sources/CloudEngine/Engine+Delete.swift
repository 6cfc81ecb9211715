import CloudCore
import CloudStore
import Foundation

/// Nova's terminate_instance: destroy + undefine the domain, remove the disk, release the
/// IPs and the claim, then remove the row. Every step is idempotent, so a delete
/// interrupted by a crash is simply run again.
extension Engine {
    func delete(_ id: String) {
        guard let r = current(id) else { return }
        let t0 = Date()
        var lastError = ""
        for attempt in 1...3 {
            if let host = r.host, let conn = connection(forHost: host) {
                do { try conn.destroy(uuid: r.id) } catch {
                    lastError = error.reason
                    Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
                    continue
                }
            } else if let host = r.host, catalog.withLock({ $0.hosts[host] != nil }) {
                lastError = "host \(host) is down; the domain could not be destroyed"
                break
            }
            lastError = ""
            break
        }
        if !lastError.isEmpty {
            let reason = lastError
            // Keep the instance so nothing leaks silently: rmdir again retries.
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, evenIfDeleting: true) { x in
                    x.deleteRequested = false; x.taskState = .none; x.vmState = .error; x.fault = "delete failed: \(reason)"
                }
            }, event: { [self] _ in events.append(kind: "instance.error", object: r.name, ["fault": "delete failed: \(reason)"]) })
            return
        }
        // Delete steps leave task_state at `deleting`, so the task records them itself.
        try? store.recordStep(instanceID: id, "domain_destroyed")
        CrashPoints.pass("delete.destroyed")
        let released = releaseResources(r)
        try? store.recordStep(instanceID: id, "released:" + (released.isEmpty ? "-" : released.joined(separator: ",")))
        CrashPoints.pass("delete.released")
        mutation.lock()
        var wake: [@Sendable (InstanceInfo?) -> Void] = []
        do {
            try store.deleteInstance(id: id)
            catalog.withLock { c in
                c.remove(instanceID: id)
                wake = Array((c.waiters.removeValue(forKey: r.name) ?? [:]).values)
            }
        } catch { log.error("delete \(r.name): \(error)") }
        mutation.unlock()
        events.append(kind: "instance.deleted", object: r.name, ["took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
        announce(ChangeNotice(.instance, r.name))
        if let g = r.groupName { announce(ChangeNotice(.group, g)) }
        for w in wake { w(nil) }
    }
}
