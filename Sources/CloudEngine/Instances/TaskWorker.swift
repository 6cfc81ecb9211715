import CloudCore
import CloudStore
import Foundation

/// What every instance task needs: the core and the services it meets.
struct TaskContext: Sendable {
    let core: EngineCore
    let guests: Guests
    let placement: any Placement
    let settings: any SettingsReader
    var hosts: any HostConnections { guests.hosts }
    var networks: any NetworkProvider { guests.networks }
    var images: any ImageProvider { guests.images }
}

/// The task worker (Nova's conductor + compute manager loop over instance actions): each
/// accepted request is a `task` row committed with the instance's new task_state; one
/// worker per instance takes its tasks from SQLite in order — a delete first — so nothing
/// that matters lives only in memory and a restart finds every open task.
final class TaskWorker: @unchecked Sendable {
    // @unchecked: immutable after init; worker bookkeeping lives in the catalog.
    let ctx: TaskContext
    private let jobs: OperationQueue
    private var core: EngineCore { ctx.core }

    init(ctx: TaskContext, maxConcurrentJobs: Int) {
        self.ctx = ctx
        jobs = OperationQueue()
        jobs.name = "cloudfs.engine.jobs"
        jobs.maxConcurrentOperationCount = maxConcurrentJobs
    }

    /// Waits for running tasks (tests, a clean unmount).
    func drain() { jobs.waitUntilAllOperationsAreFinished() }

    /// Makes sure a worker runs the instance's queued tasks. Call after committing a task.
    func dispatch(_ instanceID: String) {
        let start = core.catalog.withLock { c -> Bool in
            c.kicks[instanceID, default: 0] &+= 1
            return c.busy.insert(instanceID).inserted
        }
        guard start else { return }
        jobs.addOperation { [self] in work(instanceID) }
    }

    /// Whether no worker runs the instance's tasks: a commit that queues one under the
    /// mutation lock may then take it for the worker its `dispatch` starts (`handOver`).
    func isIdle(_ instanceID: String) -> Bool {
        core.catalog.withLock { !$0.busy.contains(instanceID) }
    }

    /// The worker: takes tasks until the queue is empty and no `dispatch` came meanwhile.
    /// A task that fails, or cannot be taken or finished (the store fails), stops the
    /// worker: the row stays open for `resumeLeftTasks` or the next start.
    private func work(_ id: String) {
        // The dispatch count read before the last task, and whether the transaction that
        // ended it saw another open task: when it saw none and no dispatch came since, the
        // queue is empty (every task is committed before its dispatch, and that count was
        // read before the ending transaction), and looking again would cost a statement.
        var lastEnd: (kick: UInt64, othersOpen: Bool)?
        while true {
            let kick = core.catalog.withLock { $0.kicks[id] ?? 0 }
            let next: TaskRecord?
            do throws(CloudError) {
                // Under the mutation lock: a task committed by `commit` is in the catalog
                // too by the time it can be taken, and a handed-over one is claimable.
                core.mutation.lock()
                defer { core.mutation.unlock() }
                if let handed = core.store.claimHandedTask(instanceID: id) {
                    next = handed   // taken by the commit that queued it
                } else {
                    let look = lastEnd.map { $0.othersOpen || $0.kick != kick } ?? true
                    next = look ? try core.store.takeTask(instanceID: id) : nil
                }
            } catch {
                core.recordFailure(error, kind: "task", object: core.instance(id: id)?.name ?? id, doing: "taking the next task")
                return stop(id)
            }
            if let t = next {
                do throws(CloudError) { lastEnd = (kick, try run(t)) } catch { return stop(id) }   // recorded by `run`
                continue
            }
            let idle = core.catalog.withLock { c -> Bool in
                guard (c.kicks[id] ?? 0) == kick else { return false }
                c.busy.remove(id)
                c.kicks[id] = nil
                return true
            }
            if idle { return }
        }
    }

    /// Lets go of the instance without finishing its task.
    private func stop(_ id: String) {
        core.catalog.withLock { c in c.busy.remove(id); c.kicks[id] = nil }
    }

    /// Carries out one task and records how it ended. A task that throws (a storage or
    /// driver failure it could not settle itself) is recorded in /events and stays open:
    /// the worker stops, and the reconciler's next sweep (or the next start) resumes or
    /// settles it as a restart would, once the store answers again. Returns whether the
    /// transaction that ended the task saw another open task of the instance.
    private func run(_ t: TaskRecord) throws(CloudError) -> Bool {
        let id = t.instanceId
        let faultBefore = core.instance(id: id)?.fault
        guard let tid = t.id else { try perform(t.command, id); return true }   // no row: look again
        if t.command.endsWithItsSettlingCommit {
            core.store.endTaskWithItsLastCommit(instanceID: id, taskID: tid, faultBefore: faultBefore)
        }
        do throws(CloudError) { try perform(t.command, id) } catch {
            _ = core.store.taskEndedByItsLastCommit(instanceID: id)
            core.recordFailure(error, kind: "instance", object: core.instance(id: id)?.name ?? t.instanceName,
                               doing: "\(t.kind) task (left open: it is resumed once the cause is gone)")
            throw error
        }
        if let othersOpen = core.store.othersOpenAfterItsLastCommit(instanceID: id) { return othersOpen }
        var (state, result) = (TaskRunState.done, "deleted")
        if let after = core.instance(id: id) {
            (state, result) = TaskRunState.outcome(vm: after.vmState, task: after.taskState, fault: after.fault,
                                                   faultBefore: faultBefore)
        }
        do throws(CloudError) { return try core.store.finishTask(id: tid, state, result: result) } catch {
            core.recordFailure(error, kind: "task", object: t.instanceName, doing: "finishing a \(t.kind) task (it is resumed)")
            throw error
        }
    }

    /// Tasks left open with no worker (a worker stopped by a failure) are resumed or
    /// settled as a restart would (`Recovery.resume`), then dispatched. Run by the
    /// reconciler's sweep.
    func resumeLeftTasks() {
        do throws(CloudError) {
            for t in try core.store.openTasks() where t.state == .running {
                // Under the mutation lock: a task a commit handed over is in the store's
                // hand-over by the time its row can be read (`queue`'s `handOver`).
                let (orphaned, handed) = core.mutation.withLock {
                    (isIdle(t.instanceId), core.store.hasHandedTask(instanceID: t.instanceId))
                }
                if orphaned && handed {
                    dispatch(t.instanceId)   // its dispatch had not come yet (or never will)
                } else if orphaned, try Recovery(ctx: ctx).resume(t, cause: "a failure") {
                    dispatch(t.instanceId)
                }
            }
        } catch {
            core.recordFailure(error, kind: "store", object: "-", doing: "looking for tasks a failure left open")
        }
    }

    /// The task's work.
    private func perform(_ task: InstanceTask, _ id: String) throws(CloudError) {
        switch task {
        case .build: try BuildTask(ctx: ctx).run(id)
        case .delete: try DeleteTask(ctx: ctx).run(id)
        case .power(let action): try PowerActionTask(ctx: ctx).run(id, action)
        case .migrate(let host): try MoveTask(ctx: ctx).run(id, target: host, sourceIsUp: true)
        case .liveMigrate(let host): try LiveMigrationTask(ctx: ctx).run(id, target: host)
        case .evacuate: try MoveTask(ctx: ctx).run(id, target: nil, sourceIsUp: false)
        case .rebuild: try RebuildTask(ctx: ctx).run(id)
        case .resize(let flavor): try ResizeTask(ctx: ctx).run(id, to: flavor)
        case .confirmResize: try ResizeTask(ctx: ctx).confirm(id)
        case .revertResize: try ResizeTask(ctx: ctx).revert(id)
        }
    }
}

extension InstanceTask {
    /// Tasks whose return to task_state none is their last step, so that commit may end
    /// the task row in its own transaction (Store.endTaskWithItsLastCommit): a build (ACTIVE
    /// or ERROR) and a power action. The others go on after it (a migration's clean-up, a
    /// resize's confirm window) and are finished on their own.
    var endsWithItsSettlingCommit: Bool {
        switch self {
        case .build, .power: true
        default: false
        }
    }
}
