import CloudCore
import CloudStore
import Foundation

/// Nova's rebuild: the same instance (name, uuid, fixed IP, MAC, host) on a fresh disk
/// made from its image — the current one (`echo rebuild > ctl`) or a new one
/// (`echo IMAGE > image`, already recorded on the row). A stopped instance stays stopped.
struct RebuildTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    func run(_ id: String) throws(CloudError) {
        guard let r = core.instance(id: id), r.taskState == .rebuilding else { return }
        let keepStopped = r.vmState == .stopped
        let outcome: (xml: String, power: PowerState?)
        do throws(CloudError) {
            let conn = try ctx.guests.connection(r.host)
            try conn.destroy(uuid: id)
            let spec = try ctx.guests.domainSpec(r)
            // A new file, not the old one rewritten (the console log stays).
            try ctx.guests.removeDisk(id, host: r.host)
            try ctx.guests.makeDisk(r)
            CrashPoints.pass("rebuild.disk")
            outcome = try ctx.guests.startDomain(r, on: conn, spec: spec, stopped: keepStopped)
        } catch {
            let reason = "rebuild failed: \(error.reason)"
            try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: id, expecting: [.rebuilding]) { x in
                    x.vmState = .error; x.taskState = .none; x.fault = reason
                }
            }, event: { _ in core.events.append(kind: "instance.error", object: r.name, ["fault": reason]) })
            return
        }
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [.rebuilding]) { x in
                x.vmState = keepStopped ? .stopped : .active; x.taskState = .none
                x.powerState = outcome.power ?? .nostate; x.domainXml = outcome.xml; x.fault = ""
            }
        }, event: { x in
            core.events.append(kind: "instance.rebuilt", object: r.name, ["image": x.imageName, "host": r.host ?? "?"])
        })
    }
}
