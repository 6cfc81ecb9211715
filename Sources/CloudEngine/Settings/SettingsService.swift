import CloudCore
import CloudStore
import Foundation

/// `/defaults` (what a server create request leaves out: image, flavor, network, project,
/// group, availability zone) and `/config` (the compute manager's live options, Nova's
/// `nova.conf` `[DEFAULT]` values that cloudfs lets an admin change at run time).
final class SettingsService: SettingsAPI, SettingsReader, @unchecked Sendable {
    // @unchecked: immutable after init; state lives in the core.
    let core: EngineCore

    init(core: EngineCore) { self.core = core }

    // MARK: SettingsReader (for the other services)

    /// What a `/defaults` file reads as (`Catalog.defaultValue`).
    func defaultValue(_ key: DefaultKey) -> String { core.catalog.withLock { $0.defaultValue(key) } }

    /// The effective value of a `/config` key.
    func configValue(_ key: ConfigKey) -> String {
        if let v = core.setting(.config(key)) { return v }
        if key == .shutdownTimeout { return "\(Int(core.config.shutdownTimeout))" }
        return key.defaultValue
    }

    func seconds(_ key: ConfigKey) -> TimeInterval { TimeInterval(Int(configValue(key)) ?? 0) }

    // MARK: SettingsAPI

    func defaultValue(_ key: DefaultKey, _ caller: Caller) -> String {
        core.visible(caller, ObjectRef("default", key.rawValue)) ? defaultValue(key) : ""
    }

    func setDefault(_ key: DefaultKey, _ value: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("defaults", key.rawValue, caller) { () throws(CloudError) in
            try core.authorize(caller, .change, ObjectRef("default", key.rawValue))
            if key == .volumeSizeGB, !value.isEmpty {
                guard let n = Int(value), n >= 1, n <= 16_384 else {
                    throw CloudError.invalid("volume_size_gb must be a whole number of GiB from 1 to 16384, not '\(value.prefix(40))'")
                }
            } else if key == .volumeBackend, !value.isEmpty {
                guard value == "file" || (value == "lvm" && core.config.volumeGroup != nil) else {
                    throw CloudError.invalid(value == "lvm" ? "volume_backend lvm needs the cloud mounted with --volume-group VG"
                                                            : "volume_backend must be file or lvm, not '\(value.prefix(40))'")
                }
            } else if !value.isEmpty {
                try ObjectName.validate(value, kind: key.rawValue)
                let known: Bool = core.catalog.withLock { c in
                    switch key {
                    case .image: c.images[value] != nil
                    case .flavor: c.flavors[value] != nil
                    case .network: c.networks[value] != nil
                    case .project: core.directory.withLock { $0.projects[value] != nil }
                    case .availabilityZone: c.hosts.values.contains { $0.record.availabilityZone == value }
                    case .group: c.groups[value] != nil
                    case .volumeSizeGB, .volumeBackend, .keyName: true   // key pairs are each user's own
                    }
                }
                guard known else {
                    throw CloudError.notFound(key == .availabilityZone ? "no host is in availability zone '\(value)'"
                                                                      : "no \(key.rawValue) named '\(value)'")
                }
            }
            try core.write({ (s) throws(CloudError) in try s.setSetting(.defaultValue(key), value) }) { c, _ in
                c.settings[.defaultValue(key)] = value.isEmpty ? nil : value
            }
        }
        core.events.append(kind: "defaults.set", object: key.rawValue, ["value": value, "uid": "\(caller.uid)"])
        core.announce(.defaults, key.rawValue)
    }

    func configValue(_ key: ConfigKey, _ caller: Caller) -> String {
        core.visible(caller, ObjectRef("option", key.rawValue, readers: .admins)) ? configValue(key) : ""
    }

    func setConfig(_ key: ConfigKey, _ value: String, _ caller: Caller) throws(CloudError) {
        try core.refusing("config", key.rawValue, caller) { () throws(CloudError) in
            try core.authorize(caller, .administer("change \(key.rawValue)"), ObjectRef("option", key.rawValue))
            try key.validate(value)
            try core.write({ (s) throws(CloudError) in try s.setSetting(.config(key), value) }) { c, _ in
                c.settings[.config(key)] = value
            }
        }
        core.events.append(kind: "config.set", object: key.rawValue, ["value": value, "uid": "\(caller.uid)"])
        core.announce(.config, key.rawValue)
    }
}

extension Catalog {
    /// What a `/defaults` file reads as: unset means m1.tiny for the flavor, `default` for
    /// the network; an unset image means "the most recently activated bootable image" and
    /// reads empty.
    func defaultValue(_ key: DefaultKey) -> String {
        if let v = settings[.defaultValue(key)] { return v }
        switch key {
        case .flavor: return "m1.tiny"
        case .network: return "default"
        case .volumeSizeGB: return "1"
        case .volumeBackend: return "file"
        default: return ""
        }
    }
}
