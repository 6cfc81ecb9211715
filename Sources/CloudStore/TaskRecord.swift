import CloudCore
import Foundation
import GRDB

/// Where a task is: queued → running → done | failed; `cancelled` when a delete overtook
/// it, `interrupted` when a restart found it running and settled the instance instead.
public enum TaskRunState: String, Codable, Sendable {
    case queued, running, done, failed, cancelled, interrupted

    /// How a task that ran to its end finished, from its instance afterwards: `done` with
    /// the status it reached, or `failed` with the fault it left when that fault is new
    /// (`faultBefore`: the instance's fault when the task started).
    public static func outcome(vm: VmState, task: TaskState, fault: String, faultBefore: String?) -> (TaskRunState, String) {
        let status = InstanceStatus.derive(vm: vm, task: task).rawValue
        return !fault.isEmpty && fault != faultBefore ? (.failed, status + ": " + fault) : (.done, status)
    }
}

/// A row of `task`: one accepted request on an instance (Nova's instance_actions + the
/// conductor's work queue). Written in the same transaction as the instance's task_state.
public struct TaskRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "task"
    public static let databaseColumnEncodingStrategy = DatabaseColumnEncodingStrategy.convertToSnakeCase
    public var id: Int64?
    public var instanceId: String
    public var instanceName: String
    /// The task's kind (`InstanceTask.kind`), kept as a column so SQL can order by it (a
    /// delete goes first) and an operator can read it.
    public var kind: String
    /// The typed request, stored as JSON (`{"kind":"resize","flavor":"m1.small"}`).
    public var command: InstanceTask
    public var state: TaskRunState
    public var step: String
    public var created: Double
    public var updated: Double
    public var result: String

    init(id: Int64?, instanceId: String, instanceName: String, kind: String, command: InstanceTask,
         state: TaskRunState, step: String, created: Double, updated: Double, result: String) {
        self.id = id; self.instanceId = instanceId; self.instanceName = instanceName; self.kind = kind
        self.command = command; self.state = state; self.step = step
        self.created = created; self.updated = updated; self.result = result
    }

    public init(instanceID: String, instanceName: String, command: InstanceTask) {
        id = nil; instanceId = instanceID; self.instanceName = instanceName; kind = command.kind
        self.command = command; state = .queued; step = ""
        created = Date().timeIntervalSince1970; updated = created; result = ""
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}
