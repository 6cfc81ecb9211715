import CloudCore
import CloudStore
import Foundation

/// The task worker (Nova's conductor + compute manager loop over instance actions): each
/// accepted request is a `task` row committed with the instance's new task_state; one
/// worker per instance takes its tasks from SQLite in order — a delete first — so nothing
/// that matters lives only in memory and a restart finds every open task.
extension Engine {
    /// Makes sure a worker runs the instance's queued tasks. Call after committing a task.
    func dispatch(_ instanceID: String) {
        let start = catalog.withLock { c -> Bool in
            c.kicks[instanceID, default: 0] &+= 1
            return c.busy.insert(instanceID).inserted
        }
        guard start else { return }
        jobs.addOperation { [self] in work(instanceID) }
    }

    /// The worker: takes tasks until the queue is empty and no `dispatch` came meanwhile.
    private func work(_ id: String) {
        while true {
            let kick = catalog.withLock { $0.kicks[id] ?? 0 }
            do {
                // Under the mutation lock: a task committed by `commitInstance` is in the
                // catalog too by the time it can be taken.
                mutation.lock()
                let next: TaskRecord?
                do { next = try store.takeTask(instanceID: id) } catch { mutation.unlock(); throw error }
                mutation.unlock()
                if let t = next { run(t); continue }
            } catch {
                log.error("cannot take a task for \(id): \(error)")
            }
            let idle = catalog.withLock { c -> Bool in
                guard (c.kicks[id] ?? 0) == kick else { return false }
                c.busy.remove(id)
                c.kicks[id] = nil
                return true
            }
            if idle { return }
        }
    }

    /// Carries out one task and records how it ended.
    private func run(_ t: TaskRecord) {
        let id = t.instanceId
        let faultBefore = current(id)?.fault
        switch t.kind {
        case .build: build(id)
        case .delete: delete(id)
        case .action: runAction(id, t.argument)
        case .migrate: move(id, target: t.argument.isEmpty ? nil : t.argument, sourceIsUp: true)
        case .evacuate: move(id, target: nil, sourceIsUp: false)
        case .rebuild: rebuild(id)
        case .resize: resize(id, to: t.argument)
        case .confirmResize: confirmResize(id)
        case .revertResize: revertResize(id)
        }
        guard let tid = t.id else { return }
        let after = current(id)
        var state = TaskRunState.done
        var result = "deleted"
        if let after {
            result = InstanceStatus.derive(vm: after.vmState, task: after.taskState).rawValue
            if !after.fault.isEmpty && after.fault != faultBefore {
                state = .failed
                result += ": " + after.fault
            }
        }
        do { try store.finishTask(id: tid, state, result: result) } catch { log.error("cannot finish task \(tid): \(error)") }
    }
}

extension Engine {
    /// The instance with this id as the catalog has it now.
    func current(_ id: String) -> InstanceRecord? {
        catalog.withLock { c in c.instanceNames[id].flatMap { c.instances[$0] } }
    }

    public func instanceActions(_ name: String) -> [String] {
        guard let id = catalog.withLock({ $0.instances[name]?.id }),
              let tasks = try? store.tasks(instanceID: id) else { return [] }
        return tasks.map { t in
            let what = t.kind.rawValue + (t.argument.isEmpty ? "" : "(\(t.argument))")
            let when = Timestamp.string(Date(timeIntervalSince1970: t.created))
            return "\(t.id ?? 0) \(when) \(what) \(t.state.rawValue) step=\(t.step.isEmpty ? "-" : t.step)"
                + (t.result.isEmpty ? "" : " \(t.result)")
        }
    }
}
