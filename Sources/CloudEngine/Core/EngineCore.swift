import CloudCore
import CloudNetwork
import CloudStore
import Foundation
import Logging
import Synchronization

/// The engine's small core, shared by every service: the store, the in-memory catalog,
/// `/events`, change notices for the tree, and the one compare-and-set `commit` of an
/// instance transaction. Services meet here and through the small protocols in
/// `Services.swift`; none reaches into another's internals.
///
/// Lock order: `mutation` (serialises store writes with catalog updates) before `catalog`.
final class EngineCore: @unchecked Sendable {
    // @unchecked: every mutable field is a Mutex/NSLock or immutable after init.
    let config: EngineConfiguration
    /// The compute hosts' agents (`cloudfs agent`), when the executable gave a client.
    let agents: (any HostAgentDriver)?
    let store: Store
    let log: Logger
    let catalog = Mutex(Catalog())
    let mutation = NSLock()
    let events: EventLog
    /// Users, projects, role assignments and quota limits (Keystone's directory). Its own
    /// lock, never held while taking `catalog`'s: authorization runs inside catalog reads.
    let directory = Mutex(IdentityCatalog())
    /// `/events` per user (only their projects' lines).
    let eventViews: EventViews
    /// The project of each object events were written about, so the lines after it is
    /// gone (`instance.deleted`) still name it.
    private let eventProjects = Mutex<[String: String]>([:])
    /// When this engine started: a build resumed after a restart gets a full timeout.
    let startedAt = Date().timeIntervalSince1970
    private let eventQueue = DispatchQueue(label: "cloudfs.engine.events")
    private let subscribers = Mutex<[@Sendable (ChangeNotice) -> Void]>([])

    /// Creates the state directories and opens the store. Throws `EIO` when they cannot be used.
    init(config: EngineConfiguration, agents: (any HostAgentDriver)? = nil, logger: Logger) throws(CloudError) {
        self.agents = agents
        self.config = config
        log = logger
        for dir in [config.stateDir, config.imagesDir, config.instancesDir] {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw CloudError.io("cannot create \(dir): \(error.localizedDescription)")
            }
        }
        store = try Store(path: config.databasePath, busyTimeout: config.databaseBusyTimeout)
        events = EventLog(history: try store.eventLines())
        eventViews = EventViews(log: events)
        events.addSink { [weak self] line in self?.persistEvent(line) }
        eventViews.resolveProjects { [weak self] uid in
            self?.directory.withLock { d in d.userByUID[uid].map { Set(d.roles(of: $0).keys) } } ?? []
        }
        events.setTagger { [weak self] kind, object in self?.projectOfEvent(kind: kind, object: object) }
        catalog.withLock { $0.managedNetwork = config.manageNetwork }
    }

    // MARK: notices

    func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void) {
        subscribers.withLock { $0.append(handler) }
    }

    /// Announces a change to subscribers, on the caller's thread once the change is made:
    /// a subscriber only queues the notice (CloudFS's invalidator), so a hop through a
    /// queue of ours first would cost a thread wake-up per change for nothing.
    func announce(_ kind: ChangeNotice.Kind, _ name: String) {
        let subs = subscribers.withLock { $0 }
        guard !subs.isEmpty else { return }
        let notice = ChangeNotice(kind, name)
        for s in subs { s(notice) }
    }

    // MARK: events

    /// Events go to SQLite with the next write transaction (`Store.queueEvents`), so a
    /// mutation does not pay for a second one; when none comes within 2 ms, in a batch of
    /// their own on the event queue.
    private func persistEvent(_ line: String) {
        guard store.queueEvents([line]) else { return }
        eventQueue.asyncAfter(deadline: .now() + .milliseconds(2)) { [weak self] in self?.flushEvents() }
    }

    private func flushEvents() {
        // Not `events.append`: a failed event write would queue another event to write.
        // The lines stay queued: the next transaction that succeeds carries them.
        do { try store.flushEvents() } catch { log.error("cannot persist events: \(error)") }
    }

    /// Waits until every event appended so far is in SQLite (behind any batch already taken).
    func flushEventsNow() { eventQueue.sync { flushEvents() } }

    /// Writes a refusal to /events and returns the error for throwing.
    @discardableResult
    func refuse(_ error: CloudError, kind: String, object: String, caller: Caller) -> CloudError {
        // Tagged with the caller's project, so the caller sees the reason in their own
        // view of /events (the admin sees every line); the object's when the caller has none.
        let project = directory.withLock { $0.currentProject(of: caller) }
            ?? projectOfEvent(kind: kind, object: object) ?? ""
        events.append(kind: "\(kind).refused", object: object,
                      ["errno": error.errno.name, "pid": "\(caller.pid)", "uid": "\(caller.uid)", "reason": error.reason,
                       "project": project])
        return error
    }

    /// The project an event about `object` concerns (`KIND` is `instance.…`, `image.…`,
    /// …), from the catalog or, once the object is gone, from the last event about it.
    func projectOfEvent(kind: String, object: String) -> String? {
        let noun = kind.split(separator: ".").first.map(String.init) ?? kind
        let key = noun + "/" + object
        let found: String? = catalog.withLock { c in
            switch noun {
            case "instance": return c.instances[object]?.project
            case "image": return c.images[object]?.project
            case "group": return c.groups[object]?.project
            case "security_group": return c.securityGroups[object].map(\.project)
            case "network": return c.networks[object]?.project
            case "volume": return c.volumes.byName[object]?.project
            case "snapshot": return c.volumes.byName[String(object.split(separator: "/").first ?? "")]?.project
            case "floating_ip":
                do throws(CloudError) { return c.floatingIPs[Int64(try IPv4Address(parsing: object).value)]?.project } catch { return nil }
            case "project": return object
            default: return nil
            }
        }
        if let found, !found.isEmpty {
            eventProjects.withLock { $0[key] = found }
            return found
        }
        return eventProjects.withLock { $0[key] }
    }

    /// Runs `body`; on a `CloudError`, records the refusal and rethrows it.
    func refusing<T>(_ kind: String, _ object: String, _ caller: Caller,
                     _ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        do { return try body() } catch { throw refuse(error, kind: kind, object: object, caller: caller) }
    }

    /// Records a failure that no caller is waiting for (a worker's storage or driver
    /// error), so it is never lost: `KIND.failed OBJECT errno=… reason=…`.
    func recordFailure(_ error: CloudError, kind: String, object: String, doing what: String) {
        log.error("\(kind) \(object): \(what): \(error)")
        events.append(kind: "\(kind).failed", object: object, ["while": what, "errno": error.errno.name, "reason": error.reason])
    }

    // MARK: writes

    /// Runs one store write under the mutation lock and mirrors it in the catalog with
    /// `apply`, so readers never see the catalog ahead of or behind SQLite.
    @discardableResult
    func write<T>(_ body: (Store) throws(CloudError) -> T,
                  apply: (inout Catalog, T) -> Void = { _, _ in }) throws(CloudError) -> T {
        mutation.lock(); defer { mutation.unlock() }
        let result = try body(store)
        catalog.withLock { apply(&$0, result) }
        return result
    }

    /// A compare-and-set instance transaction (Nova's `instance.save(expected_task_state=)`):
    /// runs `body` under the mutation lock; `nil` from it is a conflict (the row moved on or
    /// is gone), a thrown error is a storage failure (`EIO` with SQLite's reason) and never
    /// a conflict. An applied row is mirrored in the catalog with the claims it changed
    /// (read back from the store's usage sums), then `event` is written (so a script that
    /// ran `cat wait` finds the line), the change announced, and `wait`ers woken when the
    /// instance became stable.
    @discardableResult
    func commit(_ body: (Store) throws(CloudError) -> InstanceRecord?,
                event: ((InstanceRecord) -> Void)? = nil) throws(CloudError) -> Commit<InstanceRecord> {
        mutation.lock()
        // The event lines are made of the new row inside the update's transaction and
        // written by it (`Store.withEventLines`); readers see them once the catalog has the row.
        let made = MadeEvents()
        var lines: (@Sendable (InstanceRecord) -> [String])?
        if let event {
            nonisolated(unsafe) let tell = event   // called on this thread, inside `body`
            let log = events
            lines = { x in made.set(log.capture { tell(x) }) }
        }
        let r: InstanceRecord?
        do { r = try store.withEventLines(lines) { () throws(CloudError) in try body(store) } } catch {
            mutation.unlock(); throw error
        }
        guard let r else { mutation.unlock(); return .conflict }
        var wake: [@Sendable (InstanceInfo?) -> Void] = []
        // Under the mutation lock only this thread changes the catalog's rows, so the
        // claims are read before the row is mirrored and both land in one critical
        // section: nobody sees the instance stable with its host's usage not yet moved.
        let before = catalog.withLock { $0.instance(id: r.id) }
        let usage = Catalog.claim(of: before) == Catalog.claim(of: r)
            ? nil : readUsage(of: Catalog.claimedHosts(before).union(Catalog.claimedHosts(r)))
        catalog.withLock { c in
            c.put(r)
            usage?.apply(to: &c)
            if r.taskState == .none, let w = c.waiters.removeValue(forKey: r.name) { wake = Array(w.values) }
        }
        let info = wake.isEmpty ? nil : instanceInfo(r)
        mutation.unlock()
        // A body that made no instance update (none does today) tells its event the old way.
        if let written = made.lines { events.publish(written) } else { event?(r) }
        announce(.instance, r.name)
        for w in wake { w(info) }
        return .applied(r)
    }

    /// Removes an instance's row (the end of a delete), its catalog entry and its claims,
    /// and wakes its waiters with nothing.
    /// `event` is written before the instance leaves the catalog, so whoever sees it gone
    /// already finds its `instance.deleted` line in /events (tagged with its project).
    func removeInstance(_ r: InstanceRecord, event: () -> Void) throws(CloudError) {
        mutation.lock()
        do { try store.deleteInstance(id: r.id) } catch { mutation.unlock(); throw error }
        event()
        let hosts = Catalog.claimedHosts(r)
        let usage = hosts.isEmpty ? nil : readUsage(of: hosts)
        let wake = catalog.withLock { c -> [@Sendable (InstanceInfo?) -> Void] in
            c.remove(instanceID: r.id)
            usage?.apply(to: &c)
            return Array((c.waiters.removeValue(forKey: r.name) ?? [:]).values)
        }
        mutation.unlock()
        announce(.instance, r.name)
        for w in wake { w(nil) }
    }

    /// What the claims on some hosts hold, read back from the store, to be mirrored in the
    /// catalog together with the row that changed them; or the mark that the read failed.
    enum UsageRead {
        case fresh([String: HostUsage], hosts: Set<String>)
        case failed

        func apply(to c: inout Catalog) {
            switch self {
            case .fresh(let sums, let hosts): for h in hosts { c.usage[h] = sums[h] ?? HostUsage() }
            case .failed: c.usageStale = true
            }
        }
    }

    /// Re-reads what the claims on `hosts` hold from the store's usage sums (the one place
    /// they are added up). Call under the mutation lock, after the transaction that changed
    /// them. A failed read marks the cached usage stale: the next snapshot reads it all.
    func readUsage(of hosts: Set<String>) -> UsageRead {
        do {
            return .fresh(try store.usage(of: Array(hosts)), hosts: hosts)
        } catch {
            recordFailure(error, kind: "store", object: hosts.sorted().joined(separator: ","), doing: "reading host usage")
            return .failed
        }
    }

    /// Reloads every host's usage when a refresh failed earlier.
    func reloadUsageIfStale() {
        guard catalog.withLock({ $0.usageStale }) else { return }
        mutation.lock(); defer { mutation.unlock() }
        do {
            let all = try store.usageByHost()
            catalog.withLock { c in c.usage = all; c.usageStale = false }
        } catch {
            recordFailure(error, kind: "store", object: "-", doing: "reading host usage")
        }
    }

    // MARK: lookups shared by the services

    /// The instance with this id as the catalog has it now.
    func instance(id: String) -> InstanceRecord? {
        catalog.withLock { $0.instance(id: id) }
    }

    /// A setting as the catalog has it.
    func setting(_ key: SettingKey) -> String? { catalog.withLock { $0.settings[key] } }

    /// The tree's view of an instance record.
    func instanceInfo(_ r: InstanceRecord) -> InstanceInfo {
        catalog.withLock { c in c.info(r, consolePath: consolePath(r.id)) }
    }

    /// Where an instance's serial console is logged (`<serial type='pty'>` with `<log>`).
    func consolePath(_ id: String) -> String { config.instanceDir(id) + "/console.log" }
}

/// The outcome of a compare-and-set commit: the row as written, or a conflict (the row
/// no longer had the expected state, or is gone). Storage failures are thrown instead.
enum Commit<T> {
    case applied(T)
    case conflict

    /// The row when applied, nil on a conflict.
    var applied: T? {
        if case .applied(let t) = self { return t }
        return nil
    }
}

/// The /events lines an instance update made of its new row (see `EngineCore.commit`):
/// set inside the update's transaction on the committing thread, read after it.
private final class MadeEvents: @unchecked Sendable {
    private(set) var lines: [String]?
    func set(_ made: [String]) -> [String] { lines = (lines ?? []) + made; return made }
}
