import CloudCore
import CloudStore

/// Nova flavors: created with mkdir, sized by writing vcpus/ram_mb/disk_gb. Admin only,
/// as in Nova. Instances keep a copy of their size, so deleting a flavor never changes them.
extension Engine {
    public func flavors() -> [Flavor] { catalog.withLock { $0.flavors.values.sorted { $0.name < $1.name } } }
    public func flavor(_ name: String) -> Flavor? { catalog.withLock { $0.flavors[name] } }

    public func createFlavor(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("flavor", name, caller) { () throws(CloudError) in
            try ObjectName.validate(name, kind: "flavor")
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may create flavors") }
            // A new flavor starts as the smallest sensible size; its files are then written.
            let f = Flavor(name: name, vcpus: 1, ramMB: 512, diskGB: 1, ownerUID: caller.uid)
            mutation.lock(); defer { mutation.unlock() }
            do throws(CloudError) { try store.insertFlavor(f) } catch where error.errno == .exists {
                throw CloudError.exists("flavor '\(name)' already exists")
            }
            catalog.withLock { $0.flavors[name] = f }
        }
        events.append(kind: "flavor.created", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.flavor, name))
    }

    public func setFlavorField(_ name: String, field: String, value: String, caller: Caller) throws(CloudError) {
        try refusing("flavor", name, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may change flavors") }
            guard var f = flavor(name) else { throw CloudError.notFound("no flavor named '\(name)'") }
            guard let n = Int(value) else { throw CloudError.invalid("\(field) must be a whole number, got '\(value.prefix(40))'") }
            switch field {
            case "vcpus":
                guard (1...1024).contains(n) else { throw CloudError.invalid("vcpus must be between 1 and 1024") }
                f.vcpus = n
            case "ram_mb":
                guard (16...16_777_216).contains(n) else { throw CloudError.invalid("ram_mb must be between 16 and 16777216") }
                f.ramMB = n
            case "disk_gb":
                guard (0...1_000_000).contains(n) else { throw CloudError.invalid("disk_gb must be between 0 and 1000000") }
                f.diskGB = n
            default: throw CloudError.invalid("flavors have no field '\(field)'")
            }
            mutation.lock(); defer { mutation.unlock() }
            try store.updateFlavor(f)
            catalog.withLock { $0.flavors[name] = f }
        }
        events.append(kind: "flavor.updated", object: name, ["field": field, "value": value])
        announce(ChangeNotice(.flavor, name))
    }

    public func deleteFlavor(_ name: String, caller: Caller) throws(CloudError) {
        try refusing("flavor", name, caller) { () throws(CloudError) in
            guard caller.isAdmin else { throw CloudError.notPermitted("only an admin may delete flavors") }
            guard flavor(name) != nil else { throw CloudError.notFound("no flavor named '\(name)'") }
            mutation.lock(); defer { mutation.unlock() }
            try store.deleteFlavor(name)
            catalog.withLock { c in
                c.flavors[name] = nil
                if c.settings["default.flavor"] == name { c.settings["default.flavor"] = nil }
            }
            if (try? store.setting("default.flavor")) == name { try store.setSetting("default.flavor", "") }
        }
        events.append(kind: "flavor.deleted", object: name, ["uid": "\(caller.uid)"])
        announce(ChangeNotice(.flavor, name))
    }
}
