import CloudCore
import CloudStore
import Foundation
import ImageStore

/// Nova's rebuild: the same instance (name, uuid, fixed IP, MAC, host) on a fresh disk
/// made from its image — the current one (`echo rebuild > ctl`) or a new one
/// (`echo IMAGE > image`). A stopped instance stays stopped.
extension Engine {
    func requestRebuild(_ name: String, image imageName: String?, caller: Caller) throws(CloudError) {
        let r = try refusing("instance", name, caller) { () throws(CloudError) -> InstanceRecord in
            let r = try actionTarget(name, caller)
            guard r.taskState == .none, [.active, .stopped, .error].contains(r.vmState), r.host != nil else {
                throw CloudError.busy("cannot rebuild \(name) while it is \(InstanceStatus.derive(vm: r.vmState, task: r.taskState).rawValue)")
            }
            var img: ImageInfo? = nil
            if let imageName {
                guard let i = image(imageName), i.status == .active else { throw CloudError.notFound("no active image named '\(imageName)'") }
                try Self.checkFits(Flavor(name: r.flavor, vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb), i)
                img = i
            }
            let chosen = img
            guard let moved = commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: r.id, expecting: [.none], queue: NewTask(.rebuild)) { x in
                    x.taskState = .rebuilding
                    if let chosen { x.imageId = chosen.id; x.imageName = chosen.name }
                }
            }) else { throw CloudError.busy("\(name) is busy") }
            return moved
        }
        events.append(kind: "instance.action", object: name, ["action": "rebuild", "image": r.imageName, "uid": "\(caller.uid)"])
        dispatch(r.id)
    }

    /// The rebuild task: destroy the domain, make a new overlay, define and start again.
    func rebuild(_ id: String) {
        guard let r = current(id),
              r.taskState == .rebuilding else { return }
        let keepStopped = r.vmState == .stopped
        do throws(CloudError) {
            guard let host = r.host, let conn = connection(forHost: host) else {
                throw CloudError.io("host \(r.host ?? "?") is not connected")
            }
            try conn.destroy(uuid: id)
            let spec = try domainSpec(r)
            try? FileManager.default.removeItem(atPath: spec.diskPath)   // a new file, not the old one rewritten
            try makeDisk(r, path: spec.diskPath)
            CrashPoints.pass("rebuild.disk")
            let (xml, power) = try startDomain(r, on: conn, spec: spec, stopped: keepStopped)
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [.rebuilding]) { x in
                    x.vmState = keepStopped ? .stopped : .active; x.taskState = .none
                    x.powerState = power ?? .nostate; x.domainXml = xml; x.fault = ""
                }
            }, event: { [self] x in
                events.append(kind: "instance.rebuilt", object: r.name, ["image": x.imageName, "host": host])
            })
        } catch {
            let reason = "rebuild failed: \(error.reason)"
            commitInstance({ (e) throws(CloudError) in
                try e.store.update(instanceID: id, expecting: [.rebuilding]) { x in
                    x.vmState = .error; x.taskState = .none; x.fault = reason
                }
            }, event: { [self] _ in events.append(kind: "instance.error", object: r.name, ["fault": reason]) })
        }
    }

    /// Defines and starts the instance's domain over its disk (Nova's `_create_guest` at
    /// the end of a rebuild, resize or revert) and powers it off again when the instance is
    /// to stay stopped. Returns libvirt's XML and the power state the host then reports.
    func startDomain(_ r: InstanceRecord, on conn: any ComputeConnection, spec: DomainSpec? = nil,
                     stopped: Bool) throws(CloudError) -> (xml: String, power: PowerState?) {
        let definition: DomainSpec
        if let spec { definition = spec } else { definition = try domainSpec(r) }
        let xml = try conn.spawn(definition)
        if stopped { try conn.perform(.powerOff, uuid: r.id) }
        return (xml, (try? conn.powerState(uuid: r.id)) ?? nil)
    }

    /// A fresh copy-on-write overlay over the instance's image, sized to its flavor.
    func makeDisk(_ r: InstanceRecord, path: String) throws(CloudError) {
        let dir = config.instanceDir(r.id)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw CloudError.io("cannot create \(dir): \(error.localizedDescription)")
        }
        guard let img = catalog.withLock({ c in c.images.values.first { $0.id == r.imageId } }) else {
            throw CloudError.notFound("image \(r.imageName) no longer exists")
        }
        let size = r.diskGb > 0 ? Int64(r.diskGb) << 30 : nil
        try Overlay.create(path: path, backing: img.path, backingFormat: img.format == .qcow2 ? .qcow2 : .raw, sizeBytes: size)
    }

    /// The instance for an action by `caller`: it exists, is theirs (or they are admin), and
    /// is not locked against them.
    func actionTarget(_ name: String, _ caller: Caller) throws(CloudError) -> InstanceRecord {
        guard let r = catalog.withLock({ $0.instances[name] }) else { throw CloudError.notFound("no instance named '\(name)'") }
        guard caller.isAdmin || UInt32(r.ownerUid) == caller.uid else { throw CloudError(.accessDenied, "instance '\(name)' is not yours") }
        guard !r.locked || caller.isAdmin else { throw CloudError.notPermitted("instance '\(name)' is locked") }
        return r
    }
}
