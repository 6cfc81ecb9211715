/// Keys of `/defaults/`.
public enum DefaultKey: String, Sendable, CaseIterable {
    case image, flavor, network, project, group
    /// Nova's `availability_zone` of a server create request ("" means any zone).
    case availabilityZone = "availability_zone"
    /// The size of a volume `mkdir /volumes/NAME` makes (Cinder's default 1 GiB).
    case volumeSizeGB = "volume_size_gb"
    /// The Cinder driver new volumes go to: `file` (the default) or `lvm` (when the
    /// cloud was mounted with `--volume-group`).
    case volumeBackend = "volume_backend"
    /// The key pair (of the caller's own) a launch that names none gets; when unset, a
    /// caller with exactly one key pair gets that one.
    case keyName = "key_name"
}

/// Keys of `/config/`: the compute manager's live options, named as Nova names them.
public enum ConfigKey: String, Sendable, CaseIterable {
    /// Seconds after which a resize waiting in VERIFY_RESIZE is confirmed (0: never).
    case resizeConfirmWindow = "resize_confirm_window"
    /// What to do with a domain no instance owns: `reap` (destroy it), `log`, or `noop`.
    case runningDeletedInstanceAction = "running_deleted_instance_action"
    /// Seconds a build may take before it goes to ERROR (0: no limit).
    case instanceBuildTimeout = "instance_build_timeout"
    /// Seconds between power-state sweeps of every host (the backstop to libvirt events).
    case syncPowerStateInterval = "sync_power_state_interval"
    /// Seconds a guest gets to shut down cleanly before a hard power off.
    case shutdownTimeout = "shutdown_timeout"
    /// Seconds a live volume detach waits for libvirt's DeviceRemoved event before it
    /// asks again (Nova's `device_detach_timeout`).
    case deviceDetachTimeout = "device_detach_timeout"
    /// How many times a live detach is asked before the volume goes back to in-use
    /// (Nova's `device_detach_attempts`).
    case deviceDetachAttempts = "device_detach_attempts"
    /// Seconds per GiB of guest RAM a live migration may take before it is aborted
    /// (Nova's `live_migration_completion_timeout`, 800; 0: no limit).
    case liveMigrationCompletionTimeout = "live_migration_completion_timeout"
    /// The most a live migration may send, in MiB/s (Nova's `live_migration_bandwidth`; 0:
    /// as fast as it can).
    case liveMigrationBandwidth = "live_migration_bandwidth"

    /// The value an unset key reads as.
    public var defaultValue: String {
        switch self {
        case .resizeConfirmWindow: "0"
        case .runningDeletedInstanceAction: "reap"
        case .instanceBuildTimeout: "600"
        case .syncPowerStateInterval: "10"
        case .shutdownTimeout: "30"
        case .deviceDetachTimeout: "20"
        case .deviceDetachAttempts: "8"
        case .liveMigrationCompletionTimeout: "800"
        case .liveMigrationBandwidth: "0"
        }
    }

    /// Checks a value written to the key; `EINVAL` with the reason otherwise.
    public func validate(_ value: String) throws(CloudError) {
        switch self {
        case .runningDeletedInstanceAction:
            guard ["reap", "log", "noop"].contains(value) else {
                throw .invalid("\(rawValue) must be reap, log or noop, not '\(value.prefix(40))'")
            }
        case .deviceDetachTimeout, .deviceDetachAttempts:
            guard let n = Int(value), n >= 1, n <= 3600 else {
                throw .invalid("\(rawValue) must be a whole number from 1 to 3600")
            }
        case .liveMigrationBandwidth:
            guard let n = Int(value), n >= 0, n <= 1_000_000 else {
                throw .invalid("\(rawValue) must be a whole number of MiB/s (0: unlimited)")
            }
        case .syncPowerStateInterval:
            guard let n = Int(value), n >= 1, n <= 86_400 else {
                throw .invalid("\(rawValue) must be a whole number of seconds from 1 to 86400")
            }
        default:
            guard let n = Int(value), n >= 0, n <= 31_536_000 else {
                throw .invalid("\(rawValue) must be a whole number of seconds (0 or more)")
            }
        }
    }
}

/// A key of the store's `setting` table: every persistent option of the cloud, typed, so no
/// code builds a prefixed string key by hand. `storageKey` is the column value.
public enum SettingKey: Hashable, Sendable {
    /// This cloud's id (8 hex digits): its domains are named `cloudfs-ID-UUID`.
    case cloudID
    /// Set once the seed flavors were inserted (a deleted seed flavor stays deleted).
    case flavorsSeeded
    /// A `/defaults/` file.
    case defaultValue(DefaultKey)
    /// A `/config/` file.
    case config(ConfigKey)
    /// A `/scheduler/` option, by its Nova name.
    case scheduler(String)

    /// The key as stored.
    public var storageKey: String {
        switch self {
        case .cloudID: "cloud.id"
        case .flavorsSeeded: "seeded.flavors"
        case .defaultValue(let k): "default." + k.rawValue
        case .config(let k): "config." + k.rawValue
        case .scheduler(let k): "scheduler." + k
        }
    }

    /// The key a stored row names; nil for a key this version does not know.
    public init?(storageKey key: String) {
        let (prefix, rest) = key.firstIndex(of: ".").map { (String(key[..<$0]), String(key[key.index(after: $0)...])) } ?? (key, "")
        switch prefix {
        case "cloud" where rest == "id": self = .cloudID
        case "seeded" where rest == "flavors": self = .flavorsSeeded
        case "default":
            guard let k = DefaultKey(rawValue: rest) else { return nil }
            self = .defaultValue(k)
        case "config":
            guard let k = ConfigKey(rawValue: rest) else { return nil }
            self = .config(k)
        case "scheduler" where !rest.isEmpty: self = .scheduler(rest)
        default: return nil
        }
    }
}
