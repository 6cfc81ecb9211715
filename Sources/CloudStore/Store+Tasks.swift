import CloudCore
import Foundation
import GRDB

/// The durable work queue: workers take an instance's next task with compare-and-set,
/// record its steps, and finish it; a restarted engine finds every open task here.
extension Store {
    /// Queues `task` for the instance inside an open transaction.
    static func queue(_ db: Database, _ task: InstanceTask, for r: InstanceRecord) throws {
        var t = TaskRecord(instanceID: r.id, instanceName: r.name, command: task)
        try t.insertRow(db)
    }

    /// Records a new step on the instance's running task (inside an open transaction).
    static func recordStep(_ db: Database, instanceID: String, step: String) throws {
        try db.cachedStatement(sql: "UPDATE task SET step = ?, updated = ? WHERE instance_id = ? AND state = 'running'")
            .execute(arguments: [step, Date().timeIntervalSince1970, instanceID])
    }

    /// Records a step that task_state does not show (e.g. "domain destroyed" in a delete).
    public func recordStep(instanceID: String, _ step: String) throws(CloudError) {
        try write { db in try Self.recordStep(db, instanceID: instanceID, step: step) }
    }

    /// Takes the instance's next task: a delete first, then the oldest queued one (a task
    /// already `running` is one a restart gave back). Marks it running; nil when none.
    /// `othersOpen`: whether the instance had another open task besides it (read by the
    /// same statement); when it had none, a worker need not look again unless a task was
    /// dispatched since (see `TaskWorker.work`).
    public func takeTask(instanceID: String) throws(CloudError) -> (task: TaskRecord, othersOpen: Bool)? {
        try write { db in
            let open = try TaskRecord.fetchAll(db.cachedStatement(sql: """
                SELECT * FROM task WHERE instance_id = ? AND state IN ('queued','running')
                ORDER BY (kind = 'delete') DESC, (state = 'running') DESC, id LIMIT 2
                """), arguments: [instanceID])
            guard var t = open.first else { return nil }
            t.state = .running
            t.updated = Date().timeIntervalSince1970
            try db.cachedStatement(sql: "UPDATE task SET state = ?, updated = ? WHERE id = ?")
                .execute(arguments: [t.state.rawValue, t.updated, t.id])
            return (t, open.count > 1)
        }
    }

    /// Lets the running task `taskID` end with the commit that next returns its instance to
    /// task_state none (`update(instanceID:…)`), in that commit's transaction: one write
    /// fewer, and no window in which the instance is settled but its task still `running`
    /// (which a restart would report as interrupted). Only for tasks whose return to none
    /// is their last step. `faultBefore` is the instance's fault when the task started: a
    /// new fault fails the task, as `finishTask`'s caller decides.
    public func endTaskWithItsLastCommit(instanceID: String, taskID: Int64, faultBefore: String?) {
        taskEndings.withLock { $0[instanceID] = TaskEnding(taskID: taskID, faultBefore: faultBefore) }
    }

    /// Forgets the registration; true when a commit ended the task (nothing left to finish).
    public func taskEndedByItsLastCommit(instanceID: String) -> Bool {
        taskEndings.withLock { $0.removeValue(forKey: instanceID)?.ended ?? false }
    }

    /// Ends the registered task inside the transaction that settled `r`.
    static func end(_ db: Database, _ e: TaskEnding, with r: InstanceRecord) throws {
        let (state, result) = TaskRunState.outcome(vm: r.vmState, task: r.taskState, fault: r.fault, faultBefore: e.faultBefore)
        try db.cachedStatement(sql: "UPDATE task SET state = ?, result = ?, updated = ? WHERE id = ? AND state = 'running'")
            .execute(arguments: [state.rawValue, result, Date().timeIntervalSince1970, e.taskID])
    }

    /// Ends a task with `state` and a one-line result.
    public func finishTask(id: Int64, _ state: TaskRunState, result: String) throws(CloudError) {
        try write { db in
            try db.cachedStatement(sql: "UPDATE task SET state = ?, result = ?, updated = ? WHERE id = ?")
                .execute(arguments: [state.rawValue, result, Date().timeIntervalSince1970, id])
        }
    }

    /// Every queued or running task, oldest first.
    public func openTasks() throws(CloudError) -> [TaskRecord] {
        try read { db in
            try TaskRecord.fetchAll(db, sql: "SELECT * FROM task WHERE state IN ('queued','running') ORDER BY id")
        }
    }

    /// The instance's tasks, newest first (its action history).
    public func tasks(instanceID: String, limit: Int = 50) throws(CloudError) -> [TaskRecord] {
        try read { db in
            try TaskRecord.fetchAll(db, sql: "SELECT * FROM task WHERE instance_id = ? ORDER BY id DESC LIMIT ?",
                                    arguments: [instanceID, limit])
        }
    }

    /// Keeps the newest `keep` finished tasks; older history is dropped at start-up.
    public func pruneTasks(keep: Int = 10_000) throws(CloudError) {
        try write { db in
            try db.execute(sql: """
                DELETE FROM task WHERE state NOT IN ('queued','running')
                AND id < (SELECT COALESCE(MIN(id), 0) FROM (SELECT id FROM task ORDER BY id DESC LIMIT ?))
                """, arguments: [keep])
        }
    }
}

/// A running task registered to end with its instance's settling commit.
struct TaskEnding: Sendable {
    let taskID: Int64
    let faultBefore: String?
    var ended = false
}
