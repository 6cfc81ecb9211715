/// Nova's `vm_state`: the stable state an instance rests in (nova/compute/vm_states.py).
public enum VmState: String, Sendable, Codable, CaseIterable {
    case building, active, stopped, paused, suspended, rescued, resized, error, deleted
}

/// Nova's `task_state`: the transition in progress, `none` when idle
/// (nova/compute/task_states.py). Only the states this build of cloudfs enters are listed.
public enum TaskState: String, Sendable, Codable, CaseIterable {
    case none
    case scheduling, networking, blockDeviceMapping = "block_device_mapping", spawning
    case deleting
    case poweringOff = "powering_off", poweringOn = "powering_on"
    case rebooting, rebootingHard = "rebooting_hard"
    case pausing, unpausing, suspending, resuming, rebuilding
    case resizePrep = "resize_prep", resizeMigrating = "resize_migrating", resizeFinish = "resize_finish"
    case resizeReverting = "resize_reverting", resizeConfirming = "resize_confirming"
    case migrating
}

/// Nova's `power_state`: what the hypervisor reports (nova/compute/power_state.py).
public enum PowerState: String, Sendable, Codable, CaseIterable {
    case nostate, running, paused, shutdown, crashed, suspended
}

/// The API status a user sees, derived from vm_state and task_state exactly as Nova's
/// `nova/api/openstack/common.py` state map does, plus `DELETING` while a delete runs.
public enum InstanceStatus: String, Sendable, Codable {
    case BUILD, ACTIVE, SHUTOFF, PAUSED, SUSPENDED, REBOOT, HARD_REBOOT, REBUILD, RESIZE
    case VERIFY_RESIZE, REVERT_RESIZE, MIGRATING, DELETING, ERROR, RESCUE, DELETED, UNKNOWN

    /// Derives the status from the two Nova state machines.
    public static func derive(vm: VmState, task: TaskState) -> InstanceStatus {
        if task == .deleting { return .DELETING }
        switch vm {
        case .building: return .BUILD
        case .active:
            switch task {
            case .rebooting: return .REBOOT
            case .rebootingHard: return .HARD_REBOOT
            case .rebuilding: return .REBUILD
            case .resizePrep, .resizeMigrating, .resizeFinish: return .RESIZE
            case .migrating: return .MIGRATING
            default: return .ACTIVE
            }
        case .stopped:
            switch task {
            case .rebuilding: return .REBUILD
            case .resizePrep, .resizeMigrating, .resizeFinish: return .RESIZE
            default: return .SHUTOFF
            }
        case .resized: return task == .resizeReverting ? .REVERT_RESIZE : .VERIFY_RESIZE
        case .paused: return .PAUSED
        case .suspended: return .SUSPENDED
        case .rescued: return .RESCUE
        case .error: return task == .rebuilding ? .REBUILD : .ERROR
        case .deleted: return .DELETED
        }
    }
}
