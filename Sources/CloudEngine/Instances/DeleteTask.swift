import CloudCore
import CloudStore
import Foundation

/// Nova's terminate_instance: destroy + undefine the domain, remove the disk, release the
/// IPs and the claim, then remove the row. Every step is idempotent, so a delete
/// interrupted by a crash is simply run again.
struct DeleteTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    func run(_ id: String) throws(CloudError) {
        guard let r = core.instance(id: id) else { return }
        let t0 = Date()
        var lastError = ""
        for attempt in 1...3 {
            if let host = r.host, let conn = ctx.hosts.connection(forHost: host) {
                do throws(CloudError) { try conn.destroy(uuid: r.id) } catch {
                    lastError = error.reason
                    Thread.sleep(forTimeInterval: 0.2 * Double(attempt))
                    continue
                }
            } else if let host = r.host, ctx.hosts.hostExists(host) {
                lastError = "host \(host) is down; the domain could not be destroyed"
                break
            }
            lastError = ""
            break
        }
        if !lastError.isEmpty { return try keep(r, because: lastError) }
        // Delete steps leave task_state at `deleting`, so the task records them itself.
        try core.store.recordStep(instanceID: id, "domain_destroyed")
        CrashPoints.pass("delete.destroyed")
        let released = try ctx.guests.release(r)
        try core.store.recordStep(instanceID: id, "released:" + (released.isEmpty ? "-" : released.joined(separator: ",")))
        CrashPoints.pass("delete.released")
        try core.removeInstance(r) {
            core.events.append(kind: "instance.deleted", object: r.name, ["took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
        }
        if let g = r.groupName { core.announce(.group, g) }
    }

    /// A delete that cannot destroy the domain keeps the instance, in ERROR with the
    /// reason, so nothing leaks silently: rmdir again retries.
    func keep(_ r: InstanceRecord, because reason: String) throws(CloudError) {
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, evenIfDeleting: true) { x in
                x.deleteRequested = false; x.taskState = .none; x.vmState = .error; x.fault = "delete failed: \(reason)"
            }
        }, event: { _ in core.events.append(kind: "instance.error", object: r.name, ["fault": "delete failed: \(reason)"]) })
    }
}
