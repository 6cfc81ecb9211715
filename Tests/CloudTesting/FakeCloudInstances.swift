import CloudCore
import Foundation
import Synchronization

/// Nova in the fake: create validates synchronously, then the build runs on the engine
/// queue (scheduling → networking → spawning → ACTIVE, with an IP, a MAC, a console log);
/// delete goes through DELETING and removes the instance after `deleteDelay`.
extension FakeCloud {
    /// All instances, in no particular order (as a store would return them).
    public func instances() -> [InstanceInfo] { state.withLock { Array($0.instances.values) } }
    public func instance(_ name: String) -> InstanceInfo? { state.withLock { $0.instances[name] } }

    public func createInstance(_ name: String, caller: Caller) throws(CloudError) -> InstanceInfo {
        try checkName(name, "instance", caller)
        let id = UUID().uuidString.lowercased()
        let result: Result<InstanceInfo, CloudError> = state.withLock { s in
            if s.instances[name] != nil { return .failure(.exists("instance \(name) exists")) }
            let flavor = s.defaults[.flavor] ?? ""
            if s.flavors[flavor] == nil { return .failure(.invalid("default flavor '\(flavor)' does not exist")) }
            let image = s.defaults[.image] ?? ""
            if !image.isEmpty && s.images[image]?.status != .active {
                return .failure(.invalid("default image '\(image)' is not active"))
            }
            let info = InstanceInfo(name: name, id: id, ownerUID: caller.uid, project: s.defaults[.project] ?? "",
                                    vmState: .building, taskState: .scheduling, powerState: .nostate, fault: "",
                                    host: "", ips: [], macs: [], image: image, flavor: flavor, created: Date(),
                                    domainXML: "", consolePath: root + "/console/\(id).log")
            s.instances[name] = info
            return .success(info)
        }
        let info: InstanceInfo
        switch result {
        case .failure(let e): throw refuse(e.errno, e.reason, name, caller)
        case .success(let i): info = i
        }
        events.append(kind: "instance.create", object: name, ["id": id, "uid": String(caller.uid)])
        notify(.instance, name)
        let (delay, stalled) = state.withLock { ($0.buildDelay, $0.stalled.contains(name)) }
        if !stalled {
            engine.asyncAfter(deadline: .now() + delay / 2) { [self] in step(name, id: id) { $0.taskState = .spawning } }
            engine.asyncAfter(deadline: .now() + delay) { [self] in finishBuild(name, id: id) }
        }
        return info
    }

    func finishBuild(_ name: String, id: String) {
        let n = state.withLock { s -> Int in s.nextIP += 1; return s.nextIP }
        let console = root + "/console/\(id).log"
        try? "fake guest \(name) booting\nlogin: \n".write(toFile: console, atomically: false, encoding: .utf8)
        step(name, id: id) {
            $0.vmState = .active; $0.taskState = .none; $0.powerState = .running; $0.host = "node1"
            $0.ips = ["10.0.0.\(n)"]; $0.macs = [String(format: "fa:16:3e:00:%02x:%02x", n / 256, n % 256)]
            $0.domainXML = "<domain type='test'><name>cloudfs-\(id)</name><uuid>\(id)</uuid></domain>"
        }
        events.append(kind: "instance.active", object: name, ["host": "node1"])
        notify(.host, "node1")
    }

    /// Applies one state change to instance `name` (if it is still build `id`), notifies,
    /// and answers the waits that are now satisfied.
    func step(_ name: String, id: String, _ change: (inout InstanceInfo) -> Void) {
        let applied = state.withLock { s -> Bool in
            guard var i = s.instances[name], i.id == id, i.taskState != .deleting else { return false }
            change(&i)
            s.instances[name] = i
            return true
        }
        if applied { notify(.instance, name); wakeWaiters(name) }
    }

    public func deleteInstance(_ name: String, caller: Caller) throws(CloudError) {
        let result: Result<(String, Bool), CloudError> = state.withLock { s in
            guard var i = s.instances[name] else { return .failure(.notFound("no instance \(name)")) }
            if !caller.isAdmin && caller.uid != i.ownerUID { return .failure(.init(.accessDenied, "instance \(name) is not yours")) }
            let already = i.taskState == .deleting
            i.taskState = .deleting
            s.instances[name] = i
            return .success((i.id, already))
        }
        let id: String
        switch result {
        case .failure(let e): throw refuse(e.errno, e.reason, name, caller)
        case .success(let (i, already)):
            if already { return }
            id = i
        }
        events.append(kind: "instance.delete", object: name, ["uid": String(caller.uid)])
        notify(.instance, name)
        let delay = deleteDelay
        engine.asyncAfter(deadline: .now() + delay) { [self] in
            let removed = state.withLock { s -> InstanceInfo? in
                guard let i = s.instances[name], i.id == id else { return nil }
                s.instances[name] = nil
                return i
            }
            guard let removed else { return }
            unlink(removed.consolePath)
            events.append(kind: "instance.deleted", object: name)
            notify(.instance, name)
            notify(.host, "node1")
            wakeWaiters(name)
        }
    }

    public func setInstanceField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        let err: CloudError? = state.withLock { s in
            guard var i = s.instances[name] else { return .notFound("no instance \(name)") }
            switch field {
            case "image":
                guard s.images[value]?.status == .active else { return .invalid("image '\(value)' is not an active image") }
                i.image = value
            case "flavor":
                guard s.flavors[value] != nil else { return .invalid("flavor '\(value)' does not exist") }
                i.flavor = value
            default: return .invalid("\(field) cannot be written")
            }
            s.instances[name] = i
            return nil
        }
        if let err { throw refuse(err.errno, err.reason, name, caller) }
        events.append(kind: "instance.set", object: name, [field: value])
        notify(.instance, name)
    }

    public func waitUntilStable(_ name: String, _ completion: @escaping @Sendable (InstanceInfo?) -> Void) -> WaitToken {
        let id = state.withLock { s -> UInt64 in
            s.nextWaiter += 1
            s.waiters[s.nextWaiter] = Waiter(name: name, completion: completion)
            return s.nextWaiter
        }
        wakeWaiters(name)
        return WaitToken { [weak self] in _ = self?.state.withLock { $0.waiters.removeValue(forKey: id) } }
    }

    func wakeWaiters(_ name: String) {
        let (ready, info) = state.withLock { s -> ([Waiter], InstanceInfo?) in
            let info = s.instances[name]
            if let info, !info.isStable { return ([], nil) }
            let ids = s.waiters.filter { $0.value.name == name }.map(\.key)
            return (ids.compactMap { s.waiters.removeValue(forKey: $0) }, info)
        }
        guard !ready.isEmpty else { return }
        engine.async { for w in ready { w.completion(info) } }
    }

    /// Adds `count` ACTIVE instances at once (for listing benchmarks).
    public func seedInstances(count: Int, prefix: String = "vm") {
        let now = Date()
        state.withLock { s in
            for k in 0..<count {
                let id = UUID().uuidString.lowercased()
                let name = "\(prefix)\(k)"
                s.instances[name] = InstanceInfo(
                    name: name, id: id, ownerUID: 0, project: "default", vmState: .active, taskState: .none,
                    powerState: .running, fault: "", host: "node1", ips: ["10.1.\(k / 250).\(k % 250 + 2)"],
                    macs: ["fa:16:3e:01:\(String(format: "%02x:%02x", k / 256, k % 256))"], image: "",
                    flavor: "m1.nano", created: now, domainXML: "<domain/>", consolePath: root + "/console/\(id).log")
            }
        }
    }
}
