import CloudCore
import CloudNetwork
import CloudScheduler
import CloudStore
import Foundation
import ImageStore

/// Nova's build_and_run_instance, as three compare-and-set steps: schedule (claim a host)
/// → network (fixed IP + MAC) → spawn (overlay disk, domain XML, define + start) → ACTIVE.
/// Each step starts from the task_state the previous one committed, so a restarted engine
/// resumes a build where it stopped. Any failure ends in ERROR with a fault, after
/// releasing everything the build had taken.
extension Engine {
    /// The build job: runs each remaining step; stops quietly when a delete was requested.
    /// A spawn that fails is rescheduled onto another host (Nova's RetryFilter and
    /// `max_attempts`), keeping the fixed IP; the fault then names every failure.
    func build(_ id: String) {
        let started = Date()
        var tried: [String] = []
        var failures: [String] = []
        while let r = current(id), !r.deleteRequested {
            do throws(CloudError) {
                switch r.taskState {
                case .scheduling: try schedule(r, tried: Set(tried), attempt: tried.count + 1)
                case .networking: try allocateNetwork(r)
                case .blockDeviceMapping, .spawning:
                    do throws(CloudError) { try spawn(r, started: started) } catch {
                        let host = r.host ?? "?"
                        tried.append(host)
                        failures.append("\(host): \(error.reason)")
                        let maxAttempts = scheduler.withLock { $0.config.maxAttempts }
                        guard tried.count < maxAttempts, reschedule(r, after: error.reason) else {
                            throw failures.count == 1 ? error
                                : CloudError(error.errno, "Build failed on \(failures.joined(separator: "; "))")
                        }
                    }
                default: return
                }
            } catch {
                // A reschedule that found no other host keeps the spawn failures in the fault.
                let rescheduleFailed = !failures.isEmpty && error.errno == .noSpace
                fail(id, rescheduleFailed ? "Build failed on \(failures.joined(separator: "; ")); rescheduling: \(error.reason)"
                                          : error.reason)
                return
            }
        }
    }

    /// Undoes a failed spawn on its host (domain, disk, claim) and sends the build back to
    /// scheduling; the fixed IP is kept. Returns false when the instance moved on.
    func reschedule(_ r: InstanceRecord, after reason: String) -> Bool {
        if let host = r.host, let conn = connection(forHost: host) { try? conn.destroy(uuid: r.id) }
        try? FileManager.default.removeItem(atPath: config.instanceDir(r.id))
        let back = commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id, expecting: [.spawning]) { x in x.host = nil; x.taskState = .scheduling }
        }, event: { [self] _ in
            events.append(kind: "instance.rescheduled", object: r.name, ["from": r.host ?? "?", "reason": reason])
        })
        return back != nil
    }

    func snapshots() -> [HostSnapshot] {
        catalog.withLock { c in
            c.hosts.values.map { h in
                let u = c.usage(of: h.record.name)
                var s = HostSnapshot(name: h.record.name, state: h.state, vcpus: h.capacity?.vcpus ?? 0,
                                     ramMB: h.capacity?.ramMB ?? 0, diskGB: h.capacity?.diskGB ?? 0,
                                     vcpusUsed: u.vcpus, ramMBUsed: u.ramMB, diskGBUsed: u.diskGB)
                s.availabilityZone = h.record.availabilityZone
                s.hypervisorType = h.capacity?.hypervisorType ?? ""
                s.arch = h.capacity?.arch ?? "x86_64"
                return s
            }
        }
    }

    /// What the build asks of the scheduler (Nova's RequestSpec): resources, the image's
    /// architecture / hypervisor_type properties, and the hosts already tried.
    func requestSpec(_ r: InstanceRecord, tried: Set<String>) -> RequestSpec {
        var spec = RequestSpec(ResourceRequest(vcpus: r.vcpus, ramMB: r.ramMb, diskGB: r.diskGb))
        let props = catalog.withLock { c in c.images.values.first { $0.id == r.imageId }?.properties ?? [:] }
        spec.setImageProperties(props)
        spec.triedHosts = tried
        spec.group = groupSpec(r)
        spec.availabilityZone = r.availabilityZone
        return spec
    }

    /// Filters and weighs hosts with the live configuration, then claims the best one that
    /// still passes every filter inside one transaction (a concurrent build may have taken
    /// the room in between).
    func schedule(_ r: InstanceRecord, tried: Set<String> = [], attempt: Int = 1) throws(CloudError) {
        let t0 = Date()
        let scheduler = currentScheduler()
        // Concurrent builds may take the room between a decision and its claim: decide again
        // on fresh snapshots (Nova reschedules on a failed claim), so a final refusal always
        // carries the filter report of a decision that saw every claim.
        for _ in 0..<8 {
            let spec = requestSpec(r, tried: tried)   // group members' hosts as they are now
            let hosts = snapshots()
            let decision = scheduler.select(spec, from: hosts)
            recordDecision(decision, instance: r.name, attempt: attempt)
            let ranked = decision.ranked   // computed: sorts every passing host, so read it once
            guard !ranked.isEmpty else { throw CloudError.noSpace(decision.failureReason) }
            for name in ranked {
                guard let snap = hosts.first(where: { $0.name == name }) else { continue }
                let claimed = commitInstance { (e) throws(CloudError) in
                    try e.store.claim(instanceID: r.id, host: name,
                                      fits: Self.claimCheck(scheduler, spec, snap))
                }
                if claimed != nil {
                    events.append(kind: "instance.scheduled", object: r.name,
                                  ["host": name, "took_ms": "\(Int(Date().timeIntervalSince(t0) * 1000))"])
                    CrashPoints.pass("build.scheduled")
                    return
                }
                if catalog.withLock({ $0.instances[r.name]?.taskState }) != .scheduling { return }
            }
        }
        throw CloudError.noSpace("No valid host was found. Every candidate filled up while this build was being placed.")
    }

    /// The libvirt driver's spawn: overlay disk, then define + start. A domain left by an
    /// interrupted earlier attempt is destroyed first, so the step can be repeated.
    func spawn(_ r: InstanceRecord, started: Date) throws(CloudError) {
        guard let host = r.host, let conn = connection(forHost: host) else {
            throw CloudError.io("host \(r.host ?? "?") is not connected")
        }
        let spec = try domainSpec(r)
        let xml: String
        if FileManager.default.fileExists(atPath: spec.diskPath),
           let p = (try? conn.powerState(uuid: r.id)) ?? nil, p == .running || p == .paused {
            // Started by this build before a restart: adopt it, so the guest is never disturbed.
            xml = conn.domainXML(for: spec)
            events.append(kind: "instance.adopted", object: r.name, ["host": host, "power": p.rawValue])
        } else {
            try conn.destroy(uuid: r.id)
            try? FileManager.default.removeItem(atPath: config.instanceDir(r.id))
            try makeDisk(r, path: spec.diskPath)
            CrashPoints.pass("build.disk")
            xml = try conn.spawn(spec)
            CrashPoints.pass("build.spawned")
        }
        let power = (try? conn.powerState(uuid: r.id)) ?? .running
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: r.id, expecting: [.spawning]) { x in
                x.vmState = .active; x.taskState = .none; x.powerState = power; x.domainXml = xml; x.fault = ""
            }
        }, event: { [self] _ in
            events.append(kind: "instance.active", object: r.name,
                          ["host": host, "took_ms": "\(Int(Date().timeIntervalSince(started) * 1000))"])
        })   // nil when deleted meanwhile: the delete job cleans up
    }

    /// The DomainSpec for an instance: its overlay, console file, NIC, and direct kernel
    /// boot when the image names a `kernel` (and `ramdisk`, `cmdline`) property.
    func domainSpec(_ r: InstanceRecord) throws(CloudError) -> DomainSpec {
        let dir = config.instanceDir(r.id)
        let (img, kernel, ramdisk, ip) = catalog.withLock { c -> (ImageInfo?, ImageInfo?, ImageInfo?, FixedIPRecord?) in
            let img = c.images.values.first { $0.id == r.imageId }
            return (img, img?.properties["kernel"].flatMap { c.images[$0] },
                    img?.properties["ramdisk"].flatMap { c.images[$0] }, c.ips[r.id]?.first)
        }
        if let k = img?.properties["kernel"], kernel == nil { throw CloudError.notFound("kernel image '\(k)' does not exist") }
        if let k = img?.properties["ramdisk"], ramdisk == nil { throw CloudError.notFound("ramdisk image '\(k)' does not exist") }
        let ipText = ip.map { IPv4Address(UInt32($0.address)).description }
        var cmdline: String? = nil
        if kernel != nil {
            cmdline = (img?.properties["cmdline"] ?? config.defaultCmdline)
            if let ip { cmdline! += " " + guestNetworkArguments(r, ip) }
        }
        var spec = DomainSpec(domainName: domainPrefix + r.id, uuid: r.id, vcpus: r.vcpus, ramMB: r.ramMb,
                              diskPath: dir + "/disk", diskFormat: "qcow2", kernelPath: kernel?.path,
                              initrdPath: ramdisk?.path, cmdline: cmdline, mac: ip?.mac, ip: ipText,
                              consolePath: dir + "/console.log")
        if let ip { plugInterface(&spec, r, ip) }
        return spec
    }

    /// Ends a build in ERROR: releases the domain, disk, IPs and claim, keeps the fault.
    func fail(_ id: String, _ reason: String) {
        guard let r = current(id) else { return }
        if r.deleteRequested { return }
        let released = releaseResources(r)
        commitInstance({ (e) throws(CloudError) in
            try e.store.update(instanceID: id) { x in
                x.vmState = .error; x.taskState = .none; x.powerState = .nostate; x.fault = reason
                x.host = nil; x.domainXml = ""
            }
        }, event: { [self] _ in
            events.append(kind: "instance.error", object: r.name, ["fault": reason, "released": released.joined(separator: ",")])
        })
    }

    /// Destroys the domain, removes the instance directory and releases the fixed IPs.
    /// Idempotent. Returns what it released, for the event line.
    @discardableResult
    func releaseResources(_ r: InstanceRecord) -> [String] {
        var released: [String] = []
        if let host = r.host, let conn = connection(forHost: host) {
            let existed = (try? conn.powerState(uuid: r.id)) != nil
            if (try? conn.destroy(uuid: r.id)) != nil && existed { released.append("domain") }
        }
        let dir = config.instanceDir(r.id)
        if FileManager.default.fileExists(atPath: dir) {
            try? FileManager.default.removeItem(atPath: dir)
            released.append("disk")
        }
        if catalog.withLock({ !($0.ips[r.id] ?? []).isEmpty }) {
            mutation.lock()
            let networks = Set(catalog.withLock { $0.ips[r.id] ?? [] }.map(\.network))
            if (try? store.releaseFixedIPs(instanceID: r.id)) != nil {
                catalog.withLock { $0.ips[r.id] = nil }
                released.append("ip")
            }
            mutation.unlock()
            networkReleased(r, networks: networks.sorted())
        } else {
            networkReleased(r, networks: [])
        }
        if r.host != nil { released.append("claim") }
        return released
    }
}
