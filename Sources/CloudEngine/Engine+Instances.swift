import CloudCore
import CloudNetwork
import CloudStore
import Foundation

/// Nova's servers API: mkdir validates and records, rmdir requests a delete, `wait`
/// subscribes to the instance's next stable state.
extension Engine {
    public func instances() -> [InstanceInfo] {
        catalog.withLock { c in c.instances.values.map { info($0, c) }.sorted { $0.name < $1.name } }
    }

    public func instance(_ name: String) -> InstanceInfo? {
        catalog.withLock { c in c.instances[name].map { info($0, c) } }
    }

    func info(_ r: InstanceRecord, _ c: Catalog) -> InstanceInfo {
        let ips = (c.ips[r.id] ?? []).sorted { $0.address < $1.address }
        var info = InstanceInfo(name: r.name, id: r.id, ownerUID: UInt32(r.ownerUid), project: r.project,
                            vmState: r.vmState, taskState: r.taskState, powerState: r.powerState, fault: r.fault,
                            host: r.host ?? "", ips: ips.map { IPv4Address(UInt32($0.address)).description }, macs: ips.map(\.mac),
                            image: r.imageName, flavor: r.flavor, created: Date(timeIntervalSince1970: r.created),
                            domainXML: r.domainXml, consolePath: config.instanceDir(r.id) + "/console.log",
                            group: r.groupName ?? "", availabilityZone: r.availabilityZone ?? "")
        info.securityGroups = r.securityGroupNames
        return info
    }

    /// The image a new instance boots: `/defaults/image`, else the most recently activated
    /// bootable image (disk formats only; kernels and initramfs are not root disks).
    func resolveImage() throws(CloudError) -> ImageInfo {
        try catalog.withLock { c throws(CloudError) -> ImageInfo in
            if let name = c.settings["default.image"] {
                guard let img = c.images[name] else { throw CloudError.notFound("the default image '\(name)' does not exist") }
                guard img.status == .active else { throw CloudError.busy("the default image '\(name)' is not active (\(img.status.rawValue))") }
                return img
            }
            let bootable = c.images.values.filter { $0.status == .active && [.qcow2, .raw, .iso].contains($0.format) }
            guard let img = bootable.max(by: { (c.imageActivated[$0.id] ?? 0) < (c.imageActivated[$1.id] ?? 0) }) else {
                throw CloudError.notFound("no active bootable image: cp a disk image into /images first")
            }
            return img
        }
    }

    func resolveFlavor() throws(CloudError) -> Flavor {
        try catalog.withLock { c throws(CloudError) -> Flavor in
            let name = c.settings["default.flavor"] ?? "m1.tiny"
            guard let f = c.flavors[name] else { throw CloudError.notFound("the default flavor '\(name)' does not exist") }
            return f
        }
    }

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

    public func createInstance(_ name: String, caller: Caller) throws(CloudError) -> InstanceInfo {
        let rec = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            try ObjectName.validate(name, kind: "instance")
            if instance(name) != nil { throw CloudError.exists("instance '\(name)' already exists") }
            let img = try resolveImage()
            let flavor = try resolveFlavor()
            try Self.checkFits(flavor, img)
            let project = defaultValue(.project).isEmpty ? Self.userName(caller.uid) : defaultValue(.project)
            try checkFixedIPsLeft(project: project)
            var rec = InstanceRecord(id: UUID().uuidString.lowercased(), name: name, ownerUID: caller.uid,
                                     project: project, image: img, flavor: flavor, created: Date())
            let group = defaultValue(.group)
            if !group.isEmpty { rec.groupName = group }
            let zone = defaultValue(.availabilityZone)
            if !zone.isEmpty { rec.availabilityZone = zone }
            mutation.lock(); defer { mutation.unlock() }
            try store.insertInstance(rec)
            catalog.withLock { c in c.put(rec) }
            CrashPoints.pass("create.committed")
            return rec
        }
        events.append(kind: "instance.created", object: name, ["id": rec.id, "image": rec.imageName, "flavor": rec.flavor,
                                                              "uid": "\(caller.uid)", "pid": "\(caller.pid)"])
        announce(ChangeNotice(.instance, name))
        if let g = rec.groupName { announce(ChangeNotice(.group, g)) }
        dispatch(rec.id)
        return instance(name)!
    }

    public func deleteInstance(_ name: String, caller: Caller) throws(CloudError) {
        let rec = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            try actionTarget(name, caller)
        }
        if rec.deleteRequested { return }   // a delete is already under way
        guard let marked = commitInstance({ (e) throws(CloudError) in try e.store.requestDelete(instanceID: rec.id) }) else { return }
        events.append(kind: "instance.deleting", object: name, ["from": marked.vmState.rawValue, "uid": "\(caller.uid)"])
        // One worker per instance: a running task notices the request and stops; the
        // delete task then runs next.
        dispatch(rec.id)
    }

    public func setInstanceField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        if field == "security_groups" { return try setSecurityGroups(name, value, caller: caller) }
        if field == "image" || field == "flavor", let r = catalog.withLock({ $0.instances[name] }), r.vmState != .building {
            // A spawned instance: a new desired image rebuilds it, a new flavor resizes it.
            return field == "image" ? try requestRebuild(name, image: value, caller: caller)
                                    : try requestResize(name, flavor: value, caller: caller)
        }
        try refusing("instance", name, caller) { () throws(CloudError) in
            guard let r = catalog.withLock({ $0.instances[name] }) else { throw CloudError.notFound("no instance named '\(name)'") }
            guard caller.isAdmin || UInt32(r.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "instance '\(name)' is not yours") }
            guard r.taskState == .scheduling else {
                throw CloudError.busy("\(field) can only be changed before the instance is scheduled")
            }
            switch field {
            case "image":
                guard let img = image(value), img.status == .active else { throw CloudError.notFound("no active image named '\(value)'") }
                let f = Flavor(name: r.flavor, vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb)
                try Self.checkFits(f, img)
                guard commitInstance({ (e) throws(CloudError) in try e.store.update(instanceID: r.id, expecting: [.scheduling]) { x in
                    x.imageId = img.id; x.imageName = img.name } }) != nil else { throw CloudError.busy("the build has already moved on") }
            case "flavor":
                guard let f = flavor(value) else { throw CloudError.notFound("no flavor named '\(value)'") }
                if let img = catalog.withLock({ c in c.images.values.first { $0.id == r.imageId } }) { try Self.checkFits(f, img) }
                guard commitInstance({ (e) throws(CloudError) in try e.store.update(instanceID: r.id, expecting: [.scheduling]) { x in
                    x.flavor = f.name; x.vcpus = f.vcpus; x.ramMb = f.ramMB; x.diskGb = f.diskGB } }) != nil else {
                    throw CloudError.busy("the build has already moved on")
                }
            case "group":
                if !value.isEmpty { guard group(value) != nil else { throw CloudError.notFound("no group named '\(value)'") } }
                guard commitInstance({ (e) throws(CloudError) in try e.store.update(instanceID: r.id, expecting: [.scheduling]) { x in
                    x.groupName = value.isEmpty ? nil : value } }) != nil else { throw CloudError.busy("the build has already moved on") }
                for g in [r.groupName, value].compactMap({ $0 }) where !g.isEmpty { announce(ChangeNotice(.group, g)) }
            default: throw CloudError.readOnly("\(field) is read-only")
            }
        }
        events.append(kind: "instance.updated", object: name, [field: value])
    }

    public func waitUntilStable(_ name: String, _ completion: @escaping @Sendable (InstanceInfo?) -> Void) -> WaitToken {
        let (id, ready) = catalog.withLock { c -> (UInt64?, InstanceInfo??) in
            guard let r = c.instances[name] else { return (nil, .some(nil)) }
            if r.taskState == .none { return (nil, .some(info(r, c))) }
            c.nextWaiter += 1
            c.waiters[name, default: [:]][c.nextWaiter] = completion
            return (c.nextWaiter, nil)
        }
        if let ready { DispatchQueue.global().async { completion(ready) }; return WaitToken {} }
        return WaitToken { [weak self] in
            _ = self?.catalog.withLock { c in c.waiters[name]?.removeValue(forKey: id!) }
        }
    }

    /// Runs one store transaction on an instance under the mutation lock, mirrors the result
    /// in the catalog, writes `event` (so a script that ran `cat wait` finds the line),
    /// announces it, and then wakes `wait`ers when it became stable.
    @discardableResult
    func commitInstance(_ body: (Engine) throws(CloudError) -> InstanceRecord?,
                        event: ((InstanceRecord) -> Void)? = nil) -> InstanceRecord? {
        mutation.lock()
        let r: InstanceRecord?
        do { r = try body(self) } catch {
            mutation.unlock()
            log.error("instance transaction failed: \(error)")
            return nil
        }
        var wake: [@Sendable (InstanceInfo?) -> Void] = []
        var info: InstanceInfo?
        if let r {
            catalog.withLock { c in
                c.put(r)
                if r.taskState == .none, let w = c.waiters.removeValue(forKey: r.name) {
                    wake = Array(w.values)
                    info = self.info(r, c)
                }
            }
        }
        mutation.unlock()
        if let r {
            event?(r)
            announce(ChangeNotice(.instance, r.name))
        }
        for w in wake { w(info) }
        return r
    }

    static func userName(_ uid: UInt32) -> String {
        guard let pw = getpwuid(uid), let n = pw.pointee.pw_name else { return "uid-\(uid)" }
        return String(cString: n)
    }
}

