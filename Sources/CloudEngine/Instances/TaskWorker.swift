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

    /// The worker: takes tasks until the queue is empty and no `dispatch` came meanwhile.
    /// A task that cannot be taken or finished (the store fails) stops the worker: the row
    /// stays open and the next start resumes or settles it.
    private func work(_ id: String) {
        while true {
            let kick = core.catalog.withLock { $0.kicks[id] ?? 0 }
            do throws(CloudError) {
                // Under the mutation lock: a task committed by `commit` is in the catalog
                // too by the time it can be taken.
                core.mutation.lock()
                let next: TaskRecord?
                do throws(CloudError) { next = try core.store.takeTask(instanceID: id) } catch { core.mutation.unlock(); throw error }
                core.mutation.unlock()
                if let t = next { try run(t); continue }
            } catch {
                core.recordFailure(error, kind: "task", object: core.instance(id: id)?.name ?? id, doing: "taking or finishing a task")
                core.catalog.withLock { c in c.busy.remove(id); c.kicks[id] = nil }
                return
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

    /// Carries out one task and records how it ended. A task that throws (a storage or
    /// driver failure it could not settle itself) is recorded in /events and ends
    /// `failed`; the instance is then settled from what its host reports.
    private func run(_ t: TaskRecord) throws(CloudError) {
        let id = t.instanceId
        let faultBefore = core.instance(id: id)?.fault
        var failure: CloudError?
        do throws(CloudError) { try perform(t.command, id) } catch { failure = error }
        if let failure {
            let name = core.instance(id: id)?.name ?? t.instanceName
            core.recordFailure(failure, kind: "instance", object: name, doing: "\(t.kind) task")
            Recovery(ctx: ctx).settle(afterFailed: t.command, id, failure)
        }
        guard let tid = t.id else { return }
        var state = failure == nil ? TaskRunState.done : .failed
        var result = "deleted"
        if let after = core.instance(id: id) {
            result = InstanceStatus.derive(vm: after.vmState, task: after.taskState).rawValue
            if !after.fault.isEmpty && after.fault != faultBefore {
                state = .failed
                result += ": " + after.fault
            } else if let failure {
                result += ": " + failure.reason
            }
        }
        try core.store.finishTask(id: tid, state, result: result)
    }

    /// The task's work.
    private func perform(_ task: InstanceTask, _ id: String) throws(CloudError) {
        switch task {
        case .build: try BuildTask(ctx: ctx).run(id)
        case .delete: try DeleteTask(ctx: ctx).run(id)
        case .power(let action): try PowerActionTask(ctx: ctx).run(id, action)
        case .migrate(let host): try MoveTask(ctx: ctx).run(id, target: host, sourceIsUp: true)
        case .evacuate: try MoveTask(ctx: ctx).run(id, target: nil, sourceIsUp: false)
        case .rebuild: try RebuildTask(ctx: ctx).run(id)
        case .resize(let flavor): try ResizeTask(ctx: ctx).run(id, to: flavor)
        case .confirmResize: try ResizeTask(ctx: ctx).confirm(id)
        case .revertResize: try ResizeTask(ctx: ctx).revert(id)
        }
    }
}
