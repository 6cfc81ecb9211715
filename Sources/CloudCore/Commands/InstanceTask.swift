/// One unit of work on an instance, as the durable task queue stores it (Nova's instance
/// actions: the conductor's and compute manager's work items). Stored Codable, so a task
/// row carries the typed request, never a verb to parse again.
public enum InstanceTask: Sendable, Equatable, Hashable {
    /// Nova's build_and_run_instance: schedule → network → spawn.
    case build
    /// Nova's terminate_instance.
    case delete
    /// A power action on the domain.
    case power(PowerAction)
    /// Cold migration, to a named host or wherever the scheduler picks.
    case migrate(host: String?)
    /// Live migration (Nova's live_migration), to a named host or the scheduler's pick.
    case liveMigrate(host: String?)
    /// Rebuild on another host after the instance's host went down.
    case evacuate
    /// A fresh disk from the instance's image.
    case rebuild
    /// Resize to the named flavor.
    case resize(flavor: String)
    case confirmResize, revertResize

    /// The task's kind as the history shows it (`instances/NAME/actions`) and the `kind`
    /// column holds it.
    public var kind: String {
        switch self {
        case .build: "build"
        case .delete: "delete"
        case .power: "action"
        case .migrate: "migrate"
        case .liveMigrate: "live_migrate"
        case .evacuate: "evacuate"
        case .rebuild: "rebuild"
        case .resize: "resize"
        case .confirmResize: "confirm_resize"
        case .revertResize: "revert_resize"
        }
    }

    /// The argument the history shows in parentheses ("" for none).
    public var argument: String {
        switch self {
        case .power(let p): p.rawValue
        case .migrate(let host), .liveMigrate(let host): host ?? ""
        case .resize(let flavor): flavor
        default: ""
        }
    }

    /// The task a row written before tasks were typed stood for (`kind` and `argument`
    /// columns of schema v6–v9); nil for a row that never was valid.
    public init?(legacyKind kind: String, argument: String) {
        switch kind {
        case "build": self = .build
        case "delete": self = .delete
        case "action":
            guard let p = PowerAction(rawValue: argument) else { return nil }
            self = .power(p)
        case "migrate": self = .migrate(host: argument.isEmpty ? nil : argument)
        case "live_migrate": self = .liveMigrate(host: argument.isEmpty ? nil : argument)
        case "evacuate": self = .evacuate
        case "rebuild": self = .rebuild
        case "resize": self = .resize(flavor: argument)
        case "confirm_resize": self = .confirmResize
        case "revert_resize": self = .revertResize
        default: return nil
        }
    }
}

extension InstanceTask: Codable {
    private enum Keys: String, CodingKey { case kind, action, host, flavor }

    /// `{"kind":"action","action":"reboot hard"}`, `{"kind":"resize","flavor":"m1.small"}`:
    /// one flat object, readable with SQLite's json functions.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(kind, forKey: .kind)
        switch self {
        case .power(let p): try c.encode(p, forKey: .action)
        case .migrate(let host), .liveMigrate(let host): try c.encodeIfPresent(host, forKey: .host)
        case .resize(let flavor): try c.encode(flavor, forKey: .flavor)
        default: break
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let kind = try c.decode(String.self, forKey: .kind)
        let argument: String
        switch kind {
        case "action": argument = try c.decode(PowerAction.self, forKey: .action).rawValue
        case "migrate", "live_migrate": argument = try c.decodeIfPresent(String.self, forKey: .host) ?? ""
        case "resize": argument = try c.decode(String.self, forKey: .flavor)
        default: argument = ""
        }
        guard let t = InstanceTask(legacyKind: kind, argument: argument) else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown task kind '\(kind)'")
        }
        self = t
    }
}
