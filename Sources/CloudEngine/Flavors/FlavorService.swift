import CloudCore
import CloudStore

/// Nova flavors: `/flavors`, created with mkdir and sized by writing vcpus/ram_mb/disk_gb.
/// Admin only, as in Nova. Instances keep a copy of their size, so deleting a flavor never
/// changes them.
final class FlavorService: FlavorsAPI, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore

    init(core: EngineCore) { self.core = core }

    static func ref(_ name: String) -> ObjectRef { ObjectRef("flavor", name) }

    func list(_ caller: Caller) -> [Flavor] {
        core.catalog.withLock { $0.flavors.values.sorted { $0.name < $1.name } }.filter { core.visible(caller, Self.ref($0.name)) }
    }

    func get(_ name: String, _ caller: Caller) -> Flavor? {
        guard core.visible(caller, Self.ref(name)) else { return nil }
        return core.catalog.withLock { $0.flavors[name] }
    }

    func create(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("flavor", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "flavor")
            try core.authorize(caller, .administer("create flavors"), Self.ref(name))
            // A new flavor starts as the smallest sensible size; its files are then written.
            let f = Flavor(name: name, vcpus: 1, ramMB: 512, diskGB: 1, ownerUID: caller.uid)
            do throws(CloudError) {
                try core.write({ (s) throws(CloudError) in try s.insertFlavor(f) }) { c, _ in c.flavors[name] = f }
            } catch where error.errno == .exists {
                throw CloudError.exists("flavor '\(name)' already exists")
            }
        }
        core.events.append(kind: "flavor.created", object: name, ["uid": "\(caller.uid)"])
        core.announce(.flavor, name)
    }

    func change(_ name: String, _ change: FlavorChange, _ caller: Caller) throws(CloudError) {
        let value: Int
        switch change { case .vcpus(let n), .ramMB(let n), .diskGB(let n): value = n }
        try core.refusing("flavor", name, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("change flavors"), Self.ref(name))
            guard var f = get(name, caller) else { throw CloudError.notFound("no flavor named '\(name)'") }
            switch change {
            case .vcpus(let n):
                guard (1...1024).contains(n) else { throw CloudError.invalid("vcpus must be between 1 and 1024") }
                f.vcpus = n
            case .ramMB(let n):
                guard (16...16_777_216).contains(n) else { throw CloudError.invalid("ram_mb must be between 16 and 16777216") }
                f.ramMB = n
            case .diskGB(let n):
                guard (0...1_000_000).contains(n) else { throw CloudError.invalid("disk_gb must be between 0 and 1000000") }
                f.diskGB = n
            }
            let updated = f
            try core.write({ (s) throws(CloudError) in try s.updateFlavor(updated) }) { c, _ in c.flavors[name] = updated }
        }
        core.events.append(kind: "flavor.updated", object: name, ["field": change.field, "value": "\(value)"])
        core.announce(.flavor, name)
    }

    func delete(_ name: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("flavor", name, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("delete flavors"), Self.ref(name))
            guard get(name, caller) != nil else { throw CloudError.notFound("no flavor named '\(name)'") }
            // The default that names it goes in the same transaction.
            try core.write({ (s) throws(CloudError) in try s.deleteFlavor(name) }) { c, clearedDefault in
                c.flavors[name] = nil
                if clearedDefault { c.settings[.defaultValue(.flavor)] = nil }
            }
        }
        core.events.append(kind: "flavor.deleted", object: name, ["uid": "\(caller.uid)"])
        core.announce(.flavor, name)
    }

    /// Loads the flavors (the seed ones the first time).
    func load() throws(CloudError) {
        try core.store.seedFlavorsOnce(Flavor.seed)
        let flavors = try core.store.flavors()
        core.catalog.withLock { c in for f in flavors { c.flavors[f.name] = f } }
    }
}
