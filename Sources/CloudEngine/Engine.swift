import CloudCore
import CloudStore
import Foundation
import Logging

/// The cloud's control plane: Nova's API + conductor + compute manager, Glance's registry
/// and nova-network, in one process. It implements `CloudAPI` for the tree as one service
/// per concept, wired here over a small shared core (`EngineCore`: store, catalog,
/// notices, events, commit, authorize). See docs/ARCHITECTURE.md for the map.
public final class Engine: CloudAPI, @unchecked Sendable {
    // @unchecked: immutable after init; every service guards its own state.
    let core: EngineCore
    let settingsService: SettingsService
    let schedulingService: SchedulingService
    let hostService: HostService
    let flavorService: FlavorService
    let groupService: ServerGroupService
    let imageService: ImageService
    let networkService: NetworkService
    let floatingIPService: FloatingIPService
    let securityGroupService: SecurityGroupService
    let volumeService: VolumeService
    let keypairService: KeypairService
    let userService: UserService
    let projectService: ProjectService
    let instanceService: InstanceService
    let worker: TaskWorker
    let reconciler: Reconciler

    /// Opens the store, loads every service's state, connects the hosts, and resumes
    /// unfinished work. Throws `EIO` when the state directory or database cannot be used.
    public init(config: EngineConfiguration, driver: any ComputeDriver, agents: (any HostAgentDriver)? = nil,
                logger: Logger = Logger(label: "cloudfs.engine")) throws(CloudError) {
        CrashPoints.arm()
        core = try EngineCore(config: config, agents: agents, logger: logger)
        settingsService = SettingsService(core: core)
        userService = UserService(core: core, accounts: config.accounts)
        projectService = ProjectService(core: core)
        schedulingService = SchedulingService(core: core)
        hostService = HostService(core: core, driver: driver)
        flavorService = FlavorService(core: core)
        groupService = ServerGroupService(core: core)
        imageService = ImageService(core: core, settings: settingsService)
        let networkHost = NetworkHost(core: core)
        networkService = NetworkService(core: core, host: networkHost, settings: settingsService)
        floatingIPService = FloatingIPService(core: core, host: networkHost, settings: settingsService)
        securityGroupService = SecurityGroupService(core: core, host: networkHost)
        networkService.floating = floatingIPService
        volumeService = VolumeService(core: core, hosts: hostService, images: imageService, settings: settingsService)
        keypairService = KeypairService(core: core)
        let disks = HostDisks(core: core, hosts: hostService, images: imageService)
        let guests = Guests(core: core, hosts: hostService, images: imageService, networks: networkService,
                            volumes: volumeService, disks: disks,
                            consoles: ConsoleRecorder(core: core, hosts: hostService, disks: disks))
        let ctx = TaskContext(core: core, guests: guests, placement: schedulingService, settings: settingsService)
        worker = TaskWorker(ctx: ctx, maxConcurrentJobs: config.maxConcurrentJobs)
        reconciler = Reconciler(ctx: ctx, worker: worker)
        instanceService = InstanceService(ctx: ctx, worker: worker)
        instanceService.reconciler = reconciler
        hostService.instances = instanceService
        hostService.observe = { [weak reconciler] conn, host in reconciler?.observe(conn, host: host) }
        hostService.agentAnswered = { [weak networkService] host in networkService?.host.segments.syncRecording(only: [host]) }
        if config.metadataPort != nil {
            networkService.host.segments.documents = { [weak networkService] r in
                networkService.map { Engine.document(Guests.metadata(r, $0)) }
            }
        }

        try load()
        try hostService.start()
        networkHost.applyAtStart(defaultNetwork: settingsService.defaultValue(.network))
        volumeService.recover()
        for id in try Recovery(ctx: ctx).run(reconciler: reconciler) { worker.dispatch(id) }
        hostService.startHealthChecks(interval: config.hostCheckInterval)
        reconciler.start()
        guests.consoles.start()
        core.events.append(kind: "cloud.started", object: "-",
                           ["state": config.stateDir, "hosts": "\(core.catalog.withLock { $0.hosts.count })"])
    }

    /// Loads the catalog from the store, each service its own part.
    private func load() throws(CloudError) {
        if try core.store.setting(.cloudID) == nil {
            try core.store.setSetting(.cloudID, String(UUID().uuidString.lowercased().prefix(8)))
        }
        let settings = try core.store.allSettings()
        core.catalog.withLock { $0.settings = settings }
        try userService.load()
        try flavorService.load()
        try imageService.load()
        try groupService.load()
        try networkService.load()
        try floatingIPService.load()
        try securityGroupService.load()
        try volumeService.load()
        try keypairService.load()
        let instances = try core.store.instances()
        let usage = try core.store.usageByHost()
        let hostImages = try core.store.hostImages()
        core.catalog.withLock { c in
            for i in instances { c.put(i) }
            c.usage = usage
            c.hostImages = hostImages
        }
        schedulingService.load()
    }

    /// Waits for running tasks and for every event to be in SQLite (tests, a clean unmount).
    public func drain() {
        worker.drain()
        volumeService.drain()
        core.flushEventsNow()
    }

    /// Runs one reconcile sweep now and returns when it is done (for an operator's script
    /// or a test that cannot wait for the next period).
    public func reconcileNow() { reconciler.reconcileNow() }

    /// `wait`s registered and not answered yet (tests check that interrupted ones go).
    public var pendingWaits: Int { instanceService.pendingWaits }

    /// What the in-memory catalog says each host's claims hold, beside what the store's
    /// usage sums say now (tests check they agree after any sequence of operations).
    public func usageCheck() throws(CloudError) -> (catalog: [String: HostUsage], store: [String: HostUsage]) {
        core.mutation.lock(); defer { core.mutation.unlock() }
        let cached = core.catalog.withLock { $0.usage.filter { $0.value != HostUsage() } }
        return (cached, try core.store.usageByHost())
    }

    // MARK: CloudAPI

    public var readme: String { Readme.text }
    public var events: EventLog { core.events }
    public func events(for caller: Caller) -> EventLog {
        core.identity(of: caller).isAdmin ? core.events : core.eventViews.view(for: caller.uid)
    }
    public func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void) { core.subscribe(handler) }
    public func recordRefusal(_ error: CloudError, object: String, caller: Caller) {
        core.refuse(error, kind: "request", object: object, caller: caller)
    }
    public var settings: any SettingsAPI { settingsService }
    public var scheduler: any SchedulerAPI { schedulingService }
    public var flavors: any FlavorsAPI { flavorService }
    public var hosts: any HostsAPI { hostService }
    public var groups: any ServerGroupsAPI { groupService }
    public var images: any ImagesAPI { imageService }
    public var instances: any InstancesAPI { instanceService }
    public var networks: any NetworksAPI { networkService }
    public var floatingIPs: any FloatingIPsAPI { floatingIPService }
    public var securityGroups: any SecurityGroupsAPI { securityGroupService }
    public var users: any UsersAPI { userService }
    public var projects: any ProjectsAPI { projectService }
    public var volumes: any VolumesAPI { volumeService }
    public var keypairs: any KeypairsAPI { keypairService }
    public func identity(of caller: Caller) -> CallerIdentity { core.identity(of: caller) }
    public func projectGID(_ project: String) -> UInt32? {
        core.directory.withLock { $0.projects[project].map { UInt32($0.gid) } }
    }
}
