import CloudCore
import CloudStore
import Foundation

/// What a restarted engine does before it serves: Nova's `init_host` — drop uploads that
/// never finished, re-attach to running domains, and resume builds and deletes from the
/// step the store says they reached.
extension Engine {
    func recover() {
        // Uploads interrupted by a crash: no bytes, no rows.
        if let paths = try? store.purgeUnfinishedImages() {
            for p in paths { unlink(p) }
            if !paths.isEmpty {
                catalog.withLock { c in c.images = c.images.filter { $0.value.status == .active } }
                events.append(kind: "image.purged", object: "-", ["count": "\(paths.count)", "reason": "upload did not finish before restart"])
            }
        }
        removeStrayFiles()
        let all = catalog.withLock { Array($0.instances.values) }
        for r in all {
            if r.deleteRequested {
                catalog.withLock { _ = $0.busy.insert(r.id) }
                enqueue(instanceID: r.id) { [self] in delete(r.id) }
            } else if r.vmState == .building {
                events.append(kind: "instance.resumed", object: r.name, ["step": r.taskState.rawValue])
                catalog.withLock { _ = $0.busy.insert(r.id) }
                enqueue(instanceID: r.id) { [self] in build(r.id) }
            } else if let host = r.host {
                if r.taskState != .none {
                    // An action or move interrupted by a restart: the power state read next
                    // tells what the guest is doing; the instance stays where its claim is.
                    commitInstance { (e) throws(CloudError) in
                        try e.store.update(instanceID: r.id) { x in
                            x.taskState = .none; x.fault = "\(r.taskState.rawValue) was interrupted by a restart"
                        }
                    }
                }
                syncPowerState(r, host: host)
            }
        }
    }

    /// Reads the domain's power state from its host (Nova's _sync_power_states).
    func syncPowerState(_ r: InstanceRecord, host: String) {
        guard let conn = connection(forHost: host) else {
            commitInstance { (e) throws(CloudError) in try e.store.update(instanceID: r.id) { $0.powerState = .nostate } }
            return
        }
        let observed: PowerState?
        do { observed = try conn.powerState(uuid: r.id) } catch { return }
        commitInstance { (e) throws(CloudError) in
            try e.store.update(instanceID: r.id) { x in
                if let observed {
                    x.powerState = observed
                } else {
                    x.powerState = .nostate
                    x.fault = "the domain is missing on host \(host)"
                }
            }
        }
        if observed == nil { events.append(kind: "instance.missing", object: r.name, ["host": host]) }
    }

    /// Image files and instance directories that no row owns (left by a crash) are removed.
    func removeStrayFiles() {
        let fm = FileManager.default
        let (imagePaths, instanceIDs) = catalog.withLock { c in
            (Set(c.images.values.map(\.path)), Set(c.instanceNames.keys))
        }
        for f in (try? fm.contentsOfDirectory(atPath: config.imagesDir)) ?? [] where !imagePaths.contains(config.imagesDir + "/" + f) {
            try? fm.removeItem(atPath: config.imagesDir + "/" + f)
        }
        for d in (try? fm.contentsOfDirectory(atPath: config.instancesDir)) ?? [] where !instanceIDs.contains(d) {
            try? fm.removeItem(atPath: config.instancesDir + "/" + d)
        }
    }
}
