import CloudCore
import CloudStore
import Foundation

/// Nova's compute nodes and services: `/hosts`. A host is a libvirt URI with a live
/// connection (registered at mount time with `--host`, or by mkdir + `echo URI > uri`);
/// an admin enables, disables and evacuates it, and sets its availability zone. The
/// health check (HostHealth.swift) takes hosts down and brings them back.
final class HostService: HostsAPI, HostConnections, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore
    let driver: any ComputeDriver
    /// Tells the instance service about hosts going down and coming back (set by `Engine`).
    weak var instances: (any HostEvents)?
    /// Subscribes a fresh connection's lifecycle events (set by `Engine`: the reconciler).
    var observe: @Sendable (any ComputeConnection, String) -> Void = { _, _ in }
    /// Called after each answer of a host's agent (set by `Engine`: its share of the
    /// network plan is sent when it changed).
    var agentAnswered: @Sendable (String) -> Void = { _ in }
    let healthQueue = DispatchQueue(label: "cloudfs.engine.health")

    init(core: EngineCore, driver: any ComputeDriver) { self.core = core; self.driver = driver }

    // MARK: HostsAPI

    func list(_ caller: Caller) -> [HostInfo] {
        core.catalog.withLock { c in c.hosts.values.map { info($0, c) } }
            .filter { core.visible(caller, Self.ref($0.name)) }.sorted { $0.name < $1.name }
    }

    func get(_ name: String, _ caller: Caller) -> HostInfo? {
        guard core.visible(caller, Self.ref(name)) else { return nil }
        return core.catalog.withLock { c in c.hosts[name].map { info($0, c) } }
    }

    static func ref(_ name: String) -> ObjectRef { ObjectRef("host", name, readers: .admins) }

    private func info(_ h: HostRuntime, _ c: Catalog) -> HostInfo {
        let u = c.usage[h.record.name] ?? HostUsage()
        var info = HostInfo(name: h.record.name, uri: h.record.uri, state: h.state,
                            hypervisorType: h.capacity?.hypervisorType ?? "", vcpus: h.capacity?.vcpus ?? 0,
                            ramMB: h.capacity?.ramMB ?? 0, diskGB: h.capacity?.diskGB ?? 0,
                            vcpusUsed: u.vcpus, ramMBUsed: u.ramMB, diskGBUsed: u.diskGB,
                            instances: c.instanceNames(on: h.record.name), availabilityZone: h.record.availabilityZone)
        info.agent = h.record.agent
        info.fault = h.state == .down ? [h.lastError, h.agentError].filter { !$0.isEmpty }.joined(separator: "; ") : ""
        info.tunnelIP = h.agentStatus?.tunnelIP ?? ""
        info.segments = h.agentStatus?.segments ?? []
        if h.isRemote {
            info.storage = "pool cloudfs-\(c.settings[.cloudID] ?? "local")"
            info.cachedImages = (c.hostImages[h.record.name] ?? [:]).keys.map { c.imageName(id: $0) ?? $0 }.sorted()
        }
        return info
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("host", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "host")
            try core.authorize(caller, .administer("register hosts"), Self.ref(name))
            try core.catalog.withLock { c throws(CloudError) in
                guard c.hosts[name] == nil else { throw CloudError.exists("host '\(name)' already exists") }
                // Not stored until its URI is written: a host without a URI holds nothing.
                c.hosts[name] = HostRuntime(record: HostRecord(name: name, uri: ""), lastError: "no uri yet")
            }
        }
        core.events.append(kind: "host.created", object: name, ["uid": "\(caller.uid)"])
        core.announce(.host, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("host", name, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("remove hosts"), Self.ref(name))
            guard let h = core.catalog.withLock({ $0.hosts[name] }) else { throw CloudError.notFound("no host named '\(name)'") }
            let users = core.catalog.withLock { $0.instanceNames(on: name) }
            guard users.isEmpty else {
                throw CloudError.busy("host '\(name)' has instance(s) \(users.prefix(5).joined(separator: ", "))")
            }
            try core.write({ (s) throws(CloudError) in if !h.record.uri.isEmpty { try s.deleteHost(name) } }) { c, _ in
                c.hosts[name] = nil
                c.hostImages[name] = nil
            }
        }
        core.events.append(kind: "host.deleted", object: name, ["uid": "\(caller.uid)"])
        core.announce(.host, name)
    }

    func change(_ name: String, _ change: HostChange, _ caller: Caller) throws(CloudError) {
        try core.refusing("host", name, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("change hosts"), Self.ref(name))
            switch change {
            case .uri(let uri): try register(name, uri: uri)
            case .availabilityZone(let zone):
                try ObjectName.validate(zone, kind: "availability zone")
                try update(name) { $0.availabilityZone = zone }
            case .agent(let address):
                if !address.isEmpty { _ = try AgentAddress.split(address) }
                guard core.agents != nil || address.isEmpty else {
                    throw CloudError(.notSupported, "this cloud was started without an agent client (cloudfs mount makes one)")
                }
                try update(name) { $0.agent = address }
                core.catalog.withLock { c in c.hosts[name]?.agentStatus = nil; c.hosts[name]?.agentError = "" }
            }
        }
        let value: String
        switch change { case .uri(let v), .availabilityZone(let v), .agent(let v): value = v }
        core.events.append(kind: "host.updated", object: name, [change.field: value])
        if case .agent = change { checkAgent(name) }
    }

    func perform(_ action: HostAction, on name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("host", name, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("enable, disable or evacuate hosts"), Self.ref(name))
            switch action {
            case .enable: try update(name) { $0.enabled = true }
            case .disable: try update(name) { $0.enabled = false }
            case .evacuate:
                guard let h = get(name, caller) else { throw CloudError.notFound("no host named '\(name)'") }
                guard h.state == .down else {
                    throw CloudError.busy("host \(name) is \(h.state.rawValue); only a down host is evacuated (migrate its instances instead)")
                }
                let count = try instances?.evacuate(host: name) ?? 0
                core.events.append(kind: "host.evacuating", object: name, ["instances": "\(count)"])
            }
        }
        if action != .evacuate {
            core.events.append(kind: action == .enable ? "host.enabled" : "host.disabled", object: name, ["uid": "\(caller.uid)"])
        }
    }

    /// Saves a change to a host's record (a host made by mkdir is stored when its URI is
    /// written: `register` keeps this record).
    private func update(_ name: String, _ change: (inout HostRecord) -> Void) throws(CloudError) {
        guard var rec = core.catalog.withLock({ $0.hosts[name]?.record }) else { throw CloudError.notFound("no host named '\(name)'") }
        change(&rec)
        let updated = rec
        try core.write({ (s) throws(CloudError) in if !updated.uri.isEmpty { try s.updateHost(updated) } }) { c, _ in
            c.hosts[name]?.record = updated
        }
        core.announce(.host, name)
    }

    /// `echo URI > /hosts/NAME/uri`: stores the host and connects it (a URI that does not
    /// answer leaves it down, retried by the health check). `EBUSY` while it has instances.
    private func register(_ name: String, uri: String) throws(CloudError) {
        guard uri.contains(":"), uri.utf8.count <= 1024, !uri.contains(where: { $0.isWhitespace }) else {
            throw CloudError.invalid("'\(uri.prefix(80))' is not a libvirt URI (e.g. qemu:///system, test:///path/node.xml)")
        }
        guard core.catalog.withLock({ $0.instanceNames(on: name).isEmpty }) else {
            throw CloudError.busy("host '\(name)' has instances; its URI cannot change")
        }
        if let other = core.catalog.withLock({ c in c.hosts.values.first { $0.record.uri == uri && $0.record.name != name } }) {
            throw CloudError.exists("URI \(uri) is already host '\(other.record.name)'")
        }
        guard var rec = core.catalog.withLock({ $0.hosts[name]?.record }) else { throw CloudError.notFound("no host named '\(name)'") }
        let wasStored = !rec.uri.isEmpty
        rec.uri = uri
        let stored = rec
        try core.write({ (s) throws(CloudError) in
            if wasStored { try s.updateHost(stored) } else { _ = try s.registerHost(stored) }
        }) { c, _ in c.hosts[name] = HostRuntime(record: stored) }
        core.events.append(kind: "host.registered", object: name, ["uri": uri])
        connect(stored)
    }

    // MARK: connections

    /// The host name a URI gets: `local` for the embedded default host, the file name of a
    /// `test:///path/NAME.xml` fake host, otherwise the URI's server name.
    static func hostName(for uri: String, localURI: String) -> String {
        if uri == localURI || uri.hasPrefix("qemu:///embed") { return "local" }
        if uri.hasPrefix("test:///") {
            let path = String(uri.dropFirst("test://".count))
            let base = (path as NSString).lastPathComponent
            let stem = (base as NSString).deletingPathExtension
            return sanitize(stem.isEmpty ? "test" : stem)
        }
        if let url = URL(string: uri), let h = url.host, !h.isEmpty { return sanitize(h) }
        return sanitize(uri.split(separator: ":").first.map(String.init) ?? "host")
    }

    static func sanitize(_ s: String) -> String {
        var out = String(s.map { c -> Character in
            c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "-"
        }.prefix(ObjectName.maxLength))
        while let f = out.first, f == "." || f == "-" { out.removeFirst() }
        return out.isEmpty ? "host" : out
    }

    /// Loads the registered hosts, registers the command-line hosts (or the default local
    /// host when nothing is registered), then opens every connection concurrently.
    func start() throws(CloudError) {
        let stored = try core.store.hosts()
        core.catalog.withLock { c in for h in stored { c.hosts[h.name] = HostRuntime(record: h) } }
        var wanted = core.config.hostURIs
        if wanted.isEmpty && stored.isEmpty { wanted = [core.config.localHostURI] }
        for uri in wanted where !core.catalog.withLock({ c in c.hosts.values.contains { $0.record.uri == uri } }) {
            let base = Self.hostName(for: uri, localURI: core.config.localHostURI)
            var name = base
            var n = 2
            while core.catalog.withLock({ $0.hosts[name] != nil }) { name = base + "-\(n)"; n += 1 }
            do throws(CloudError) {
                let rec = try core.store.registerHost(HostRecord(name: name, uri: uri))
                core.catalog.withLock { $0.hosts[rec.name] = HostRuntime(record: rec) }
                core.events.append(kind: "host.registered", object: rec.name, ["uri": uri])
            } catch {
                core.events.append(kind: "host.refused", object: name, ["uri": uri, "reason": error.reason])
            }
        }
        let records = core.catalog.withLock { $0.hosts.values.map(\.record) }
        DispatchQueue.concurrentPerform(iterations: records.count) { i in
            connect(records[i])
            if !records[i].agent.isEmpty { checkAgent(records[i].name) }
        }
    }

    /// Opens one host's connection and reads its capacity; a failure leaves the host down.
    func connect(_ rec: HostRecord) {
        do throws(CloudError) {
            let conn = try driver.connect(uri: rec.uri)
            let cap = try conn.capacity()
            observe(conn, rec.name)
            core.catalog.withLock { c in
                c.hosts[rec.name]?.connection = conn
                c.hosts[rec.name]?.capacity = cap
                c.hosts[rec.name]?.lastError = ""
            }
            core.events.append(kind: "host.up", object: rec.name, ["uri": rec.uri, "vcpus": "\(cap.vcpus)",
                                                                    "ram_mb": "\(cap.ramMB)", "disk_gb": "\(cap.diskGB)",
                                                                    "type": cap.hypervisorType])
        } catch {
            core.catalog.withLock { $0.hosts[rec.name]?.lastError = error.reason }
            core.events.append(kind: "host.down", object: rec.name, ["uri": rec.uri, "reason": error.reason])
        }
        core.announce(.host, rec.name)
    }

    // MARK: HostConnections

    func connection(forHost name: String) -> (any ComputeConnection)? {
        core.catalog.withLock { $0.hosts[name]?.connection }
    }

    func connectedHosts() -> [(name: String, connection: any ComputeConnection)] {
        core.catalog.withLock { c in c.hosts.values.compactMap { h in h.connection.map { (h.record.name, $0) } } }
    }

    func hostExists(_ name: String) -> Bool { core.catalog.withLock { $0.hosts[name] != nil } }
}
