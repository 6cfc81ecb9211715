/// A power action the task worker carries out on an instance's domain (Nova's start, stop,
/// reboot, reboot hard, pause, unpause, suspend and resume server actions). The raw value
/// is the verb written to `ctl`.
public enum PowerAction: String, Sendable, Codable, CaseIterable {
    case start, stop, reboot, rebootHard = "reboot hard", pause, unpause, suspend, resume
}

/// One action written to an instance's `ctl` (Nova's server actions), parsed once at the
/// FUSE boundary: the engine only ever sees this type, never the verb text.
public enum InstanceAction: Sendable, Equatable, Hashable {
    /// A power action run by the task worker.
    case power(PowerAction)
    /// Re-create the disk from the instance's image (Nova's rebuild).
    case rebuild
    /// Keep the new flavor of a resize in VERIFY_RESIZE (Nova's confirmResize).
    case confirmResize
    /// Go back to the old flavor and host of a resize (Nova's revertResize).
    case revertResize
    /// Nova's lock/unlock: a locked instance refuses every action from non-admins.
    case lock, unlock
    /// Cold migration, to the named host or wherever the scheduler picks (admin only).
    case migrate(host: String?)
    /// Live migration, to the named host or wherever the scheduler picks (admin only):
    /// Nova's os-migrateLive; the guest keeps running.
    case liveMigrate(host: String?)
    /// Cancels the running live migration (Nova's force-complete's sibling, abort).
    case liveMigrateAbort

    /// Every verb `ctl` takes, in the order the refusal of an unknown one lists them.
    public static let verbs: [String] = PowerAction.allCases.map(\.rawValue).sorted()
        + ["rebuild", "confirm-resize", "revert-resize", "lock", "unlock", "migrate [HOST]",
           "live-migrate [HOST]", "live-migrate-abort"]

    /// Parses one write to `ctl`: words separated by blanks (`reboot   hard` is
    /// `reboot hard`). Throws `EINVAL` naming the verbs for anything else.
    public init(parsing text: String) throws(CloudError) {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let verb = words.joined(separator: " ")
        if let p = PowerAction(rawValue: verb) { self = .power(p); return }
        switch verb {
        case "rebuild": self = .rebuild
        case "confirm-resize": self = .confirmResize
        case "revert-resize": self = .revertResize
        case "lock": self = .lock
        case "unlock": self = .unlock
        case "live-migrate-abort": self = .liveMigrateAbort
        default:
            if words.first == "live-migrate", words.count <= 2 {
                self = .liveMigrate(host: words.count == 2 ? words[1] : nil)
                return
            }
            guard words.first == "migrate", words.count <= 2 else {
                throw CloudError.invalid("unknown action '\(text.prefix(40))'; actions: " + Self.verbs.joined(separator: ", "))
            }
            self = .migrate(host: words.count == 2 ? words[1] : nil)
        }
    }

    /// The verb as `ctl` takes it (and as events name it).
    public var verb: String {
        switch self {
        case .power(let p): p.rawValue
        case .rebuild: "rebuild"
        case .confirmResize: "confirm-resize"
        case .revertResize: "revert-resize"
        case .lock: "lock"
        case .unlock: "unlock"
        case .migrate(let host): host.map { "migrate \($0)" } ?? "migrate"
        case .liveMigrate(let host): host.map { "live-migrate \($0)" } ?? "live-migrate"
        case .liveMigrateAbort: "live-migrate-abort"
        }
    }
}

/// A write to one of an instance's writable files, parsed at the FUSE boundary.
public enum InstanceChange: Sendable, Equatable {
    /// `image`: the image of a pending build, or a rebuild from that image.
    case image(String)
    /// `flavor`: the flavor of a pending build, or a resize to it.
    case flavor(String)
    /// `group`: the server group of a pending build ("" for none).
    case group(String)
    /// `security_groups`: the groups whose rules let traffic in.
    case securityGroups([String])
    /// `floating_ip`: associate one.
    case floatingIP(FloatingIPRequest)
    /// `user_data`: what the next rebuild's config drive and the metadata service hand
    /// cloud-init (Nova's server update of user_data).
    case userData(String)
    /// `metadata/KEY`: sets (nil: removes) one item of Nova's server metadata.
    case metadata(key: String, value: String?)

    /// The file the change was written to (for events and refusals).
    public var field: String {
        switch self {
        case .userData: "user_data"
        case .metadata(let key, _): "metadata/" + key
        case .image: "image"
        case .flavor: "flavor"
        case .group: "group"
        case .securityGroups: "security_groups"
        case .floatingIP: "floating_ip"
        }
    }

    /// The security group names of a `security_groups` write: one per line, or separated
    /// by blanks or commas; each name once, in the order written.
    public static func securityGroupNames(_ text: String) -> [String] {
        var names: [String] = []
        for n in text.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "," || $0 == "\t" }).map(String.init)
        where !names.contains(n) { names.append(n) }
        return names
    }
}

/// What `instances/NAME/floating_ip` asks for (nova-network's floating IP association).
public enum FloatingIPRequest: Sendable, Equatable {
    /// An empty write: disassociate the instance's floating IP.
    case none
    /// `auto`: allocate one from the instance's network's pool and associate it.
    case auto
    /// An address: allocate it if needed and associate it.
    case address(String)

    /// Parses the trimmed text written to `floating_ip`.
    public init(parsing text: String) {
        switch text {
        case "": self = .none
        case "auto": self = .auto
        default: self = .address(text)
        }
    }
}
