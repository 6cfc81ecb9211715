import CloudCore
import CloudStore
import Foundation

/// Nova's servers API: `/instances`. mkdir validates and records (the build runs later in
/// the task worker), rmdir requests a delete, `ctl` and the writable files request actions
/// with Nova's preconditions (InstanceRequests.swift), `wait` subscribes to the next
/// stable state. Every request is authorized against the instance first.
final class InstanceService: InstancesAPI, @unchecked Sendable {
    // @unchecked: immutable after init.
    let ctx: TaskContext
    let worker: TaskWorker
    /// Re-reads power states when a host comes back (set by `Engine`).
    weak var reconciler: Reconciler?
    var core: EngineCore { ctx.core }

    init(ctx: TaskContext, worker: TaskWorker) { self.ctx = ctx; self.worker = worker }

    /// How `authorize` sees an instance.
    static func ref(_ r: InstanceRecord) -> ObjectRef {
        ObjectRef("instance", r.name, ownerUID: UInt32(r.ownerUid), project: r.project, locked: r.locked)
    }

    // MARK: reads

    func list(_ caller: Caller) -> [InstanceInfo] {
        core.catalog.withLock { c in visibleInOrder(c, caller) { c.info($0, consolePath: core.consolePath($0.id)) } }
    }

    func entries(_ caller: Caller) -> [InstanceEntry] {
        core.catalog.withLock { c in
            visibleInOrder(c, caller) { r in
                InstanceEntry(name: r.name, id: r.id, ownerUID: UInt32(r.ownerUid),
                              created: Date(timeIntervalSince1970: r.created), project: r.project,
                              deleting: r.taskState == .deleting)
            }
        }
    }

    /// `transform` of each instance `caller` may see, by name (inside a catalog lock).
    /// Names are sorted, not the results: sorting 10,000 InstanceInfo values moved every
    /// field of each (a retain and release per string) and was a third of `ls -l`.
    private func visibleInOrder<T>(_ c: Catalog, _ caller: Caller, _ transform: (InstanceRecord) -> T) -> [T] {
        c.instances.keys.sorted().compactMap { name in
            guard let r = c.instances[name], core.visible(caller, Self.ref(r)) else { return nil }
            return transform(r)
        }
    }

    func get(_ name: String, _ caller: Caller) -> InstanceInfo? {
        // One catalog lock: the tree asks this several times for every file it serves.
        core.catalog.withLock { c in
            guard let r = c.instances[name], core.visible(caller, Self.ref(r)) else { return nil }
            return c.info(r, consolePath: core.consolePath(r.id))
        }
    }

    /// The record behind `name`, if `caller` may see it.
    func visible(_ name: String, _ caller: Caller) -> InstanceRecord? {
        guard let r = core.catalog.withLock({ $0.instances[name] }), core.visible(caller, Self.ref(r)) else { return nil }
        return r
    }

    /// The instance `caller` asks to act on with `access`: it exists (and is visible), and
    /// `authorize` allows it. Throws `ENOENT`, `EACCES` or `EPERM`.
    func target(_ name: String, _ caller: Caller, _ access: Access) throws(CloudError) -> InstanceRecord {
        guard let r = visible(name, caller) else { throw CloudError.notFound("no instance named '\(name)'") }
        try core.authorize(caller, access, Self.ref(r))
        return r
    }

    func migrations(_ name: String, _ caller: Caller) -> [String] {
        guard let r = visible(name, caller) else { return [] }
        do throws(CloudError) { return try core.store.migrations(instanceID: r.id).map(\.line) } catch {
            return ["the migration history cannot be read: \(error.reason)"]
        }
    }

    func migrationProgress(_ name: String, _ caller: Caller) -> [String] {
        guard let r = visible(name, caller) else { return [] }
        return core.catalog.withLock { $0.migrationProgress[r.id] ?? [] }
    }

    func actions(_ name: String, _ caller: Caller) -> [String] {
        guard let r = visible(name, caller) else { return [] }
        let tasks: [TaskRecord]
        do throws(CloudError) { tasks = try core.store.tasks(instanceID: r.id) } catch {
            core.recordFailure(error, kind: "instance", object: name, doing: "reading its task history")
            return ["the task history cannot be read: \(error.reason)"]
        }
        return tasks.map { t in
            let what = t.kind + (t.command.argument.isEmpty ? "" : "(\(t.command.argument))")
            let when = Timestamp.string(Date(timeIntervalSince1970: t.created))
            return "\(t.id ?? 0) \(when) \(what) \(t.state.rawValue) step=\(t.step.isEmpty ? "-" : t.step)"
                + (t.result.isEmpty ? "" : " \(t.result)")
        }
    }

    func waitUntilStable(_ name: String, _ caller: Caller,
                         _ completion: @escaping @Sendable (InstanceInfo?) -> Void) -> WaitToken {
        // Already stable (or gone): answered at once, on the caller's thread. A hop to
        // another queue first cost a thread wake-up for every `cat wait` of a stable instance.
        guard visible(name, caller) != nil else {
            completion(nil)
            return WaitToken {}
        }
        let (id, ready) = core.catalog.withLock { c -> (UInt64?, InstanceInfo??) in
            guard let r = c.instances[name] else { return (nil, .some(nil)) }
            if r.taskState == .none { return (nil, .some(c.info(r, consolePath: core.consolePath(r.id)))) }
            c.nextWaiter += 1
            c.waiters[name, default: [:]][c.nextWaiter] = completion
            return (c.nextWaiter, nil)
        }
        if let ready { completion(ready); return WaitToken {} }
        return WaitToken { [weak self] in
            _ = self?.core.catalog.withLock { c in c.waiters[name]?.removeValue(forKey: id!) }
        }
    }

    /// Waits registered and not yet answered (tests check that interrupted ones go).
    var pendingWaits: Int { core.catalog.withLock { $0.waiters.values.reduce(0) { $0 + $1.count } } }

    // MARK: create and delete

    /// Nova's checks that a flavor can hold an image (FlavorMemoryTooSmall, FlavorDiskSmallerThanImage...).
    static func checkFits(_ f: Flavor, _ img: ImageInfo) throws(CloudError) {
        if f.ramMB < img.minRamMB {
            throw CloudError.invalid("flavor \(f.name) has \(f.ramMB) MB of RAM, image \(img.name) needs min_ram \(img.minRamMB) MB")
        }
        if f.diskGB > 0 && f.diskGB < img.minDiskGB {
            throw CloudError.invalid("flavor \(f.name) has a \(f.diskGB) GB disk, image \(img.name) needs min_disk \(img.minDiskGB) GB")
        }
        if f.diskGB > 0 && Int64(f.diskGB) << 30 < img.virtualSize {
            throw CloudError.invalid("flavor \(f.name)'s \(f.diskGB) GB disk is smaller than image \(img.name) (\(img.virtualSize) bytes)")
        }
    }

    /// A flavor by name, as an instance request names it.
    func flavor(_ name: String) throws(CloudError) -> Flavor {
        guard let f = core.catalog.withLock({ $0.flavors[name] }) else { throw CloudError.notFound("no flavor named '\(name)'") }
        return f
    }

    func create(_ name: String, _ request: LaunchRequest, _ caller: Caller) throws(CloudError) -> InstanceInfo {
        var created: [String] = []
        let rec = try core.refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            try ObjectName.validate(name, kind: "instance")
            try core.authorize(caller, .create, ObjectRef("instance", name))
            if core.catalog.withLock({ $0.instances[name] }) != nil { throw CloudError.exists("instance '\(name)' already exists") }
            try request.validate()
            let img = try launchImage(request.image, caller)
            let flavorName = request.flavor ?? ctx.settings.defaultValue(.flavor)
            guard let flavor = core.catalog.withLock({ $0.flavors[flavorName] }) else {
                throw CloudError.notFound(request.flavor == nil ? "the default flavor '\(flavorName)' does not exist"
                                                                : "no flavor named '\(flavorName)'")
            }
            try Self.checkFits(flavor, img)
            let project = try core.project(of: caller)
            var rec = InstanceRecord(id: UUID().uuidString.lowercased(), name: name, ownerUID: caller.uid,
                                     project: project, image: img, flavor: flavor, created: Date())
            try applyLaunchOptions(request, to: &rec, caller)
            try ctx.networks.checkFixedIPsLeft(project: project, requested: rec.requestedNetwork)
            // A forwarded port is a QEMU process's: clouds of only test:/// hosts take none.
            let userMode = !core.config.manageNetwork
                && core.catalog.withLock { $0.hosts.values.contains { !$0.record.uri.hasPrefix("test:") } }
            let new = try core.write({ (s) throws(CloudError) -> InstanceRecord in
                var r = rec
                // Under the mutation lock: the catalog holds every port in use.
                if userMode {
                    let range = core.config.sshPorts
                    guard let port = core.catalog.withLock({ SSHPorts.free(in: $0, range: range) }) else {
                        throw CloudError.noSpace("no free ssh port left in \(range.lowerBound)-\(range.upperBound) (cloudfs mount --ssh-ports)")
                    }
                    r.sshPort = port
                }
                // Its event is written by the same transaction, shown once the catalog has it.
                created = core.events.capture {
                    core.events.append(kind: "instance.created", object: name, ["id": r.id, "image": r.imageName, "flavor": r.flavor,
                                                                               "key_name": r.keyName ?? "-",
                                                                               "uid": "\(caller.uid)", "pid": "\(caller.pid)",
                                                                               "project": r.project])   // not in the catalog yet
                }
                try s.insertInstance(r, handOver: true, events: created)   // a new instance has no worker yet
                return r
            }) { c, r in c.put(r) }
            CrashPoints.pass("create.committed")
            return new
        }
        core.events.publish(created)
        core.announce(.instance, name)
        if let g = rec.groupName { core.announce(.group, g) }
        worker.dispatch(rec.id)
        return core.instanceInfo(rec)
    }

    /// The image a launch names (visible to the caller, active), or the default one.
    private func launchImage(_ named: String?, _ caller: Caller) throws(CloudError) -> ImageInfo {
        guard let named else {
            let img = try ctx.images.bootImage()
            guard ctx.images.isVisible(img, to: caller) else {
                throw CloudError.notFound("the default image '\(img.name)' is not visible to you (Glance visibility: an admin makes it public, or its project shares it)")
            }
            return img
        }
        let img = try ctx.images.activeImage(named: named)
        guard ctx.images.isVisible(img, to: caller) else { throw CloudError.notFound("no active image named '\(named)'") }
        return img
    }

    /// The rest of a launch, each checked now (so the build never starts with half of
    /// them): key pair, user data, metadata, network, group, security groups, zone.
    private func applyLaunchOptions(_ request: LaunchRequest, to rec: inout InstanceRecord, _ caller: Caller) throws(CloudError) {
        if let key = try launchKeypair(request.keyName, caller) { rec.keyName = key.name; rec.publicKey = key.publicKey }
        rec.userData = request.userData ?? ""
        rec.configDrive = request.configDrive
        rec.metadata = InstanceRecord.encodeMetadata(request.metadata)
        if let net = request.network {
            guard core.catalog.withLock({ $0.networks[net] }) != nil else { throw CloudError.notFound("no network named '\(net)'") }
            rec.requestedNetwork = net
        }
        let group = request.group ?? ctx.settings.defaultValue(.group)
        if !group.isEmpty {
            if request.group != nil, core.catalog.withLock({ $0.groups[group] }) == nil {
                throw CloudError.notFound("no group named '\(group)'")
            }
            rec.groupName = group
        }
        if let groups = request.securityGroups {
            for n in groups where core.catalog.withLock({ $0.securityGroups[n] }) == nil {
                throw CloudError.notFound("no security group named '\(n.prefix(80))'")
            }
            rec.securityGroups = groups.joined(separator: "\n")
        }
        let zone = request.availabilityZone ?? ctx.settings.defaultValue(.availabilityZone)
        if !zone.isEmpty { rec.availabilityZone = zone }
    }

    /// The caller's key pair a launch uses: the one it names (`ENOENT` when the caller has
    /// none by that name), else the one `/defaults/key_name` names if the caller has it,
    /// else the caller's only key pair; none when that leaves nothing.
    private func launchKeypair(_ named: String?, _ caller: Caller) throws(CloudError) -> KeypairRecord? {
        let mine = core.catalog.withLock { c in c.keypairs.values.filter { $0.ownerUid == Int64(caller.uid) } }
        if let named {
            guard let k = mine.first(where: { $0.name == named }) else { throw CloudError.notFound("you have no key pair named '\(named)'") }
            return k
        }
        let fallback = ctx.settings.defaultValue(.keyName)
        if let k = mine.first(where: { $0.name == fallback }) { return k }
        return mine.count == 1 ? mine[0] : nil
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        let marked = try core.refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord? in
            let r = try target(name, caller, .operate)
            if r.deleteRequested { return nil }   // a delete is already under way
            return try core.commit { (s) throws(CloudError) in try s.requestDelete(instanceID: r.id) }.applied
        }
        guard let marked else { return }
        core.events.append(kind: "instance.deleting", object: name, ["from": marked.vmState.rawValue, "uid": "\(caller.uid)"])
        // One worker per instance: a running task notices the request and stops; the
        // delete task then runs next.
        worker.dispatch(marked.id)
    }
}

/// What the host service tells the instances.
extension InstanceService: HostEvents {
    func hostWentDown(_ host: String) {
        let ids = core.catalog.withLock { c in c.instances.values.filter { $0.host == host }.map(\.id) }
        for id in ids {
            do throws(CloudError) {
                try core.commit { (s) throws(CloudError) in try s.update(instanceID: id) { $0.powerState = .nostate } }
            } catch {
                core.recordFailure(error, kind: "instance", object: core.instance(id: id)?.name ?? id, doing: "marking its power state unknown")
            }
        }
    }

    func hostCameBack(_ host: String) {
        MoveTask(ctx: ctx).destroyEvacuatedDomains(on: host)
        guard let conn = ctx.hosts.connection(forHost: host) else { return }
        do throws(CloudError) { try reconciler?.syncHost(host, conn: conn) } catch {
            core.recordFailure(error, kind: "host", object: host, doing: "listing domains after it came back")
        }
    }

    func evacuate(host: String) throws(CloudError) -> Int {
        let ids = core.catalog.withLock { c in c.instances.values.filter { $0.host == host && $0.taskState == .none }.map(\.id) }
        var count = 0
        for id in ids {
            guard try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: id, expecting: [.none], queue: .evacuate) { $0.taskState = .rebuilding }
            }).applied != nil else { continue }
            worker.dispatch(id)
            count += 1
        }
        return count
    }

}
