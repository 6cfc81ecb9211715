import CloudCore
import CloudStore
import Foundation

/// Compute hosts: libvirt connections registered at mount time (Nova's compute services).
extension Engine {
    public func hosts() -> [HostInfo] {
        catalog.withLock { c in c.hosts.values.map { info($0, c) }.sorted { $0.name < $1.name } }
    }

    public func host(_ name: String) -> HostInfo? {
        catalog.withLock { c in c.hosts[name].map { info($0, c) } }
    }

    func info(_ h: HostRuntime, _ c: Catalog) -> HostInfo {
        let u = c.usage(of: h.record.name)
        return HostInfo(name: h.record.name, uri: h.record.uri, state: h.state,
                        hypervisorType: h.capacity?.hypervisorType ?? "", vcpus: h.capacity?.vcpus ?? 0,
                        ramMB: h.capacity?.ramMB ?? 0, diskGB: h.capacity?.diskGB ?? 0,
                        vcpusUsed: u.vcpus, ramMBUsed: u.ramMB, diskGBUsed: u.diskGB, instances: u.names,
                        availabilityZone: h.record.availabilityZone)
    }

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

    /// Registers the command-line hosts (or the default local host when nothing is
    /// registered), then opens every host's connection concurrently.
    func connectHosts() {
        var wanted = config.hostURIs
        if wanted.isEmpty && catalog.withLock({ $0.hosts.isEmpty }) { wanted = [config.localHostURI] }
        for uri in wanted {
            let known = catalog.withLock { c in c.hosts.values.contains { $0.record.uri == uri } }
            if known { continue }
            var name = Self.hostName(for: uri, localURI: config.localHostURI)
            var n = 2
            while catalog.withLock({ $0.hosts[name] != nil }) { name = Self.hostName(for: uri, localURI: config.localHostURI) + "-\(n)"; n += 1 }
            do {
                let rec = try store.registerHost(HostRecord(name: name, uri: uri))
                catalog.withLock { $0.hosts[rec.name] = HostRuntime(record: rec) }
                events.append(kind: "host.registered", object: rec.name, ["uri": uri])
            } catch {
                events.append(kind: "host.refused", object: name, ["uri": uri, "reason": error.reason])
            }
        }
        let records = catalog.withLock { $0.hosts.values.map(\.record) }
        DispatchQueue.concurrentPerform(iterations: records.count) { i in connect(records[i]) }
    }

    /// Opens one host's connection and reads its capacity; a failure leaves the host down.
    func connect(_ rec: HostRecord) {
        do throws(CloudError) {
            let conn = try driver.connect(uri: rec.uri)
            let cap = try conn.capacity()
            observe(conn, host: rec.name)
            catalog.withLock { c in
                c.hosts[rec.name]?.connection = conn
                c.hosts[rec.name]?.capacity = cap
                c.hosts[rec.name]?.lastError = ""
            }
            events.append(kind: "host.up", object: rec.name, ["uri": rec.uri, "vcpus": "\(cap.vcpus)",
                                                               "ram_mb": "\(cap.ramMB)", "disk_gb": "\(cap.diskGB)",
                                                               "type": cap.hypervisorType])
        } catch {
            catalog.withLock { $0.hosts[rec.name]?.lastError = error.reason }
            events.append(kind: "host.down", object: rec.name, ["uri": rec.uri, "reason": error.reason])
        }
        announce(ChangeNotice(.host, rec.name))
    }

    func connection(forHost name: String) -> (any ComputeConnection)? {
        catalog.withLock { $0.hosts[name]?.connection }
    }
}
