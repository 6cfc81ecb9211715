import CloudCore
import Foundation
import GRDB

/// The durable work queue: workers take an instance's next task with compare-and-set,
/// record its steps, and finish it; a restarted engine finds every open task here.
extension Store {
    /// Queues `task` for the instance inside an open transaction. `handOver`: the caller
    /// knows no worker runs the instance's tasks and dispatches one after the commit, so
    /// this transaction takes the task itself (writes it `running`) unless another task is
    /// open, and returns it for `keepHanded(_:)`: the worker's take, a write transaction
    /// of its own, is saved. `newInstance`: the row was inserted by this transaction, so
    /// no other task can be open.
    @discardableResult
    static func queue(_ db: Database, _ task: InstanceTask, for r: InstanceRecord, handOver: Bool = false,
                      newInstance: Bool = false) throws -> TaskRecord? {
        var t = TaskRecord(instanceID: r.id, instanceName: r.name, command: task)
        let take = try handOver && (newInstance || !hasOpenTask(db, instanceID: r.id))
        if take { t.state = .running }
        try t.insertRow(db)
        return take ? t : nil
    }

    /// Two index seeks: `state IN (...)` would fill a temporary table with the list at
    /// every execution (about half the statement's cost).
    static func hasOpenTask(_ db: Database, instanceID: String) throws -> Bool {
        try Bool.fetchOne(db.cachedStatement(sql: """
            SELECT EXISTS (SELECT 1 FROM task WHERE instance_id = ?1 AND state = 'queued')
                OR EXISTS (SELECT 1 FROM task WHERE instance_id = ?1 AND state = 'running')
            """), arguments: [instanceID]) ?? false
    }

    /// Keeps a task its queueing transaction took (after that transaction committed) for
    /// the worker that `claimHandedTask` lets run it.
    func keepHanded(_ t: TaskRecord) {
        handedTasks.withLock { $0[t.instanceId] = t }
    }

    /// The task a queueing commit took for the instance's next worker, now that one runs
    /// it (nil when none waits). Call under the same lock as the commits that hand over.
    public func claimHandedTask(instanceID: String) -> TaskRecord? {
        handedTasks.withLock { $0.removeValue(forKey: instanceID) }
    }

    /// Whether a task was handed over and no worker has claimed it yet.
    public func hasHandedTask(instanceID: String) -> Bool {
        handedTasks.withLock { $0[instanceID] != nil }
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
    public func takeTask(instanceID: String) throws(CloudError) -> TaskRecord? {
        try write { db in
            guard var t = try TaskRecord.fetchOne(db.cachedStatement(sql: """
                SELECT * FROM task WHERE instance_id = ? AND state IN ('queued','running')
                ORDER BY (kind = 'delete') DESC, (state = 'running') DESC, id LIMIT 1
                """), arguments: [instanceID]) else { return nil }
            t.state = .running
            t.updated = Date().timeIntervalSince1970
            try db.cachedStatement(sql: "UPDATE task SET state = ?, updated = ? WHERE id = ?")
                .execute(arguments: [t.state.rawValue, t.updated, t.id])
            return t
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
        othersOpenAfterItsLastCommit(instanceID: instanceID) != nil
    }

    /// Forgets the registration. When a commit ended the task: whether that commit saw
    /// another task of the instance open (so a worker knows if it must look again without
    /// a statement of its own); nil when no commit ended it.
    public func othersOpenAfterItsLastCommit(instanceID: String) -> Bool? {
        taskEndings.withLock { t in
            guard let e = t.removeValue(forKey: instanceID), e.ended else { return nil }
            return e.othersOpen
        }
    }

    /// Ends the registered task inside the transaction that settled `r`.
    static func end(_ db: Database, _ e: TaskEnding, with r: InstanceRecord) throws {
        let (state, result) = TaskRunState.outcome(vm: r.vmState, task: r.taskState, fault: r.fault, faultBefore: e.faultBefore)
        try db.cachedStatement(sql: "UPDATE task SET state = ?, result = ?, updated = ? WHERE id = ? AND state = 'running'")
            .execute(arguments: [state.rawValue, result, Date().timeIntervalSince1970, e.taskID])
    }

    /// Ends a task with `state` and a one-line result. Returns whether the same
    /// transaction saw another task of its instance open, as the ending commit of a build
    /// or power task tells (`othersOpenAfterItsLastCommit`): a worker that was told none
    /// need not look again unless a task was dispatched since (see `TaskWorker.work`).
    @discardableResult
    public func finishTask(id: Int64, _ state: TaskRunState, result: String) throws(CloudError) -> Bool {
        try write { db in
            // The update names the task's instance itself (RETURNING): no second read.
            guard let instanceID = try String.fetchOne(db.cachedStatement(sql: """
                UPDATE task SET state = ?, result = ?, updated = ? WHERE id = ? RETURNING instance_id
                """), arguments: [state.rawValue, result, Date().timeIntervalSince1970, id]) else { return false }
            return try Self.hasOpenTask(db, instanceID: instanceID)
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
    /// Whether the ending transaction saw another open task of the instance.
    var othersOpen = false
}
