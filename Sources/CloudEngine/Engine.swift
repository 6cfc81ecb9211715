import CloudCore
import CloudStore
import Foundation
import Logging
import Synchronization

/// The cloud's control plane: Nova's API + conductor + compute manager, and Glance's
/// registry, in one process. It implements `CloudAPI` for the tree: reads come from the
/// in-memory `Catalog`, mutations validate synchronously, commit one SQLite transaction,
/// update the catalog, announce a `ChangeNotice`, and hand slow work (build, delete) to
/// the job queue.
///
/// Lock order: `mutation` (serialises store writes with catalog updates) before `catalog`.
public final class Engine: CloudAPI, @unchecked Sendable {
    // @unchecked: every mutable field is a Mutex/NSLock or immutable after init.
    let config: EngineConfiguration
    let store: Store
    let driver: any ComputeDriver
    let log: Logger
    let catalog = Mutex(Catalog())
    let mutation = NSLock()
    let jobs: OperationQueue
    let notifyQueue = DispatchQueue(label: "cloudfs.engine.notify")
    let subscribers = Mutex<[@Sendable (ChangeNotice) -> Void]>([])
    let eventBuffer = Mutex<[String]>([])
    let scheduler = Mutex(SchedulerState())
    let healthQueue = DispatchQueue(label: "cloudfs.engine.health")
    let reconcileQueue = DispatchQueue(label: "cloudfs.engine.reconcile")
    public let events: EventLog
    /// When this engine started: a build resumed after a restart gets a full timeout.
    let startedAt = Date().timeIntervalSince1970
    /// The host's networking, when `config.manageNetwork` (ManagedNetworking.swift).
    let managedNetworking: ManagedNetworking?

    /// Opens the store, loads the catalog, connects the hosts, and resumes unfinished work.
    /// Throws `EIO` when the state directory or database cannot be used.
    public init(config: EngineConfiguration, driver: any ComputeDriver, logger: Logger = Logger(label: "cloudfs.engine")) throws(CloudError) {
        self.config = config
        self.driver = driver
        self.log = logger
        managedNetworking = config.manageNetwork ? ManagedNetworking(stateDir: config.stateDir) : nil
        for dir in [config.stateDir, config.imagesDir, config.instancesDir] {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw CloudError.io("cannot create \(dir): \(error.localizedDescription)")
            }
        }
        store = try Store(path: config.databasePath)
        events = EventLog(history: try store.eventLines())
        jobs = OperationQueue()
        jobs.name = "cloudfs.engine.jobs"
        jobs.maxConcurrentOperationCount = config.maxConcurrentJobs
        events.addSink { [weak self] line in self?.persistEvent(line) }
        try seed()
        try load()
        try loadNetworking()
        loadSchedulerConfig()
        connectHosts()
        applyHostNetworking()
        recover()
        startHealthChecks(interval: config.hostCheckInterval)
        startReconciler()
        events.append(kind: "cloud.started", object: "-", ["state": config.stateDir, "hosts": "\(catalog.withLock { $0.hosts.count })"])
    }

    /// Waits for running jobs and for every event to be in SQLite (tests, a clean unmount).
    /// The flush runs on the notify queue, behind any batch a queued flush already took.
    public func drain() {
        jobs.waitUntilAllOperationsAreFinished()
        notifyQueue.sync { flushEvents() }
    }

    public var readme: String { Readme.text }

    /// This cloud's id (8 hex digits, made at first start): its domains are named
    /// `cloudfs-ID-UUID`, so clouds sharing a libvirt host never take each other's domains
    /// for orphans.
    var cloudID: String { catalog.withLock { $0.settings["cloud.id"] } ?? "local" }
    var domainPrefix: String { "cloudfs-\(cloudID)-" }

    public func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void) {
        subscribers.withLock { $0.append(handler) }
    }

    /// Announces a change to subscribers on the notify queue (never in the caller's stack).
    func announce(_ notice: ChangeNotice) {
        let subs = subscribers.withLock { $0 }
        guard !subs.isEmpty else { return }
        notifyQueue.async { for s in subs { s(notice) } }
    }

    // MARK: events

    /// Events are written to SQLite in batches on the notify queue, so a mutation does not
    /// pay for a second transaction.
    private func persistEvent(_ line: String) {
        let first = eventBuffer.withLock { buf -> Bool in buf.append(line); return buf.count == 1 }
        if first { notifyQueue.async { [weak self] in self?.flushEvents() } }
    }

    func flushEvents() {
        let lines = eventBuffer.withLock { buf -> [String] in let l = buf; buf.removeAll(); return l }
        guard !lines.isEmpty else { return }
        do { try store.appendEvents(lines) } catch { log.error("cannot persist events: \(error)") }
    }

    public func recordRefusal(_ error: CloudError, object: String, caller: Caller) {
        refuse(error, kind: "request", object: object, caller: caller)
    }

    /// Writes a refusal to /events and returns the error for throwing.
    @discardableResult
    func refuse(_ error: CloudError, kind: String, object: String, caller: Caller) -> CloudError {
        events.append(kind: "\(kind).refused", object: object,
                      ["errno": error.errno.name, "pid": "\(caller.pid)", "uid": "\(caller.uid)", "reason": error.reason])
        return error
    }

    /// Runs `body`; on a `CloudError`, records the refusal and rethrows it.
    func refusing<T>(_ kind: String, _ object: String, _ caller: Caller, _ body: () throws(CloudError) -> T) throws(CloudError) -> T {
        do { return try body() } catch { throw refuse(error, kind: kind, object: object, caller: caller) }
    }

    // MARK: start-up

    private func seed() throws(CloudError) {
        if try store.setting("cloud.id") == nil {
            try store.setSetting("cloud.id", String(UUID().uuidString.lowercased().prefix(8)))
        }
        try store.seedFlavorsOnce(Flavor.seed)
        try seedNetworking()
    }

    private func load() throws(CloudError) {
        let flavors = try store.flavors()
        let images = try store.images()
        let activated = try store.imageActivationTimes()
        let instances = try store.instances()
        let ips = try store.fixedIPs()
        let settings = try store.allSettings()
        let networks = try store.networks()
        let hosts = try store.hosts()
        let groups = try store.groups()
        catalog.withLock { c in
            for g in groups { c.groups[g.name] = g }
            for f in flavors { c.flavors[f.name] = f }
            for i in images { c.images[i.name] = i }
            c.imageActivated = activated
            for i in instances { c.put(i) }
            for ip in ips { c.ips[ip.instanceId, default: []].append(ip) }
            c.settings = settings
            for n in networks { c.networks[n.name] = n }
            for h in hosts { c.hosts[h.name] = HostRuntime(record: h) }
        }
    }

    // MARK: defaults

    public func defaultValue(_ key: DefaultKey) -> String {
        // Unset defaults read as what mkdir will use: m1.tiny, the `default` network; an
        // unset image means "the most recently activated bootable image" and reads empty.
        catalog.withLock { c in
            c.settings["default." + key.rawValue] ?? (key == .flavor ? "m1.tiny" : key == .network ? "default" : "")
        }
    }

    public func setDefault(_ key: DefaultKey, _ value: String, caller: Caller) throws(CloudError) {
        try refusing("defaults", key.rawValue, caller) { () throws(CloudError) in
            if !value.isEmpty {
                try ObjectName.validate(value, kind: key.rawValue)
                let known: Bool = catalog.withLock { c in
                    switch key {
                    case .image: c.images[value] != nil
                    case .flavor: c.flavors[value] != nil
                    case .network: c.networks[value] != nil
                    case .project: true
                    case .availabilityZone: c.hosts.values.contains { $0.record.availabilityZone == value }
                    case .group: c.groups[value] != nil
                    }
                }
                guard known else {
                    throw CloudError.notFound(key == .availabilityZone ? "no host is in availability zone '\(value)'"
                                                                      : "no \(key.rawValue) named '\(value)'")
                }
            }
            mutation.lock(); defer { mutation.unlock() }
            try store.setSetting("default." + key.rawValue, value)
            catalog.withLock { $0.settings["default." + key.rawValue] = value.isEmpty ? nil : value }
        }
        events.append(kind: "defaults.set", object: key.rawValue, ["value": value, "uid": "\(caller.uid)"])
        announce(ChangeNotice(.defaults, key.rawValue))
    }
}
