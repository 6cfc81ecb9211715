import CloudCore
import CloudStore
import Foundation

/// The task_state each power action runs under (its preconditions are CloudCore's
/// `PowerAction.allowedFrom`).
extension PowerAction {
    var taskState: TaskState {
        switch self {
        case .start: .poweringOn
        case .stop: .poweringOff
        case .reboot: .rebooting
        case .rebootHard: .rebootingHard
        case .pause: .pausing
        case .unpause: .unpausing
        case .suspend: .suspending
        case .resume: .resuming
        }
    }

    /// The event kind its success is told with: `instance.stop`, `instance.reboot_hard` ...
    var eventKind: String { "instance." + String(rawValue.map { $0 == " " ? "_" : $0 }) }
}

/// Carries out an accepted power action on the instance's host (Nova's compute manager
/// power_on/power_off/reboot/pause/unpause/suspend/resume) and settles its states; a
/// failure keeps the vm_state and tells why in `fault`.
struct PowerActionTask {
    let ctx: TaskContext
    private var core: EngineCore { ctx.core }

    func run(_ id: String, _ action: PowerAction) throws(CloudError) {
        guard let r = core.instance(id: id), r.taskState == action.taskState else { return }
        var vm = r.vmState
        var note = ""
        let power: PowerState?
        do throws(CloudError) {
            let conn = try ctx.guests.connection(r.host)
            // A domain that vanished behind our back is defined again over the instance's
            // disk by the actions that power it on (Nova's hard reboot re-creates the guest).
            if [.start, .rebootHard, .resume].contains(action), try conn.powerState(uuid: id) == nil {
                _ = try ctx.guests.startDomain(r, on: conn, stopped: true)
                core.events.append(kind: "instance.redefined", object: r.name, ["host": r.host ?? "?"])
            }
            let timeout = ctx.settings.seconds(.shutdownTimeout)
            switch action {
            case .start, .resume:
                try conn.perform(.start, uuid: id); vm = .active
            case .stop:
                note = try ctx.guests.cleanShutdown(conn, id, timeout: timeout); vm = .stopped
            case .reboot:
                note = try ctx.guests.cleanShutdown(conn, id, timeout: timeout)
                try conn.perform(.start, uuid: id); vm = .active
            case .rebootHard:
                if let p = try conn.powerState(uuid: id), p != .shutdown { try conn.perform(.powerOff, uuid: id) }
                try conn.perform(.start, uuid: id); vm = .active
            case .pause: try conn.perform(.pause, uuid: id); vm = .paused
            case .unpause: try conn.perform(.unpause, uuid: id); vm = .active
            case .suspend: try conn.perform(.managedSave, uuid: id); vm = .suspended
            }
            CrashPoints.pass("action.performed")
            power = ctx.guests.power(of: id, on: conn)
        } catch {
            let reason = "\(action.rawValue) failed: \(error.reason)"
            try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: id, expecting: [action.taskState]) { x in x.taskState = .none; x.fault = reason }
            }, event: { _ in
                core.events.append(kind: "instance.action_failed", object: r.name, ["action": action.rawValue, "reason": reason])
            })
            return
        }
        let newVM = vm
        try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: id, expecting: [action.taskState]) { x in
                x.vmState = newVM; x.taskState = .none; x.powerState = power ?? .nostate; x.fault = ""
            }
        }, event: { x in
            var fields: KeyValuePairs<String, String> = ["status": x.vmState.rawValue]
            if !note.isEmpty { fields = ["status": x.vmState.rawValue, "note": note] }
            core.events.append(kind: action.eventKind, object: r.name, fields)
        })
    }
}
