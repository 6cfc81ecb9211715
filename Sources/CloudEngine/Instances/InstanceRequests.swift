import CloudCore
import CloudStore
import Foundation

/// Nova's server actions and updates with Nova's preconditions (compute/api.py
/// `check_instance_state`): an action not valid in the current state is refused with EBUSY
/// and the reason; a locked instance refuses every action from non-admins (EPERM). An
/// accepted request is a task row committed with the instance's new task_state, then
/// dispatched to the task worker.
extension InstanceService {
    func perform(_ action: InstanceAction, on name: String, _ caller: Caller) throws(CloudError) {
        // Each accepted request's event is written by the commit that accepts it.
        let uid = "\(caller.uid)", events = core.events
        let r = try core.refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord? in
            switch action {
            case .power(let p):
                let r = try target(name, caller, .operate)
                try require(p.allowedFrom.contains(r.vmState) && r.host != nil, r, p.rawValue)
                return try queue(r, .power(p), told: { events.append(kind: "instance.action", object: name, ["action": p.rawValue, "uid": uid]) }) {
                    $0.taskState = p.taskState
                }
            case .lock, .unlock:
                // Nova's lock/unlock: a member of its project or an admin; an admin's lock
                // (`locked_by` admin) is lifted only by an admin.
                let r = try target(name, caller, .change)
                let byAdmin = core.identity(of: caller).isAdmin
                if action == .unlock, r.lockedBy == "admin", !byAdmin {
                    throw CloudError.notPermitted("\(name) was locked by an admin; only an admin may unlock it")
                }
                try core.commit({ (s) throws(CloudError) in
                    try s.update(instanceID: r.id, evenIfDeleting: true) {
                        $0.locked = action == .lock
                        $0.lockedBy = action == .lock ? (byAdmin ? "admin" : "owner") : nil
                    }
                }, event: { _ in events.append(kind: action == .lock ? "instance.locked" : "instance.unlocked", object: name, ["uid": uid]) })
                return nil
            case .rebuild:
                return try rebuild(name, image: nil, caller)
            case .confirmResize, .revertResize:
                let r = try target(name, caller, .operate)
                try require(r.vmState == .resized, r, action.verb)
                let confirm = action == .confirmResize
                return try queue(r, confirm ? .confirmResize : .revertResize,
                                 told: { events.append(kind: "instance.action", object: name, ["action": action.verb, "uid": uid]) }) {
                    $0.taskState = confirm ? .resizeConfirming : .resizeReverting
                }
            case .migrate(let host):
                let r = try target(name, caller, .operate)
                try core.authorize(caller, .administer("migrate instances"), Self.ref(r))
                if let host {
                    guard ctx.hosts.hostExists(host) else { throw CloudError.notFound("no host named '\(host)'") }
                    guard host != r.host else { throw CloudError.invalid("\(name) is already on \(host)") }
                }
                try require(InstanceAction.migrateFrom.contains(r.vmState) && r.host != nil, r, "migrate")
                return try queue(r, .migrate(host: host), told: {
                    events.append(kind: "instance.migrating", object: name, ["from": r.host ?? "", "to": host ?? "(scheduler)"])
                }) { $0.taskState = .migrating }
            case .liveMigrate(let host):
                let r = try target(name, caller, .operate)
                try core.authorize(caller, .administer("live-migrate instances"), Self.ref(r))
                try require(InstanceAction.liveMigrateFrom.contains(r.vmState) && r.host != nil, r, "live-migrate")
                if let host {
                    guard ctx.hosts.hostExists(host) else { throw CloudError.notFound("no host named '\(host)'") }
                    guard host != r.host else { throw CloudError.invalid("\(name) is already on \(host)") }
                    guard ctx.guests.disks.isRemote(host) else {
                        throw CloudError(.notSupported, "live migration needs a destination whose libvirt runs as a daemon on another machine; \(host) is this machine's (the embedded driver takes no incoming migrations)")
                    }
                }
                return try queue(r, .liveMigrate(host: host), told: {
                    events.append(kind: "instance.live_migrating", object: name, ["from": r.host ?? "", "to": host ?? "(scheduler)", "uid": uid])
                }) { $0.taskState = .migrating }
            case .liveMigrateAbort:
                let r = try target(name, caller, .operate)
                try core.authorize(caller, .administer("abort live migrations"), Self.ref(r))
                let running = core.catalog.withLock { c in c.migrationProgress[r.id]?.first == "status running" }
                guard r.taskState == .migrating, running else {
                    throw CloudError.busy("\(name) has no live migration in progress (task_state \(r.taskState.rawValue))")
                }
                core.catalog.withLock { _ = $0.migrationAborts.insert(r.id) }
                core.events.append(kind: "instance.live_migration_abort_requested", object: name, ["uid": uid])
                return nil
            }
        }
        if let r { worker.dispatch(r.id) }
    }

    func change(_ name: String, _ change: InstanceChange, _ caller: Caller) throws(CloudError) {
        switch change {
        case .securityGroups(let names): return try setSecurityGroups(name, names, caller)
        case .floatingIP(let request):
            return try core.refusing("instance", name, caller) { () throws(CloudError) in
                try ctx.networks.setFloatingIP(of: try target(name, caller, .change), request, caller)
            }
        case .image(let image):
            if let r = visible(name, caller), r.vmState != .building {
                // A spawned instance: a new desired image rebuilds it.
                let moved = try core.refusing("instance", name, caller) { () throws(CloudError) in
                    try rebuild(name, image: image, caller)
                }
                return worker.dispatch(moved.id)
            }
        case .flavor(let flavor):
            if let r = visible(name, caller), r.vmState != .building {
                // A spawned instance: a new flavor resizes it.
                return try resize(name, to: flavor, caller)
            }
        case .group: break
        case .userData(let text): return try setUserData(name, text, caller)
        case .metadata(let key, let value): return try setMetadata(name, key, value, caller)
        }
        // The desired state of a build not scheduled yet.
        let (field, value): (String, String)
        switch change {
        case .image(let v), .flavor(let v), .group(let v): (field, value) = (change.field, v)
        default: return
        }
        try core.refusing("instance", name, caller) { () throws(CloudError) in
            let r = try target(name, caller, .change)
            guard r.taskState == .scheduling else {
                throw CloudError.busy("\(field) can only be changed before the instance is scheduled")
            }
            let update: @Sendable (inout InstanceRecord) -> Void
            switch change {
            case .image(let v):
                let img = try ctx.images.activeImage(named: v)
                try Self.checkFits(Flavor(name: r.flavor, vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb), img)
                update = { x in x.imageId = img.id; x.imageName = img.name }
            case .flavor(let v):
                let f = try flavor(v)
                if let img = ctx.images.image(id: r.imageId) { try Self.checkFits(f, img) }
                update = { x in x.flavor = f.name; x.vcpus = f.vcpus; x.ramMb = f.ramMB; x.diskGb = f.diskGB }
            default:
                if !value.isEmpty, core.catalog.withLock({ $0.groups[value] }) == nil {
                    throw CloudError.notFound("no group named '\(value)'")
                }
                update = { x in x.groupName = value.isEmpty ? nil : value }
            }
            guard try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: r.id, expecting: [.scheduling], update)
            }).applied != nil else { throw CloudError.busy("the build has already moved on") }
            if case .group = change {
                for g in [r.groupName, value].compactMap({ $0 }) where !g.isEmpty { core.announce(.group, g) }
            }
        }
        core.events.append(kind: "instance.updated", object: name, [field: value])
    }

    // MARK: the requests behind them

    /// Refuses with `EBUSY` "cannot VERB NAME while it is STATUS" unless the instance is
    /// idle and `allowed`.
    private func require(_ allowed: Bool, _ r: InstanceRecord, _ verb: String) throws(CloudError) {
        guard r.taskState == .none, allowed else {
            throw CloudError.busy("cannot \(verb) \(r.name) while it is \(InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue)")
        }
    }

    /// Commits `task` with the instance's new task_state, only while it is idle; `EBUSY`
    /// "is busy" when another request got there first. `told` appends the request's event,
    /// which the same commit writes. The caller dispatches the instance next: when no
    /// worker runs it, the commit takes the task for that worker.
    private func queue(_ r: InstanceRecord, _ task: InstanceTask, quota: QuotaRequest? = nil, told: @escaping () -> Void,
                       _ change: @escaping @Sendable (inout InstanceRecord) -> Void) throws(CloudError) -> InstanceRecord {
        guard let moved = try core.commit({ (s) throws(CloudError) in
            try s.update(instanceID: r.id, expecting: [.none], queue: task, handOver: worker.isIdle(r.id), quota: quota, change)
        }, event: { _ in told() }).applied else { throw CloudError.busy("\(r.name) is busy") }
        return moved
    }

    /// Nova's rebuild request, from `ctl` (the current image) or a write to `image`.
    private func rebuild(_ name: String, image imageName: String?, _ caller: Caller) throws(CloudError) -> InstanceRecord {
        let r = try target(name, caller, .operate)
        try require(InstanceAction.rebuildFrom.contains(r.vmState) && r.host != nil, r, "rebuild")
        var chosen: ImageInfo?
        if let imageName {
            let img = try ctx.images.activeImage(named: imageName)
            guard ctx.images.isVisible(img, to: caller) else { throw CloudError.notFound("no image named '\(imageName)'") }
            try Self.checkFits(Flavor(name: r.flavor, vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb), img)
            chosen = img
        }
        let image = chosen
        let imageName = image?.name ?? r.imageName, events = core.events
        return try queue(r, .rebuild, told: {
            events.append(kind: "instance.action", object: name, ["action": "rebuild", "image": imageName, "uid": "\(caller.uid)"])
        }) { x in
            x.taskState = .rebuilding
            if let image { x.imageId = image.id; x.imageName = image.name }
        }
    }

    /// Nova's resize request: a write to `flavor` of a spawned instance.
    private func resize(_ name: String, to flavorName: String, _ caller: Caller) throws(CloudError) {
        let r = try core.refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            let r = try target(name, caller, .operate)
            let f = try flavor(flavorName)
            try require(InstanceAction.resizeFrom.contains(r.vmState) && r.host != nil, r, "resize")
            guard f.name != r.flavor else { throw CloudError.invalid("\(name) already has flavor \(f.name)") }
            guard f.diskGB >= r.diskGb else {
                throw CloudError.invalid("resize to a smaller disk is not allowed (\(r.diskGb) GB → \(f.diskGB) GB)")
            }
            if let img = ctx.images.image(id: r.imageId) { try Self.checkFits(f, img) }
            // Nova counts the new flavor's cores and RAM against the project at the request.
            let grows = QuotaRequest(project: r.project, [.cores: f.vcpus - r.vcpus, .ramMB: f.ramMB - r.ramMb])
            let events = core.events
            return try queue(r, .resize(flavor: f.name), quota: grows, told: {
                events.append(kind: "instance.action", object: name, ["action": "resize", "flavor": flavorName, "uid": "\(caller.uid)"])
            }) { $0.taskState = .resizePrep }
        }
        worker.dispatch(r.id)
    }

    /// `instances/NAME/user_data` (Nova's server update of user_data): kept for the
    /// metadata service at once and for the config drive at the next rebuild.
    private func setUserData(_ name: String, _ text: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("instance", name, caller) { () throws(CloudError) in
            let r = try target(name, caller, .change)
            try LaunchRequest(userData: text).validate()
            guard try core.commit({ (s) throws(CloudError) in try s.update(instanceID: r.id) { $0.userData = text } }).applied != nil else {
                throw CloudError.busy("\(name) is being deleted")
            }
        }
        core.events.append(kind: "instance.user_data", object: name, ["bytes": "\(text.utf8.count)", "uid": "\(caller.uid)"])
    }

    /// `instances/NAME/metadata/KEY` (Nova's server metadata items): Nova's key and value
    /// limits and its 128 items.
    private func setMetadata(_ name: String, _ key: String, _ value: String?, _ caller: Caller) throws(CloudError) {
        try core.refusing("instance", name, caller) { () throws(CloudError) in
            let r = try target(name, caller, .change)
            var items = r.metadataItems
            if let value { items[key] = value } else {
                guard items.removeValue(forKey: key) != nil else { throw CloudError.notFound("\(name) has no metadata item '\(key.prefix(80))'") }
            }
            try LaunchRequest.validateMetadata(items)
            let encoded = InstanceRecord.encodeMetadata(items)
            guard try core.commit({ (s) throws(CloudError) in try s.update(instanceID: r.id) { $0.metadata = encoded } }).applied != nil else {
                throw CloudError.busy("\(name) is being deleted")
            }
        }
        core.events.append(kind: "instance.metadata", object: name, ["key": key, value == nil ? "removed" : "set": value ?? "yes",
                                                                    "uid": "\(caller.uid)"])
    }

    /// `instances/NAME/security_groups`: each group must exist; applies at once to a
    /// running instance.
    private func setSecurityGroups(_ name: String, _ names: [String], _ caller: Caller) throws(CloudError) {
        try core.refusing("instance", name, caller) { () throws(CloudError) in
            let r = try target(name, caller, .operate)
            for n in names where core.catalog.withLock({ $0.securityGroups[n] }) == nil {
                throw CloudError.notFound("no security group named '\(n.prefix(80))'")
            }
            let joined = names.joined(separator: "\n")
            guard try core.commit({ (s) throws(CloudError) in
                try s.update(instanceID: r.id) { $0.securityGroups = joined }
            }).applied != nil else { throw CloudError.busy("\(name) is being deleted") }
        }
        core.events.append(kind: "instance.security_groups", object: name,
                           ["groups": names.isEmpty ? "-" : names.joined(separator: ","), "uid": "\(caller.uid)"])
        try ctx.networks.securityGroupsChanged()
    }
}

extension InstanceService {
    /// `instances/NAME/tty`: the running guest's serial console (Nova's
    /// get_serial_console, the way `virsh console` reaches it).
    func openConsole(_ name: String, _ caller: Caller) throws(CloudError) -> any ConsoleStream {
        let stream = try core.refusing("instance", name, caller) { () throws(CloudError) -> any ConsoleStream in
            let r = try target(name, caller, .operate)
            guard r.powerState == .running || r.powerState == .paused, let host = r.host else {
                throw CloudError.busy("\(name) is not running (power state \(r.powerState.rawValue)): its console is only its log")
            }
            if ctx.guests.disks.isRemote(host) { return try ctx.guests.consoles.openSession(r.id, host: ConsoleRecorder.host(of: r) ?? host) }
            return try ctx.guests.connection(host).openConsole(uuid: r.id)
        }
        core.events.append(kind: "instance.console", object: name, ["uid": "\(caller.uid)", "pid": "\(caller.pid)"])
        return stream
    }
}
