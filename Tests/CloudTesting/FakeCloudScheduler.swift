import Foundation
import CloudCore

/// FakeCloud's host controls and scheduler options: enough behaviour to drive the tree's
/// `/hosts/NAME/{ctl,availability_zone}` and `/scheduler/*` files, with the real errnos.
extension FakeCloud {
    public func createHost(_ name: String, caller: Caller) throws(CloudError) {
        throw refuse(.notPermitted, "FakeCloud has one fixed host", name, caller)
    }

    public func deleteHost(_ name: String, caller: Caller) throws(CloudError) {
        throw refuse(.busy, "FakeCloud's host is always in use", name, caller)
    }

    public func setHostField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        guard host(name) != nil else { throw refuse(.noEntry, "no host named '\(name)'", name, caller) }
        guard field == "availability_zone" else { throw refuse(.readOnly, "\(field) is read-only", name, caller) }
        try checkName(value, "availability zone", caller)
        state.withLock { $0.hostZone = value }
    }

    public func hostAction(_ name: String, action: String, caller: Caller) throws(CloudError) {
        guard host(name) != nil else { throw refuse(.noEntry, "no host named '\(name)'", name, caller) }
        switch action {
        case "enable": state.withLock { $0.hostEnabled = true }
        case "disable": state.withLock { $0.hostEnabled = false }
        default: throw refuse(.invalid, "unknown host action '\(action)'", name, caller)
        }
    }

    public func instanceAction(_ name: String, action: String, caller: Caller) throws(CloudError) {
        guard instance(name) != nil else { throw refuse(.noEntry, "no instance named '\(name)'", name, caller) }
        throw refuse(.invalid, "FakeCloud takes no actions ('\(action)')", name, caller)
    }

    public func instanceActions(_ name: String) -> [String] {
        instance(name) == nil ? [] : ["1 \(Timestamp.string(Date(timeIntervalSince1970: 0))) build done step=spawning ACTIVE"]
    }

    public var schedulerKeys: [String] { ["driver", "host_subset_size"] }

    public func schedulerValue(_ key: String) -> String? { state.withLock { $0.scheduler[key] } }

    public func setSchedulerValue(_ key: String, _ value: String, caller: Caller) throws(CloudError) {
        switch key {
        case "driver" where ["filter", "chance"].contains(value): break
        case "host_subset_size" where Int(value).map { $0 >= 1 } ?? false: break
        default: throw refuse(.invalid, "bad value '\(value)' for \(key)", key, caller)
        }
        state.withLock { $0.scheduler[key] = value }
    }

    public var schedulerLast: String { "no decision yet\n" }
}

/// FakeCloud has no server groups: the tree's `/groups` is exercised against the engine.
extension FakeCloud {
    public func groups() -> [GroupInfo] { [] }
    public func group(_ name: String) -> GroupInfo? { nil }
    public func createGroup(_ name: String, caller: Caller) throws(CloudError) {
        throw refuse(.notPermitted, "FakeCloud has no server groups", name, caller)
    }
    public func setGroupPolicy(_ name: String, _ policy: String, caller: Caller) throws(CloudError) {
        throw refuse(.noEntry, "no group named '\(name)'", name, caller)
    }
    public func deleteGroup(_ name: String, caller: Caller) throws(CloudError) {
        throw refuse(.noEntry, "no group named '\(name)'", name, caller)
    }
}
