/// Nova's preconditions for server actions (compute/api.py `check_instance_state`): the
/// vm_states each action is valid in. The engine refuses anything else with EBUSY; a
/// client (the dashboard) offers only what these allow, so both read one table.
extension PowerAction {
    /// The vm_states the action may start from.
    public var allowedFrom: Set<VmState> {
        switch self {
        case .start: [.stopped]
        case .stop: [.active, .error]
        case .reboot, .pause, .suspend: [.active]
        case .rebootHard: [.active, .stopped, .paused, .suspended, .error]
        case .unpause: [.paused]
        case .resume: [.suspended]
        }
    }
}

extension InstanceAction {
    /// Rebuild (`ctl rebuild` or a write to `image`): active, stopped or error.
    public static let rebuildFrom: Set<VmState> = [.active, .stopped, .error]
    /// Resize (a write to `flavor`): active or stopped.
    public static let resizeFrom: Set<VmState> = [.active, .stopped]
    /// Cold migration: active.
    public static let migrateFrom: Set<VmState> = [.active]
    /// Live migration: active or paused (Nova's check_instance_state for live_migrate).
    public static let liveMigrateFrom: Set<VmState> = [.active, .paused]

    /// The `ctl` verbs Nova would accept now for an instance in these states: every action
    /// needs an idle instance (task_state none) that has a host; `lock` or `unlock` by
    /// whether it is locked. Resize is a write to `flavor`, so it is not among them.
    public static func offered(vm: VmState, task: TaskState, hasHost: Bool, locked: Bool) -> [String] {
        var verbs: [String] = []
        if task == .none, hasHost {
            verbs += PowerAction.allCases.filter { $0.allowedFrom.contains(vm) }.map(\.rawValue)
            if rebuildFrom.contains(vm) { verbs.append("rebuild") }
            if vm == .resized { verbs += ["confirm-resize", "revert-resize"] }
            if migrateFrom.contains(vm) { verbs.append("migrate") }
            if liveMigrateFrom.contains(vm) { verbs.append("live-migrate") }
        }
        verbs.append(locked ? "unlock" : "lock")
        return verbs
    }
}
