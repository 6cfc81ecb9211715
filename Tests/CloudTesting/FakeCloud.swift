import CloudCore
import Dispatch
import Foundation
import Synchronization

/// An in-memory `CloudAPI` for tests of the tree (NIOEmbedded-style: depends only on
/// CloudCore). It behaves like the real cloud at the API level: images are uploaded as
/// real bytes into a temporary directory and hashed (sha256) at commit; instances go
/// BUILD → ACTIVE after `buildDelay` on a background "engine" queue; deletes take
/// `deleteDelay`; refusals carry the proper errno and are written to `/events`.
public final class FakeCloud: CloudAPI, @unchecked Sendable {
    struct Waiter { var name: String; var completion: @Sendable (InstanceInfo?) -> Void }
    struct State {
        var config: [ConfigKey: String] = [:]
        var defaults: [DefaultKey: String] = [.image: "", .flavor: "m1.nano", .network: "default", .project: "default"]
        var flavors: [String: Flavor] = Dictionary(uniqueKeysWithValues: Flavor.seed.map { ($0.name, $0) })
        var images: [String: ImageInfo] = [:]
        var instances: [String: InstanceInfo] = [:]
        var hostEnabled = true
        var hostZone = "nova"
        var scheduler: [String: String] = ["driver": "filter", "host_subset_size": "1"]
        var subscribers: [@Sendable (ChangeNotice) -> Void] = []
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
        var nextIP = 2
        var buildDelay = 0.3
        var deleteDelay = 0.2
        var stalled: Set<String> = []
    }

    public let events = EventLog()
    /// The directory holding image bytes and console logs.
    public let root: String
    public let readme = "cloudfs (fake cloud for tests): see SPEC.md for the tree.\n"
    let state = Mutex(State())
    /// Networks, floating IPs and security groups (FakeCloudNetworks.swift).
    let net = Mutex(FakeNetworkState())
    let engine = DispatchQueue(label: "fakecloud.engine")

    /// A fake cloud storing its files under `root` (created if needed).
    public init(root: String) {
        self.root = root
        for d in ["images", "console"] {
            try? FileManager.default.createDirectory(atPath: root + "/" + d, withIntermediateDirectories: true)
        }
    }

    /// How long a build takes (BUILD → ACTIVE), in seconds.
    public var buildDelay: Double {
        get { state.withLock { $0.buildDelay } }
        set { state.withLock { $0.buildDelay = newValue } }
    }
    /// How long a delete takes (DELETING → gone), in seconds.
    public var deleteDelay: Double {
        get { state.withLock { $0.deleteDelay } }
        set { state.withLock { $0.deleteDelay = newValue } }
    }
    /// Builds of instances with this name never finish (they stay in BUILD).
    public func stall(_ name: String) { state.withLock { _ = $0.stalled.insert(name) } }
    /// Number of pending `waitUntilStable` calls (tests check cancellation).
    public var pendingWaits: Int { state.withLock { $0.waiters.count } }

    // MARK: notices and refusals

    public func subscribe(_ handler: @escaping @Sendable (ChangeNotice) -> Void) {
        state.withLock { $0.subscribers.append(handler) }
    }

    func notify(_ kind: ChangeNotice.Kind, _ name: String) {
        let subs = state.withLock { $0.subscribers }
        engine.async { for s in subs { s(ChangeNotice(kind, name)) } }
    }

    public func recordRefusal(_ error: CloudError, object: String, caller: Caller) {
        events.append(kind: "refused", object: object, [
            "errno": error.errno.name, "reason": error.reason, "pid": String(caller.pid), "uid": String(caller.uid)])
    }

    func refuse(_ errno: Errno, _ reason: String, _ object: String, _ caller: Caller) -> CloudError {
        let e = CloudError(errno, reason)
        recordRefusal(e, object: object, caller: caller)
        return e
    }

    func checkName(_ name: String, _ kind: String, _ caller: Caller) throws(CloudError) {
        if let p = ObjectName.problem(name) { throw refuse(.invalid, "invalid \(kind) name: \(p)", name, caller) }
    }

    // MARK: defaults

    public func configValue(_ key: ConfigKey) -> String { state.withLock { $0.config[key] ?? key.defaultValue } }

    public func setConfig(_ key: ConfigKey, _ value: String, caller: Caller) throws(CloudError) {
        do { try key.validate(value) } catch { throw refuse(.invalid, error.reason, "config/\(key.rawValue)", caller) }
        state.withLock { $0.config[key] = value }
        notify(.config, key.rawValue)
    }

    public func defaultValue(_ key: DefaultKey) -> String { state.withLock { $0.defaults[key] ?? "" } }

    public func setDefault(_ key: DefaultKey, _ value: String, caller: Caller) throws(CloudError) {
        let problem: String? = state.withLock { s in
            switch key {
            case .image:
                if value.isEmpty { return nil }
                return s.images[value]?.status == .active ? nil : "image '\(value)' is not an active image"
            case .flavor: return s.flavors[value] == nil ? "flavor '\(value)' does not exist" : nil
            case .network, .project: return ObjectName.problem(value)
            case .group: return value.isEmpty ? nil : "FakeCloud has no server groups"
            case .availabilityZone:
                return value.isEmpty || value == s.hostZone ? nil : "no host is in availability zone '\(value)'"
            }
        }
        if let problem { throw refuse(.invalid, problem, "defaults/\(key.rawValue)", caller) }
        state.withLock { $0.defaults[key] = value }
        events.append(kind: "defaults.set", object: key.rawValue, ["value": value, "uid": String(caller.uid)])
        notify(.defaults, key.rawValue)
    }

    // MARK: flavors

    public func flavors() -> [Flavor] { state.withLock { $0.flavors.values.sorted { $0.name < $1.name } } }
    public func flavor(_ name: String) -> Flavor? { state.withLock { $0.flavors[name] } }

    public func createFlavor(_ name: String, caller: Caller) throws(CloudError) {
        try checkName(name, "flavor", caller)
        guard caller.isAdmin else { throw refuse(.notPermitted, "only an admin may create flavors", name, caller) }
        let ok = state.withLock { s -> Bool in
            if s.flavors[name] != nil { return false }
            s.flavors[name] = Flavor(name: name, vcpus: 1, ramMB: 128, diskGB: 1, ownerUID: caller.uid)
            return true
        }
        guard ok else { throw refuse(.exists, "flavor \(name) exists", name, caller) }
        events.append(kind: "flavor.create", object: name)
        notify(.flavor, name)
    }

    public func setFlavorField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        guard let n = Int(value), n > 0 else { throw refuse(.invalid, "\(field) must be a positive integer", name, caller) }
        let err: CloudError? = state.withLock { s in
            guard var f = s.flavors[name] else { return .notFound("no flavor \(name)") }
            switch field {
            case "vcpus": f.vcpus = n
            case "ram_mb": f.ramMB = n
            case "disk_gb": f.diskGB = n
            default: return .invalid("no flavor field \(field)")
            }
            s.flavors[name] = f
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, name, caller) }
        events.append(kind: "flavor.set", object: name, [field: value])
        notify(.flavor, name)
    }

    public func deleteFlavor(_ name: String, caller: Caller) throws(CloudError) {
        let err: CloudError? = state.withLock { s in
            if s.flavors[name] == nil { return .notFound("no flavor \(name)") }
            if s.instances.values.contains(where: { $0.flavor == name }) { return .busy("flavor \(name) is in use") }
            s.flavors[name] = nil
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, name, caller) }
        events.append(kind: "flavor.delete", object: name)
        notify(.flavor, name)
    }

    // MARK: hosts

    public func hosts() -> [HostInfo] { host("node1").map { [$0] } ?? [] }

    public func host(_ name: String) -> HostInfo? {
        guard name == "node1" else { return nil }
        return state.withLock { s in
            let mine = s.instances.values.filter { $0.host == name }
            let flavors = mine.compactMap { s.flavors[$0.flavor] }
            return HostInfo(name: name, uri: "test:///default", state: s.hostEnabled ? .up : .disabled, hypervisorType: "test", vcpus: 8,
                            ramMB: 16384, diskGB: 100, vcpusUsed: flavors.reduce(0) { $0 + $1.vcpus },
                            ramMBUsed: flavors.reduce(0) { $0 + $1.ramMB }, diskGBUsed: flavors.reduce(0) { $0 + $1.diskGB },
                            instances: mine.map(\.name).sorted(), availabilityZone: s.hostZone)
        }
    }
}
