import CloudCore
import CloudStore
import Foundation

/// Nova's server actions through `ctl`, with Nova's preconditions (compute/api.py
/// `check_instance_state`): an action not valid in the current state is refused with EBUSY
/// and the reason; a locked instance refuses every action from non-admins (EPERM).
extension Engine {
    /// One action's rule: the vm_states it is valid in, and the task_state it runs under.
    struct ActionRule {
        var from: Set<VmState>
        var task: TaskState
    }

    static let actionRules: [String: ActionRule] = [
        "start": ActionRule(from: [.stopped], task: .poweringOn),
        "stop": ActionRule(from: [.active, .error], task: .poweringOff),
        "reboot": ActionRule(from: [.active], task: .rebooting),
        "reboot hard": ActionRule(from: [.active, .stopped, .paused, .suspended, .error], task: .rebootingHard),
        "pause": ActionRule(from: [.active], task: .pausing),
        "unpause": ActionRule(from: [.paused], task: .unpausing),
        "suspend": ActionRule(from: [.active], task: .suspending),
        "resume": ActionRule(from: [.suspended], task: .resuming),
    ]

    public func instanceAction(_ name: String, action: String, caller: Caller) throws(CloudError) {
        let words = action.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let verb = words.joined(separator: " ")
        if words.first == "migrate" {
            try checkLock(name, caller)
            return try requestMigrate(name, action: verb, caller: caller)
        }
        if verb == "lock" || verb == "unlock" { return try setLock(name, verb == "lock", caller: caller) }
        if verb == "rebuild" { return try requestRebuild(name, image: nil, caller: caller) }
        if verb == "confirm-resize" || verb == "revert-resize" {
            return try requestResizeDecision(name, confirm: verb == "confirm-resize", caller: caller)
        }
        let r = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            guard let rule = Self.actionRules[verb] else {
                throw CloudError.invalid("unknown action '\(action.prefix(40))'; actions: "
                                         + (Self.actionRules.keys.sorted() + ["rebuild", "confirm-resize", "revert-resize", "lock", "unlock", "migrate [HOST]"]).joined(separator: ", "))
            }
            let r = try actionTarget(name, caller)
            let status = InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue
            guard r.taskState == .none, rule.from.contains(r.vmState), r.host != nil else {
                throw CloudError.busy("cannot \(verb) \(name) while it is \(status)")
            }
            guard let moved = commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(.action, verb)) { $0.taskState = rule.task }
            }) else { throw CloudError.busy("\(name) is busy") }
            return moved
        }
        events.append(kind: "instance.action", object: name, ["action": verb, "uid": "\(caller.uid)"])
        dispatch(r.id)
    }

    func checkLock(_ name: String, _ caller: Caller) throws(CloudError) {
        try refusing("instance", name, caller) { () throws(CloudError) in
            if let r = catalog.withLock({ $0.instances[name] }), r.locked, !caller.isAdmin {
                throw CloudError.notPermitted("instance '\(name)' is locked")
            }
        }
    }

    /// Nova's lock/unlock: the owner or an admin may lock; only they may unlock.
    func setLock(_ name: String, _ locked: Bool, caller: Caller) throws(CloudError) {
        try refusing("instance", name, caller) { () throws(CloudError) in
            guard let r = catalog.withLock({ $0.instances[name] }) else { throw CloudError.notFound("no instance named '\(name)'") }
            guard caller.isAdmin || UInt32(r.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "instance '\(name)' is not yours") }
            commitInstance { (e) throws(CloudError) in try e.store.update(instanceID: r.id, evenIfDeleting: true) { $0.locked = locked } }
        }
        events.append(kind: locked ? "instance.locked" : "instance.unlocked", object: name, ["uid": "\(caller.uid)"])
    }

    /// Carries out an accepted action on the instance's host and settles its states.
    func runAction(_ id: String, _ verb: String) {
        guard let r = current(id),
              let rule = Self.actionRules[verb], r.taskState == rule.task else { return }
        var vm = r.vmState
        var note = ""
        do throws(CloudError) {
            guard let host = r.host, let conn = connection(forHost: host) else {
                throw CloudError.io("host \(r.host ?? "?") is not connected")
            }
            // A domain that vanished behind our back is defined again over the instance's
            // disk by the actions that power it on (Nova's hard reboot re-creates the guest).
            if ["start", "reboot hard", "resume"].contains(verb), try conn.powerState(uuid: id) == nil {
                _ = try startDomain(r, on: conn, stopped: true)
                events.append(kind: "instance.redefined", object: r.name, ["host": host])
            }
            switch verb {
            case "start", "resume":
                try conn.perform(.start, uuid: id); vm = .active
            case "stop":
                note = try cleanShutdown(conn, id); vm = .stopped
            case "reboot":
                note = try cleanShutdown(conn, id)
                try conn.perform(.start, uuid: id); vm = .active
            case "reboot hard":
                if let p = try conn.powerState(uuid: id), p != .shutdown { try conn.perform(.powerOff, uuid: id) }
                try conn.perform(.start, uuid: id); vm = .active
            case "pause": try conn.perform(.pause, uuid: id); vm = .paused
            case "unpause": try conn.perform(.unpause, uuid: id); vm = .active
            case "suspend": try conn.perform(.managedSave, uuid: id); vm = .suspended
            default: return
            }
            CrashPoints.pass("action.performed")
            let power = (try? conn.powerState(uuid: id)) ?? nil
            let newVM = vm
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [rule.task]) { x in
                    x.vmState = newVM; x.taskState = .none; x.powerState = power ?? .nostate; x.fault = ""
                }
            }, event: { [self] x in
                var fields: KeyValuePairs<String, String> = ["status": x.vmState.rawValue]
                if !note.isEmpty { fields = ["status": x.vmState.rawValue, "note": note] }
                events.append(kind: "instance.\(verb.replacingOccurrences(of: " ", with: "_"))", object: r.name, fields)
            })
        } catch {
            let reason = "\(verb) failed: \(error.reason)"
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [rule.task]) { x in x.taskState = .none; x.fault = reason }
            }, event: { [self] _ in events.append(kind: "instance.action_failed", object: r.name, ["action": verb, "reason": reason]) })
        }
    }

    /// Nova's clean shutdown: ask the guest (ACPI), wait up to `shutdownTimeout`, then power
    /// off. Returns a note when it had to force it.
    func cleanShutdown(_ conn: any ComputeConnection, _ id: String) throws(CloudError) -> String {
        guard let p = try conn.powerState(uuid: id), p != .shutdown else { return "" }
        if p == .running { try? conn.perform(.shutdown, uuid: id) }
        let deadline = Date().addingTimeInterval(p == .running ? configSeconds(.shutdownTimeout) : 0)
        while Date() < deadline {
            if try conn.powerState(uuid: id) == .shutdown { return "" }
            usleep(100_000)
        }
        try conn.perform(.powerOff, uuid: id)
        return "the guest did not shut down within \(Int(configSeconds(.shutdownTimeout))) s; powered off"
    }
}
